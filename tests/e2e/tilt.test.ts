// The developer's loop, on the full-node tier: Tilt (built from the Go module proxy by
// tests/cluster/build-tilt.sh) runs the Tiltfile with `-- --local` against the project's own
// cluster. `tilt ci` builds the three images and the demo's with buildah, imports them into
// containerd, deploys the dev overlay's operator and the demo, and waits for both agents;
// `tilt up` then live-updates an edited operator file into the running container, where
// `node --watch` restarts the operator. Tilt runs in a copy of the repository (the files git
// tracks or would track), so the edit never touches the checkout.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { eventually } from "../fixtures/eventually.ts";
import { copyRepository, liveUpdateOperator } from "../fixtures/tilt.ts";
import { e2eCluster } from "./cluster-env.ts";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const { kubeconfig, bin } = e2eCluster();
const T = 600_000;

let copy = "";
let tilt = "";
let env: NodeJS.ProcessEnv = {};

interface Run {
  code: number | null;
  output: string;
}

/** Runs a command to its end, its stdout and stderr together. */
function run(
  cmd: string,
  args: string[],
  cwd: string,
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd, env: options.env ?? env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (c: Buffer) => {
      output += c;
    });
    child.stderr.on("data", (c: Buffer) => {
      output += c;
    });
    child.on("error", reject);
    child.on("close", (code) => resolvePromise({ code, output }));
  });
}

beforeAll(async () => {
  const built = await run("bash", [join(repo, "tests/cluster/build-tilt.sh")], repo, { env: process.env });
  if (built.code !== 0) throw new Error(`tests/cluster/build-tilt.sh failed:\n${built.output}`);
  tilt = built.output.trim().split("\n").at(-1) ?? "";
  copy = mkdtempSync(join(tmpdir(), "agenttype-tilt-"));
  await copyRepository(copy);
  env = {
    ...process.env,
    KUBECONFIG: kubeconfig,
    // kubectl for Tilt and the Tiltfile, node for the harness scripts the Tiltfile calls.
    PATH: `${bin}:${dirname(process.execPath)}:${process.env.PATH ?? ""}`,
  };
  // A cold build of Tilt compiles for about five minutes.
}, 900_000);

afterAll(async () => {
  if (copy === "") return;
  const down = await run(tilt, ["down", "--delete-namespaces", "--", "--local"], copy);
  if (down.code !== 0) process.stderr.write(`tilt down failed:\n${down.output}\n`);
  await eventually(
    "the Tiltfile's namespaces to be gone",
    async () => {
      const left = await run(join(bin, "kubectl"), ["get", "namespaces", "-o", "name"], copy);
      return !/agenttype-(demo|system)\b/.test(left.output);
    },
    180_000,
  );
  rmSync(copy, { recursive: true, force: true });
}, 300_000);

describe("Tiltfile on the project's cluster (tilt -- --local)", () => {
  test(
    "tilt ci builds the images with buildah, deploys the operator and the demo, and both agents finish",
    async () => {
      const ci = await run(tilt, ["ci", "--port", "0", "--timeout", "8m", "--", "--local"], copy);
      expect(ci.code, ci.output.slice(-4000)).toBe(0);
      expect(ci.output).toContain("SUCCESS. All workloads are healthy.");
      // tilt ci ends once the pods are Ready; the agents finish their run a moment later.
      for (const agent of ["node-agent", "python-agent"]) {
        await eventually(
          `${agent} to finish its run`,
          async () => {
            const logs = await run(
              join(bin, "kubectl"),
              ["logs", "-n", "agenttype-demo", `deploy/${agent}`, "-c", "agent"],
              copy,
            );
            return /^llm: You said: /m.test(logs.output) && /^agent done/m.test(logs.output);
          },
          60_000,
        );
      }
      // The operator runs the images Tilt built, and so do the agents' pods it made.
      const images = await run(
        join(bin, "kubectl"),
        ["get", "pods", "-n", "agenttype-demo", "-o", "jsonpath={..image}"],
        copy,
      );
      expect(images.output).toMatch(/localhost\/agenttype\/sidecar:tilt-build-\d+/);
      expect(images.output).toMatch(/localhost\/agenttype\/wrapper:tilt-build-\d+/);
    },
    T,
  );

  test(
    "tilt up live-updates an edited operator file into the running operator, which restarts",
    async () => {
      const afterEdit = await liveUpdateOperator(
        tilt,
        ["--local"],
        copy,
        env,
        "tests/e2e/tilt.test.ts",
        "new",
      );
      // A live update, not a rebuild of the operator's image.
      expect(afterEdit).not.toContain("Building Custom Build: [localhost/agenttype/operator]");
    },
    T,
  );
});
