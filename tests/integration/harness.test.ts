// The integration harness itself: the control plane that global-setup.ts started is real,
// healthy, of the pinned release, and gives each test its own namespace; and the harness's
// start path (tests/cluster/lib.sh) never takes a starting process for a failed one, while a
// start that does fail stops what it started and shows its own log.
import { execFile } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { CoreV1Api, Health, VersionApi } from "@kubernetes/client-node";
import { describe, expect, inject } from "vitest";
import { exec } from "../fixtures/exec.ts";
import { freePort } from "../fixtures/ports.ts";
import { test } from "./cluster.ts";

const run = promisify(execFile);
const cluster = inject("cluster");
const clusterDir = resolve(import.meta.dirname, "../cluster");

/** Runs a bash script to its end with extra environment; never rejects on its exit status. */
const bash = (script: string, env: NodeJS.ProcessEnv, timeoutMs: number) =>
  exec("bash", ["-c", script], { env: { ...process.env, ...env }, timeoutMs });

/** True when something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.setTimeout(2_000);
    socket.once("connect", () => {
      socket.destroy();
      done(true);
    });
    socket.once("error", () => done(false));
    socket.once("timeout", () => {
      socket.destroy();
      done(false);
    });
  });
}

/** Pids of live processes whose command line mentions `text`. */
function processesMentioning(text: string): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(text);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe("integration harness", () => {
  test("/readyz is ok through the client", async ({ kc }) => {
    expect(await new Health(kc).readyz({})).toBe(true);
  });

  test("the API server reports the pinned release", async ({ kc }) => {
    expect(cluster.kubernetesVersion).toMatch(/^v1\.\d+\.\d+$/);
    const version = await kc.makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toBe(cluster.kubernetesVersion);
    expect(version.gitTreeState).toBe("clean");
  });

  test("kubectl version reports the pinned release for client and server", async () => {
    const { stdout } = await run(
      join(cluster.binDir, "kubectl"),
      ["version", "-o", "json", "--kubeconfig", cluster.kubeconfig],
      { timeout: 30_000 },
    );
    const v = JSON.parse(stdout) as {
      clientVersion: { gitVersion: string; major: string; minor: string };
      serverVersion: { gitVersion: string };
    };
    expect(v.clientVersion.gitVersion).toBe(cluster.kubernetesVersion);
    expect(v.serverVersion.gitVersion).toBe(cluster.kubernetesVersion);
    expect(`v${v.clientVersion.major}.${v.clientVersion.minor}`).toBe(
      cluster.kubernetesVersion.split(".").slice(0, 2).join("."),
    );
  });

  test("each test gets a fresh namespace with a default ServiceAccount", async ({ kc, namespace }) => {
    const core = kc.makeApiClient(CoreV1Api);
    const ns = await core.readNamespace({ name: namespace });
    expect(ns.metadata?.labels?.["agenttype.dev/test-namespace"]).toBe("true");
    // The controller-manager (token and root-CA controllers) is running.
    const cm = await core.readNamespacedConfigMap({ name: "kube-root-ca.crt", namespace });
    expect(cm.data?.["ca.crt"]).toContain("BEGIN CERTIFICATE");
    await core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: "probe" }, data: { ok: "yes" } },
    });
    const list = await core.listNamespacedConfigMap({ namespace });
    expect(list.items.map((c) => c.metadata?.name)).toContain("probe");
  });

  test("namespaces are not shared between tests", async ({ namespace }) => {
    expect(namespace).toMatch(/^it-namespaces-are-not-shared-between-tests-[0-9a-f]{6}$/);
  });
});

