// vitest globalSetup of the host tier: a test host (tests/hosts/host.sh: its own sshd and
// containerd in a network namespace) and the CRI protocol definition for the containerd
// driver (fetched from the Go module proxy into the cache). The host is stopped at the end of
// the run, leaving nothing behind, unless AGENTTYPE_KEEP_HOST=1.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";

const here = dirname(fileURLToPath(import.meta.url));
const hostSh = resolve(here, "host.sh");
const criProtoSh = resolve(here, "../../operator/drivers/containerd/cri-proto.sh");

declare module "vitest" {
  export interface ProvidedContext {
    hostEnv: Record<string, string>;
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

function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) env[line.slice(0, at)] = line.slice(at + 1);
  }
  return env;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const proto = await run([criProtoSh], 300_000);
  await run([hostSh, "up"], 900_000);
  const env = parseEnv(
    readFileSync(resolve(process.env.AGENTTYPE_HOST_STATE ?? "/var/lib/agenttype-host", "host.env"), "utf8"),
  );
  env.AGENTTYPE_CRI_PROTO = proto;
  project.provide("hostEnv", env);
  console.log(
    `hosts: test host up in ${((Date.now() - started) / 1000).toFixed(1)} s (containerd ${env.AGENTTYPE_HOST_CONTAINERD_VERSION})`,
  );
  return async () => {
    if (process.env.AGENTTYPE_KEEP_HOST === "1") return;
    await run([hostSh, "down"], 120_000);
  };
}
