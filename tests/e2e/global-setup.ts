// vitest globalSetup of the end-to-end tier: brings up the full local cluster (control plane +
// containerd + kubelet + scheduler + kube-proxy), reusing one that is already healthy, builds
// the test images without Docker and imports them into the node, and tears the cluster down at
// the end unless AGENTTYPE_KEEP_CLUSTER=1.
//
// The tests read what they need from the environment set here:
//   AGENTTYPE_KUBECONFIG  admin kubeconfig      AGENTTYPE_BIN  kubectl and friends
//   AGENTTYPE_TEST_IMAGE  image built from tests/cluster/testimage/Dockerfile
import { spawn, spawnSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const clusterDir = resolve(repo, "tests/cluster");

function log(msg: string): void {
  process.stderr.write(`[e2e global-setup] ${msg}\n`);
}

/** Runs a harness script with its output on our stderr; rejects on failure. Asynchronous so
 *  vitest's event loop (worker shutdown, timers) keeps running during the minutes it may take. */
async function run(script: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const t0 = Date.now();
  const child = spawn("bash", [resolve(clusterDir, script), ...args], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.pipe(process.stderr, { end: false });
  child.stderr.pipe(process.stderr, { end: false });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res, rej) => {
    child.on("error", rej);
    child.on("close", (c, s) => res([c, s]));
  });
  if (code !== 0) {
    throw new Error(`${script} ${args.join(" ")} failed (exit ${code ?? signal})`);
  }
  log(`${script} ${args.join(" ")}: ${((Date.now() - t0) / 1000).toFixed(1)}s`);
}

function succeeds(script: string, args: string[], env: NodeJS.ProcessEnv): boolean {
  return spawnSync("bash", [resolve(clusterDir, script), ...args], { env, stdio: "ignore" }).status === 0;
}

/** Variables of tests/cluster/lib.sh as the scripts see them. */
function libVars(env: NodeJS.ProcessEnv, names: string[]): Record<string, string> {
  const script = `. ${JSON.stringify(resolve(clusterDir, "lib.sh"))}; ${names
    .map((n) => `printf '%s\\n' "$${n}"`)
    .join("; ")}`;
  const r = spawnSync("bash", ["-c", script], { env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`reading lib.sh failed: ${r.stderr}`);
  const values = r.stdout.split("\n");
  return Object.fromEntries(names.map((n, i) => [n, values[i] ?? ""]));
}

export default async function setup(): Promise<() => Promise<void>> {
  // The apiserver must be reachable from pods (the `kubernetes` Service): `cluster.sh up full`
  // binds it on the bridge gateway that node.sh creates (`node.sh env`); `status` must look
  // for it there too.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AGENTTYPE_APISERVER_IP: process.env.AGENTTYPE_APISERVER_IP ?? "10.88.0.1",
  };
  const t0 = Date.now();
  if (succeeds("cluster.sh", ["status"], env)) {
    log("reusing the running, healthy full tier");
  } else {
    await run("cluster.sh", ["up", "full"], env);
  }
  await run("images.sh", ["all"], env);
  log(`cluster ready in ${((Date.now() - t0) / 1000).toFixed(1)}s`);

  const vars = libVars(env, ["AGENTTYPE_KUBECONFIG", "AGENTTYPE_BIN"]);
  process.env.AGENTTYPE_APISERVER_IP = env.AGENTTYPE_APISERVER_IP;
  process.env.AGENTTYPE_KUBECONFIG = vars.AGENTTYPE_KUBECONFIG;
  process.env.AGENTTYPE_BIN = vars.AGENTTYPE_BIN;
  process.env.AGENTTYPE_TEST_IMAGE ??= "localhost/agenttype/testimage:latest";

  return async () => {
    if (process.env.AGENTTYPE_KEEP_CLUSTER === "1") {
      log(`AGENTTYPE_KEEP_CLUSTER=1: leaving the cluster up (KUBECONFIG=${vars.AGENTTYPE_KUBECONFIG})`);
      return;
    }
    // node.sh down, the control plane, then node.sh net-down (the bridge the apiserver bound).
    await run("cluster.sh", ["down"], env);
  };
}
