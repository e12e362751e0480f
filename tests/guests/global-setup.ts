// vitest globalSetup of the guest tier: a KVM host (tests/guests/kvm-host.sh: the host tier's
// netns host with libvirtd and QEMU in it, a NAT network, the guest image built from Debian
// packages), the CRI protocol definition the containerd driver in the guests speaks, and a
// control plane of the tier's own for the files that run the operator. The host is stopped at
// the end of the run, leaving nothing behind, unless AGENTTYPE_KEEP_HOST=1; the control plane
// too, unless it ran before or AGENTTYPE_KEEP_CLUSTER=1.
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { controlPlaneUp, parseEnv, run } from "../fixtures/control-plane.ts";

const here = dirname(fileURLToPath(import.meta.url));
const kvmHostSh = resolve(here, "kvm-host.sh");
const criProtoSh = resolve(here, "../../operator/drivers/containerd/cri-proto.sh");

/**
 * The tier's control plane, for the operator's files: state and ports of its own, clear of the
 * default cluster's (6443, 2379, 2380, 10257) and the host tier's (6543, 2479, 2480, 10357).
 */
export const guestsControlPlane = {
  AGENTTYPE_STATE: "/var/lib/agenttype-h13",
  AGENTTYPE_APISERVER_PORT: "7243",
  AGENTTYPE_ETCD_CLIENT_PORT: "3179",
  AGENTTYPE_ETCD_PEER_PORT: "3180",
  AGENTTYPE_KCM_PORT: "11157",
};

declare module "vitest" {
  export interface ProvidedContext {
    kvmHostEnv: Record<string, string>;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const proto = await run([criProtoSh], 300_000);
  await run([kvmHostSh, "up"], 1_800_000);
  const controlPlaneDown = await controlPlaneUp(guestsControlPlane);
  const env = parseEnv(await run([kvmHostSh, "env"], 30_000));
  env.AGENTTYPE_CRI_PROTO = proto;
  project.provide("kvmHostEnv", env);
  console.log(
    `guests: KVM host up in ${((Date.now() - started) / 1000).toFixed(1)} s (libvirt ${env.AGENTTYPE_KVM_LIBVIRT_VERSION}, QEMU ${env.AGENTTYPE_KVM_QEMU_VERSION})`,
  );
  return async () => {
    await controlPlaneDown();
    if (process.env.AGENTTYPE_KEEP_HOST === "1") return;
    await run([kvmHostSh, "down"], 300_000);
  };
}
