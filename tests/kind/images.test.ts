// `docker build` of every target of the project's Dockerfile, its public bases replaced by images
// made here from Debian packages (tests/kind/images.sh), and each image run as a pod would run it.
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { SIDECAR_CONFIG_PATH } from "../../api/sidecarconfig.ts";
import { eventually } from "../fixtures/eventually.ts";
import { execOk } from "../fixtures/exec.ts";
import { writeUnreachableKubeconfig } from "../fixtures/unreachable-kubeconfig.ts";
import { docker, dockerRun } from "./docker-env.ts";

const TAG = "kind";
const TARGETS = ["operator", "operator-dev", "sidecar", "wrapper"];
let dir: string;
const started: string[] = [];

beforeAll(async () => {
  // Cold: the bases, then npm ci, esbuild and the CRI proto from the registries (minutes).
  await execOk(`${import.meta.dirname}/images.sh`, ["project"], { timeoutMs: 1_500_000 });
  dir = mkdtempSync(join(tmpdir(), "agenttype-kind-images-"));
  chmodSync(dir, 0o755);
}, 1_600_000);

afterAll(async () => {
  for (const name of started) await dockerRun(["rm", "-f", name]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs IMAGE detached with its port PORT published on loopback; resolves with host:port. */
async function start(name: string, image: string, port: number, args: string[]): Promise<string> {
  await dockerRun(["rm", "-f", name]);
  started.push(name);
  await docker(["run", "-d", "--name", name, "-p", `127.0.0.1::${port}`, ...args, image]);
  return (await docker(["port", name, String(port)])).trim().split("\n")[0] ?? "";
}

async function get(what: string, url: string): Promise<string> {
  return eventually(
    what,
    async () => {
      const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
      return r.ok && (await r.text());
    },
    60_000,
    500,
  );
}

describe("docker build of the Dockerfile's targets", () => {
  test("every target is built, from the local bases only", async () => {
    for (const target of TARGETS) {
      const image = JSON.parse(await docker(["image", "inspect", `localhost/agenttype/${target}:${TAG}`]))[0];
      expect(image.Config.User, target).toBe("65532:65532");
    }
  });

  test("the operator starts and answers /healthz", async () => {
    const kubeconfig = join(dir, "kubeconfig");
    writeUnreachableKubeconfig(kubeconfig);
    for (const target of ["operator", "operator-dev"]) {
      const at = await start(`at-kind-${target}`, `localhost/agenttype/${target}:${TAG}`, 8080, [
        "-v",
        `${kubeconfig}:/kube/config:ro`,
        "-e",
        "KUBECONFIG=/kube/config",
        "--read-only",
      ]);
      expect(await get(`${target} /healthz`, `http://${at}/healthz`)).toBe("ok");
    }
  });

  test("the sidecar answers /readyz with a minimal config", async () => {
    const config = join(dir, "sidecar.json");
    writeFileSync(
      config,
      JSON.stringify({
        agent: { name: "kind", namespace: "default" },
        listen: { port: 4000, metricsPort: 9090, metricsHost: "0.0.0.0" },
        // No llm: the smallest config the sidecar accepts.
        memory: { type: "ephemeral", maxBytes: 1_000_000 },
      }),
      { mode: 0o644 },
    );
    const at = await start("at-kind-sidecar", `localhost/agenttype/sidecar:${TAG}`, 9090, [
      "-v",
      `${config}:${SIDECAR_CONFIG_PATH}:ro`,
      "--read-only",
    ]);
    expect(await get("sidecar /readyz", `http://${at}/readyz`)).toBe("ok");
  });

  test("the wrapper image copies its files into the directory given", async () => {
    const out = join(dir, "opt-agenttype");
    rmSync(out, { recursive: true, force: true });
    await execOk("install", ["-d", "-o", "65532", "-g", "65532", out]);
    const r = await dockerRun([
      "run",
      "--rm",
      "-v",
      `${out}:/opt/agenttype`,
      `localhost/agenttype/wrapper:${TAG}`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(expect.arrayContaining(["env.sh", "node", "python"]));
    expect(existsSync(join(out, "node", "register.cjs"))).toBe(true);
  });
});
