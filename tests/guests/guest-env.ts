// What the guest tier and `make bench-kvm` share: the KVM host's address and keys (from
// kvm-host.sh env), an SSH connection to it, and the LLM and tool servers on this machine's
// address as the host sees it.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SshConnection } from "../../operator/drivers/ssh/connection.ts";
import { OllamaServer } from "../../sidecar/testing/ollama-server.ts";
import { parseEnv } from "../fixtures/control-plane.ts";
import { freePort } from "../fixtures/ports.ts";

const repo = join(import.meta.dirname, "..", "..");
export const AGENT_IMAGE = "localhost/agenttype/e2e-agent-node:dev";

export interface KvmHost {
  address: string;
  port: number;
  user: string;
  hostKey: string;
  clientKey: string;
  gatewayIp: string;
  state: string;
  uri: string;
  network: string;
  image: string;
}

export function kvmHostFrom(env: Record<string, string>): KvmHost {
  const get = (name: string) => {
    const v = env[name];
    if (!v) throw new Error(`${name} missing: run through the guests globalSetup or kvm-host.sh up`);
    return v;
  };
  return {
    address: get("AGENTTYPE_HOST_ADDRESS"),
    port: Number(get("AGENTTYPE_HOST_SSH_PORT")),
    user: get("AGENTTYPE_HOST_USER"),
    hostKey: get("AGENTTYPE_HOST_KEY"),
    clientKey: readFileSync(get("AGENTTYPE_HOST_CLIENT_KEY"), "utf8"),
    gatewayIp: get("AGENTTYPE_HOST_GATEWAY_IP"),
    state: get("AGENTTYPE_HOST_STATE"),
    uri: get("AGENTTYPE_KVM_URI"),
    network: get("AGENTTYPE_KVM_NETWORK"),
    image: get("AGENTTYPE_KVM_IMAGE"),
  };
}

/** The variables `kvm-host.sh env` prints, parsed. */
export { parseEnv };

export function hostConnection(host: KvmHost): SshConnection {
  return new SshConnection({
    host: host.address,
    port: host.port,
    username: host.user,
    privateKey: host.clientKey,
    hostKey: host.hostKey,
  });
}

/** The faithful Ollama server and the calculator tool, on this machine's address as the host sees it. */
export async function upstreams(host: KvmHost): Promise<{
  ollama: OllamaServer;
  ollamaUrl: string;
  toolUrl: string;
  close: () => Promise<void>;
}> {
  const ollama = new OllamaServer();
  const ollamaPort = await freePort();
  await ollama.listen(ollamaPort, host.gatewayIp);
  const toolPort = await freePort();
  const toolServer: ChildProcess = spawn(
    process.execPath,
    [join(repo, "tests/e2e/upstream/tool-server.ts"), "--port", String(toolPort)],
    { stdio: "ignore" },
  );
  return {
    ollama,
    ollamaUrl: `http://${host.gatewayIp}:${ollamaPort}`,
    toolUrl: `http://${host.gatewayIp}:${toolPort}/evaluate`,
    close: async () => {
      toolServer.kill();
      await ollama.close();
    },
  };
}
