// vitest globalSetup of the guest tier: a KVM host (tests/guests/kvm-host.sh: the host tier's
// netns host with libvirtd and QEMU in it, a NAT network, the guest image built from Debian
// packages) and the CRI protocol definition the containerd driver in the guests speaks. The
// host is stopped at the end of the run, leaving nothing behind, unless AGENTTYPE_KEEP_HOST=1.
import { spawn } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { parseEnv } from "./guest-env.ts";

const here = dirname(fileURLToPath(import.meta.url));
const kvmHostSh = resolve(here, "kvm-host.sh");
const criProtoSh = resolve(here, "../../operator/drivers/containerd/cri-proto.sh");

declare module "vitest" {
  export interface ProvidedContext {
    kvmHostEnv: Record<string, string>;
  }
}

/** Runs a command; resolves with its stdout, its stderr (progress) shown as it comes. */
function run(argv: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const [command, ...args] = argv as [string, ...string[]];
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"], timeout: timeoutMs });
    let stdout = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolvePromise(stdout.trim());
      else reject(new Error(`${argv.join(" ")} failed (${signal ?? `exit ${code}`})`));
    });
  });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const proto = await run([criProtoSh], 300_000);
  await run([kvmHostSh, "up"], 1_800_000);
  const env = parseEnv(await run([kvmHostSh, "env"], 30_000));
  env.AGENTTYPE_CRI_PROTO = proto;
  project.provide("kvmHostEnv", env);
  console.log(
    `guests: KVM host up in ${((Date.now() - started) / 1000).toFixed(1)} s (libvirt ${env.AGENTTYPE_KVM_LIBVIRT_VERSION}, QEMU ${env.AGENTTYPE_KVM_QEMU_VERSION})`,
  );
  return async () => {
    if (process.env.AGENTTYPE_KEEP_HOST === "1") return;
    await run([kvmHostSh, "down"], 300_000);
  };
}
