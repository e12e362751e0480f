// vitest globalSetup of the host tier: a test host (tests/hosts/host.sh: its own sshd and
// containerd in a network namespace), the CRI protocol definition for the containerd driver
// (fetched from the Go module proxy into the cache), and a control plane of the tier's own
// (tests/cluster/cluster.sh with its own state and ports, so the tier runs beside the e2e and
// integration tiers). The host is stopped at the end of the run, leaving nothing behind, unless
// AGENTTYPE_KEEP_HOST=1; the control plane too, unless it ran before or AGENTTYPE_KEEP_CLUSTER=1.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { controlPlaneUp, parseEnv, run } from "../fixtures/control-plane.ts";

const here = dirname(fileURLToPath(import.meta.url));
const hostSh = resolve(here, "host.sh");
const criProtoSh = resolve(here, "../../operator/drivers/containerd/cri-proto.sh");

/**
 * The tier's control plane: state and ports of its own (the default cluster's are 6443, 2379,
 * 2380 and 10257 under /var/lib/agenttype-cluster).
 */
export const hostsControlPlane = {
  AGENTTYPE_STATE: "/var/lib/agenttype-hosts-cluster",
  AGENTTYPE_APISERVER_PORT: "6543",
  AGENTTYPE_ETCD_CLIENT_PORT: "2479",
  AGENTTYPE_ETCD_PEER_PORT: "2480",
  AGENTTYPE_KCM_PORT: "10357",
};

declare module "vitest" {
  export interface ProvidedContext {
    hostEnv: Record<string, string>;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const proto = await run([criProtoSh], 300_000);
  await run([hostSh, "up"], 900_000);
  const controlPlaneDown = await controlPlaneUp(hostsControlPlane);
  const env = parseEnv(
    readFileSync(resolve(process.env.AGENTTYPE_HOST_STATE ?? "/var/lib/agenttype-host", "host.env"), "utf8"),
  );
  env.AGENTTYPE_CRI_PROTO = proto;
  project.provide("hostEnv", env);
  console.log(
    `hosts: test host up in ${((Date.now() - started) / 1000).toFixed(1)} s (containerd ${env.AGENTTYPE_HOST_CONTAINERD_VERSION})`,
  );
  return async () => {
    await controlPlaneDown();
    if (process.env.AGENTTYPE_KEEP_HOST === "1") return;
    await run([hostSh, "down"], 120_000);
  };
}