describe("cluster harness: starting and stopping components", () => {
  test("200 starts in a row: at_start returns once the program runs, never before", async () => {
    // The real start path of cluster.sh and node.sh (lib.sh's at_start and at_stop) on a stub
    // component: sleep, under the component's name. Before the fix, a check of the process
    // right after the start saw bash or setsid instead of the program in about 1 start in 15.
    const dir = mkdtempSync(join(tmpdir(), "harness-starts-"));
    try {
      const script = `
        set -euo pipefail
        source ${JSON.stringify(join(clusterDir, "lib.sh"))}
        stub=${JSON.stringify(join(dir, "agenttype-stub"))}
        ln -s "$(command -v sleep)" "$stub"
        for i in $(seq 1 200); do
          at_start agenttype-stub "$stub" 600 2>/dev/null
          at_pid_alive agenttype-stub || { echo "start $i was not running when at_start returned" >&2; exit 1; }
          at_stop agenttype-stub 2>/dev/null
          echo "started $i"
        done`;
      const started = Date.now();
      const r = await bash(script, { AGENTTYPE_STATE: join(dir, "state") }, 170_000);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout.trim().split("\n")).toHaveLength(200);
      expect(processesMentioning(join(dir, "agenttype-stub"))).toEqual([]);
      console.log(
        `[harness] 200 starts and stops of a stub component in ${((Date.now() - started) / 1000).toFixed(1)}s`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("two builds of one cached tool at once: the second waits for the first and reuses its build", async () => {
    // What `make test` relies on when tests/prebuild.sh builds a tool in the background while a
    // tier asks for it: lib.sh's at_build_reuse takes the build's lock, so the second builder
    // never starts a build of its own and never sees a half-made one.
    const dir = mkdtempSync(join(tmpdir(), "harness-build-lock-"));
    const builder = `
      set -euo pipefail
      source ${JSON.stringify(join(clusterDir, "lib.sh"))}
      out=${JSON.stringify(join(dir, "tool"))}
      at_build_reuse "$out" "pin=1" "$out/tool"
      echo "building as $1" >> ${JSON.stringify(join(dir, "builds.log"))}
      mkdir -p "$out.partial"; sleep 2; echo "made by $1" > "$out.partial/tool"
      at_build_done "$out.partial" "$out" "pin=1"
      echo "$out/tool"`;
    try {
      const first = bash(builder.replaceAll("$1", "first"), {}, 60_000);
      // The second starts while the first holds the lock (it sleeps 2 s inside it).
      await new Promise((done) => setTimeout(done, 500));
      const second = await bash(builder.replaceAll("$1", "second"), {}, 60_000);
      const firstResult = await first;
      expect(firstResult.code).toBe(0);
      expect(second.code).toBe(0);
      expect(second.stderr).toContain(`waiting for another build of ${join(dir, "tool")}`);
      expect(second.stderr).toContain("already built");
      expect(second.stdout.trim()).toBe(join(dir, "tool/tool"));
      expect(readFileSync(join(dir, "builds.log"), "utf8")).toBe("building as first\n");
      expect(readFileSync(join(dir, "tool/tool"), "utf8")).toBe("made by first\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a component that fails to start: its own log is shown, and what the run started is stopped", async () => {
    // A control plane of its own (state dir, ports) whose kube-apiserver is given a service
    // range it refuses: etcd starts, the apiserver exits at once.
    const state = mkdtempSync(join(tmpdir(), "harness-failed-start-"));
    const [apiserver, etcd, peer, kcm] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const env = {
      AGENTTYPE_STATE: state,
      AGENTTYPE_APISERVER_IP: "127.0.0.1",
      AGENTTYPE_APISERVER_PORT: String(apiserver),
      AGENTTYPE_ETCD_CLIENT_PORT: String(etcd),
      AGENTTYPE_ETCD_PEER_PORT: String(peer),
      AGENTTYPE_KCM_PORT: String(kcm),
      AGENTTYPE_SERVICE_CIDR: "10.96.0.0/99",
    };
    // The log of an earlier start, which the failure must not pass off as its cause.
    mkdirSync(join(state, "logs"));
    writeFileSync(join(state, "logs/kube-apiserver.log"), "an earlier apiserver's shutdown log\n");
    try {
      const r = await bash(
        `${JSON.stringify(join(clusterDir, "cluster.sh"))} up control-plane`,
        env,
        170_000,
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("kube-apiserver exited");
      expect(r.stderr).toContain("service-cluster-ip-range[0] is not a valid cidr");
      expect(r.stderr).not.toContain("an earlier apiserver's shutdown log");
      expect(r.stderr).toMatch(/stopping what this run started: etcd kube-apiserver/);
      expect(readFileSync(join(state, "logs/kube-apiserver.log.1"), "utf8")).toContain(
        "an earlier apiserver",
      );
      // Nothing of this run is left running or listening, and no pidfile claims otherwise.
      expect(processesMentioning(state)).toEqual([]);
      expect(await listening(etcd)).toBe(false);
      expect(await listening(peer)).toBe(false);
      expect(readdirSync(join(state, "run")).filter((f) => f.endsWith(".pid"))).toEqual([]);
      // No address is recorded for an apiserver that is not running: the next up chooses afresh.
      expect(existsSync(join(state, "apiserver-ip"))).toBe(false);
    } finally {
      await bash(`${JSON.stringify(join(clusterDir, "cluster.sh"))} down control-plane`, env, 120_000);
      if (existsSync(state)) rmSync(state, { recursive: true, force: true });
    }
  });
});
