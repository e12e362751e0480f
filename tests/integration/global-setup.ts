// vitest globalSetup of the integration tier: a real etcd + kube-apiserver + kube-controller-manager
// started once per run by tests/cluster/cluster.sh (which reuses a healthy running one).
// Tests read the admin kubeconfig with `inject("kubeconfig")` (or process.env.KUBECONFIG);
// tests/integration/cluster.ts wraps that. The control plane is stopped at the end of the run
// unless AGENTTYPE_KEEP_CLUSTER=1, or unless it was already running before the run started.
import { execFile, spawn } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { TestProject } from "vitest/node";

const run = promisify(execFile);
const clusterDir = resolve(dirname(fileURLToPath(import.meta.url)), "../cluster");
const clusterSh = resolve(clusterDir, "cluster.sh");

export interface ClusterInfo {
  /** admin kubeconfig (system:masters) */
  kubeconfig: string;
  /** directory of the pinned binaries (kubectl, helm, ...) */
  binDir: string;
  /** pinned Kubernetes release, e.g. v1.34.4 */
  kubernetesVersion: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfig: string;
    cluster: ClusterInfo;
  }
}

/** Run a bash script; resolve with its stdout. Its stderr (the scripts' progress log) is shown. */
function bash(script: string, timeoutMs: number): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn("bash", ["-c", script], { stdio: ["ignore", "pipe", "inherit"], timeout: timeoutMs });
    let stdout = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolvePromise(stdout.trim());
      else reject(new Error(`${script} failed (${signal ?? `exit ${code}`})`));
    });
  });
}

async function clusterHealthy(): Promise<boolean> {
  try {
    await run(clusterSh, ["status", "control-plane"], { timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const wasRunning = await clusterHealthy();
  // The first run may build the binaries from the Go module proxy (15-30 minutes on 2 cores).
  const out = await bash(`${JSON.stringify(clusterSh)} up control-plane`, 45 * 60_000);
  const kubeconfig = out.split("\n").at(-1) ?? "";
  if (!kubeconfig.startsWith("/")) throw new Error(`cluster.sh up printed no kubeconfig path: ${out}`);
  const pins = await bash(
    `source ${JSON.stringify(resolve(clusterDir, "lib.sh"))} && echo "$AGENTTYPE_BIN" && echo "$K8S_VERSION"`,
    10_000,
  );
  const [binDir = "", kubernetesVersion = ""] = pins.split("\n");
  const info: ClusterInfo = { kubeconfig, binDir, kubernetesVersion };
  project.provide("kubeconfig", kubeconfig);
  project.provide("cluster", info);
  // Test workers are forked after global setup and inherit the environment.
  process.env.KUBECONFIG = kubeconfig;
  process.env.PATH = `${binDir}:${process.env.PATH ?? ""}`;
  console.log(
    `[integration] control plane ${wasRunning ? "reused" : "started"} in ${((Date.now() - started) / 1000).toFixed(1)}s; KUBECONFIG=${kubeconfig}`,
  );

  return async () => {
    if (process.env.AGENTTYPE_KEEP_CLUSTER === "1" || wasRunning) {
      console.log(
        `[integration] leaving the control plane running (${wasRunning ? "it was running before this run" : "AGENTTYPE_KEEP_CLUSTER=1"}); stop it with: tests/cluster/cluster.sh down`,
      );
      return;
    }
    await bash(`${JSON.stringify(clusterSh)} down control-plane`, 120_000);
  };
}
