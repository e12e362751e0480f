// vitest globalSetup of the kind tier: the harness's own Docker engine (tests/kind/docker.sh),
// started before the files run and stopped after them (everything it changed put back), unless
// AGENTTYPE_KEEP_DOCKER=1. Its DOCKER_HOST, DOCKER_CONFIG and client are exported for the test
// workers, which are forked after this and inherit them.
import { resolve } from "node:path";
import { execOk } from "../fixtures/exec.ts";

const dockerSh = resolve(import.meta.dirname, "docker.sh");

export async function setup(): Promise<() => Promise<void>> {
  // The first run installs docker.io with apt.
  await execOk(dockerSh, ["up"], { timeoutMs: 600_000 });
  for (const line of (await execOk(dockerSh, ["env"])).trim().split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) process.env[line.slice(0, at)] = line.slice(at + 1);
  }
  return async () => {
    if (process.env.AGENTTYPE_KEEP_DOCKER === "1") return;
    await execOk(dockerSh, ["down"], { timeoutMs: 300_000 });
  };
}
