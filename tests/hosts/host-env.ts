// What the host tier's globalSetup hands the tests: the test host's address, keys and paths,
// and connections to it made the way the operator makes them.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { inject } from "vitest";
import { SshConnection, type SshOptions, type SshTarget } from "../../operator/drivers/ssh/connection.ts";

const hostSh = resolve(dirname(fileURLToPath(import.meta.url)), "host.sh");

export interface TestHost {
  address: string;
  port: number;
  user: string;
  hostKey: string;
  clientKey: string;
  authorizedKeys: string;
  containerdSocket: string;
  containerdVersion: string;
  cgroupParent: string;
  gatewayIp: string;
  testImage: string;
  criProto: string;
  /** The harness's state directory on the host (the driver's state goes below it). */
  state: string;
}

export function testHost(): TestHost {
  const env = inject("hostEnv");
  const get = (name: string) => {
    const v = env[name];
    if (!v) throw new Error(`${name} missing: run these tests through the hosts globalSetup`);
    return v;
  };
  return {
    address: get("AGENTTYPE_HOST_ADDRESS"),
    port: Number(get("AGENTTYPE_HOST_SSH_PORT")),
    user: get("AGENTTYPE_HOST_USER"),
    hostKey: get("AGENTTYPE_HOST_KEY"),
    clientKey: readFileSync(get("AGENTTYPE_HOST_CLIENT_KEY"), "utf8"),
    authorizedKeys: get("AGENTTYPE_HOST_AUTHORIZED_KEYS"),
    containerdSocket: get("AGENTTYPE_HOST_CONTAINERD_SOCKET"),
    containerdVersion: get("AGENTTYPE_HOST_CONTAINERD_VERSION"),
    cgroupParent: get("AGENTTYPE_HOST_CGROUP_PARENT"),
    gatewayIp: get("AGENTTYPE_HOST_GATEWAY_IP"),
    testImage: get("AGENTTYPE_HOST_TEST_IMAGE"),
    criProto: get("AGENTTYPE_CRI_PROTO"),
    state: get("AGENTTYPE_HOST_STATE"),
  };
}

export function sshTarget(host: TestHost, overrides: Partial<SshTarget> = {}): SshTarget {
  return {
    host: host.address,
    port: host.port,
    username: host.user,
    privateKey: host.clientKey,
    hostKey: host.hostKey,
    ...overrides,
  };
}

export function connect(
  host: TestHost,
  options: Partial<SshOptions> = {},
  overrides: Partial<SshTarget> = {},
) {
  return new SshConnection(sshTarget(host, overrides), options);
}

/** Runs a host.sh command (sshd-stop, sshd-start, containerd-restart). */
export function hostCommand(command: "sshd-stop" | "sshd-start" | "containerd-restart"): void {
  execFileSync(hostSh, [command], { stdio: ["ignore", "ignore", "inherit"], timeout: 60_000 });
}
