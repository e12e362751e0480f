// The operator as its image ships it: bundled by operator/bundle.ts and started as the
// Dockerfile's ENTRYPOINT starts it, in a process of its own. The tiers with an API server run
// the same bundle (tests/integration/operator-process.ts); this one needs none.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { eventually } from "../tests/fixtures/eventually.ts";
import { operatorBundle } from "../tests/fixtures/operator-bundle.ts";
import { freePort } from "../tests/fixtures/ports.ts";
import { writeUnreachableKubeconfig } from "../tests/fixtures/unreachable-kubeconfig.ts";
import { OPERATOR_ENV, OPERATOR_NODE_FLAGS } from "./bundle.ts";

const root = new URL("../", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "operator-bundle-"));
let child: ChildProcess | undefined;

afterAll(() => {
  child?.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("the bundled operator", () => {
  it("is what the image starts, with the same Node flags and environment", () => {
    const dockerfile = readFileSync(join(root, "Dockerfile"), "utf8");
    const operatorStage = dockerfile.slice(dockerfile.indexOf("FROM operator-base AS operator\n"));
    const entrypoint = JSON.stringify(["node", ...OPERATOR_NODE_FLAGS, "operator/main.mjs"]);
    expect(operatorStage.replaceAll(", ", ",")).toContain(`ENTRYPOINT ${entrypoint}`);
    for (const [name, value] of Object.entries(OPERATOR_ENV))
      expect(operatorStage).toContain(`ENV ${name}=${value}\n`);
  });

  it("prints its flags for --help and exits 0", async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [...OPERATOR_NODE_FLAGS, await operatorBundle(), "--help"],
      { timeout: 30_000 },
    );
    expect(stdout).toMatch(/^Usage: node operator\/main\.mjs/m);
    expect(stdout).toContain("--leader-election");
  }, 60_000);

  it("starts and answers /healthz while no API server answers", async () => {
    const kubeconfig = join(dir, "kubeconfig");
    writeUnreachableKubeconfig(kubeconfig);
    const port = await freePort();
    let output = "";
    child = spawn(process.execPath, [...OPERATOR_NODE_FLAGS, await operatorBundle()], {
      env: { ...process.env, KUBECONFIG: kubeconfig, BIND_ADDRESS: "127.0.0.1", PORT: String(port) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr?.on("data", (c: Buffer) => (output += c.toString()));
    await eventually(
      "the bundled operator to answer /healthz",
      async () => {
        if (child?.exitCode !== null) throw new Error(`the operator exited ${child?.exitCode}: ${output}`);
        const response = await fetch(`http://127.0.0.1:${port}/healthz`, {
          signal: AbortSignal.timeout(2000),
        });
        return response.ok;
      },
      20_000,
    );
  }, 60_000);
});
