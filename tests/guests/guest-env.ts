// What the guest tier and `make bench-kvm` share: the KVM host's address and keys (from
// kvm-host.sh env), a KVM driver on it made as the operator makes one, the guests' keys kept in
// memory (the operator keeps them in a Secret), the LLM and tool servers on this machine, and
// a sample AgentType turned into a replica by the operator's own pure builders.
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type AgentTool, agentTool } from "../../api/agenttool.ts";
import { type AgentType, agentType } from "../../api/agenttype.ts";
import { buildObjects } from "../../operator/build/objects.ts";
import type { Call } from "../../operator/drivers/call.ts";
import { parseConfig } from "../../operator/drivers/config.ts";
import { KvmDriver, kvmSettings } from "../../operator/drivers/kvm/driver.ts";
import type { GuestKeyStore, GuestKeys, GuestRef } from "../../operator/drivers/kvm/guest-keys.ts";
import type { Owner } from "../../operator/drivers/labels.ts";
import { buildReplicaPlan, type ReplicaPlan } from "../../operator/drivers/replica.ts";
import { SshConnection } from "../../operator/drivers/ssh/connection.ts";
import { replicaSpec } from "../../operator/placement/host-plan.ts";
import { resolveTools } from "../../operator/tools/resolve-tools.ts";
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

/** Guest keys in this process's memory, for the tests; the operator's store is a Secret. */
export class MemoryKeyStore implements GuestKeyStore {
  readonly keys = new Map<string, GuestKeys>();
  async get(guest: GuestRef, _call: Call): Promise<GuestKeys | undefined> {
    return this.keys.get(guest.name);
  }
  async put(guest: GuestRef, keys: GuestKeys, _call: Call): Promise<void> {
    this.keys.set(guest.name, keys);
  }
  async remove(guest: GuestRef, _call: Call): Promise<void> {
    this.keys.delete(guest.name);
  }
}

export function kvmDriver(host: KvmHost, connection: SshConnection, keys: GuestKeyStore): KvmDriver {
  return new KvmDriver(
    parseConfig(kvmSettings, "kvm driver settings", {
      uri: host.uri,
      network: host.network,
      baseImage: host.image,
      stateDir: `${host.state}/kvm`,
      vcpus: 1,
      memoryMiB: 1024,
    }),
    connection,
    keys,
  );
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

/** A sample AgentType with runtime kvm, and its replica as the operator would run it. */
export function sampleReplica(
  name: string,
  replica: number,
  urls: { ollamaUrl: string; toolUrl: string },
  uid: string = randomUUID(),
): { owner: Owner; plan: ReplicaPlan } {
  const namespace = "guests";
  const agent: AgentType = agentType.parse({
    apiVersion: "agenttype.dev/v1alpha1",
    kind: "AgentType",
    metadata: { name, namespace, uid },
    spec: {
      image: AGENT_IMAGE,
      imagePullPolicy: "IfNotPresent",
      language: "node",
      replicas: 1,
      runtime: { type: "kvm", hostRef: { name: "kvm-host" } },
      env: [
        { name: "OPENAI_API_KEY", value: "not-needed" },
        { name: "AGENT_VERSION", value: "1" },
      ],
      llm: { providers: [{ name: "local", type: "ollama", endpoint: urls.ollamaUrl, model: "llama3.2" }] },
      tools: [{ name: "calculator", version: "^2.0.0" }],
      memory: { type: "ephemeral" },
    },
  });
  const tool: AgentTool = agentTool.parse({
    apiVersion: "agenttype.dev/v1alpha1",
    kind: "AgentTool",
    metadata: { name: "calculator", namespace },
    spec: {
      name: "calculator",
      version: "2.1.0",
      description: "Evaluates an arithmetic expression.",
      protocol: "http",
      endpoint: { url: urls.toolUrl },
      inputSchema: {
        type: "object",
        properties: { expression: { type: "string" } },
        required: ["expression"],
      },
    },
  });
  const resolution = resolveTools(name, agent.spec.tools, [tool]);
  const objects = buildObjects(agent, resolution.resolved, {
    sidecarImage: "localhost/agenttype/sidecar:dev",
    wrapperImage: "localhost/agenttype/wrapper:dev",
    imagePullPolicy: "IfNotPresent",
    sidecarResources: {},
    memoryMaxBytes: 64 * 2 ** 20,
  });
  const owner = { namespace, name, uid };
  return { owner, plan: buildReplicaPlan(replicaSpec(owner, replica, objects, [])) };
}
