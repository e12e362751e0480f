// `make bench-operator`: on the control-plane tier, how long the operator takes to bring N
// AgentTypes to their owned objects and status, against the API server's own ceiling: a plain
// client doing the same writes with the same concurrency and no operator, in the same run.
// Then, at steady state, what an operator restart and one resync write (counted with the API
// server's own metrics): nothing, for unchanged AgentTypes. It sets up what it needs (CRDs,
// namespaces) and removes what it made. With --fresh-control-plane (make passes it when it
// started the control plane itself) each side starts on a control plane started afresh, etcd
// wiped: measured at 10,000, whichever side ran second, after the other's 60,000 objects were
// made and deleted, took about 1.5 times as long. With --pin the control plane (etcd, the API
// server, the controller-manager) runs on the first core and the operator and this process (the
// ceiling's client) on the others, as in a cluster whose operator runs on a worker node:
// unpinned, every CPU-second the operator spends comes off the API server's. A control plane
// the bench did not start gets all the cores back at the end.
//   node tests/bench/operator.ts [--n 1000] [--concurrency 8] [--rounds 2] [--first ceiling|operator] [--fresh-control-plane] [--clock-only] [--pin] [--resync-seconds S] --kubeconfig PATH
// The last line is machine-readable.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { parseArgs, promisify } from "node:util";
import pino from "pino";
import { type AgentType, agentType } from "../../api/agenttype.ts";
import { buildObjects } from "../../operator/build/objects.ts";
import { computeStatus } from "../../operator/controllers/agenttype/status.ts";
import { loadAccess } from "../../operator/kube/access.ts";
import { isNotFound, KubeClient, type KubeObject, type ResourceType } from "../../operator/kube/client.ts";
import { EventRecorder } from "../../operator/kube/events.ts";
import { resources } from "../../operator/kube/resources.ts";
import {
  ApiServerMetrics,
  type RequestCounts,
  readsBetween,
  total,
  writesBetween,
} from "../fixtures/apiserver-writes.ts";
import { controlPlanePid } from "../fixtures/control-plane.ts";
import { loadSample } from "../fixtures/manifests.ts";
import { crdManifests, installCrds } from "../integration/crds.ts";
import { type OperatorProcess, startOperator } from "../integration/operator-process.ts";
import { describeGc, type GcPauses, gcBetween, gcPauses } from "./gc-trace.ts";
import { cpuSeconds } from "./load.ts";

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "1000" },
    concurrency: { type: "string", default: "8" },
    "resync-seconds": { type: "string" },
    rounds: { type: "string", default: "2" },
    first: { type: "string", default: "ceiling" },
    "fresh-control-plane": { type: "boolean", default: false },
    "clock-only": { type: "boolean", default: false },
    pin: { type: "boolean", default: false },
    kubeconfig: { type: "string", default: process.env.KUBECONFIG },
  },
});
const n = Number(values.n);
const concurrency = Number(values.concurrency);
// About as long as a resync of N takes on two busy cores; the operator's minimum is 10 s.
const resyncSeconds = Number(values["resync-seconds"] ?? Math.max(10, Math.ceil(n / 100)));
const rounds = Number(values.rounds);
if (values.first !== "ceiling" && values.first !== "operator")
  throw new Error(`--first must be "ceiling" or "operator", not ${JSON.stringify(values.first)}`);
const operatorFirst = values.first === "operator";
const freshControlPlane = values["fresh-control-plane"];
// Skips the restart and the resync: at 10,000 the wait for the controller-manager to make every
// Deployment's ReplicaSet before them (its 20 requests a second) takes longer than both clocks.
const clockOnly = values["clock-only"];
const pin = values.pin;
/** The cores this process may use at its start: --pin narrows the mask, and the count with it. */
const cores = availableParallelism();
if (pin && cores < 2) throw new Error("--pin needs two cores or more");
if (!values.kubeconfig) throw new Error("--kubeconfig or KUBECONFIG is required");
const kubeconfig = values.kubeconfig;
const client = new KubeClient(loadAccess({ KUBECONFIG: kubeconfig }));
const apiserver = new ApiServerMetrics(kubeconfig);
const suffix = Date.now().toString(36);
const RECONCILED = 'controller_runtime_reconcile_total{controller="agenttype",result="success"}';
const FAILED = 'controller_runtime_reconcile_total{controller="agenttype",result="error"}';
const QUEUE_DEPTH = 'workqueue_depth{name="agenttype"}';
const CRD: ResourceType = {
  group: "apiextensions.k8s.io",
  version: "v1",
  plural: "customresourcedefinitions",
  kind: "CustomResourceDefinition",
  namespaced: false,
};

/** Replicas 0: the benchmark measures the operator, not the controller-manager creating pods. */
function manifest(name: string, namespace: string) {
  const m = loadSample("agenttype_python-summarizer.yaml");
  m.metadata = { name, namespace };
  m.spec.replicas = 0;
  delete m.spec.tools;
  return m as KubeObject;
}

async function inParallel(count: number, limit: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      for (let i = next++; i < count; i = next++) await work(i);
    }),
  );
}

/** Deletes a namespace and waits until it is gone, so the next run starts on a quiet server. */
async function deleteNamespace(name: string): Promise<void> {
  await client.delete(resources.namespace, undefined, name);
  // The namespace controller deletes a few thousand objects a minute on a busy machine.
  const timeoutMs = 300_000 + n * 100;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      await client.get(resources.namespace, undefined, name);
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`namespace ${name} was not deleted within ${Math.round(timeoutMs / 60_000)} minutes`);
}

/** The objects of a kind a namespace holds, listed a page at a time. */
async function* listed<T extends KubeObject>(type: ResourceType, ns: string): AsyncGenerator<T> {
  let continueToken: string | undefined;
  do {
    const page = await client.list<T>(type, ns, { limit: 500, continue: continueToken });
    yield* page.items;
    continueToken = page.metadata.continue || undefined;
  } while (continueToken !== undefined);
}

/** How many objects of a kind a namespace holds. */
async function countObjects(type: ResourceType, ns: string): Promise<number> {
  let items = 0;
  for await (const _ of listed(type, ns)) items++;
  return items;
}

type WithConditions = KubeObject & {
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
};

/** The AgentTypes in `ns` whose Ready condition is not True, each with what its condition says. */
async function notReady(ns: string): Promise<string[]> {
  const behind: string[] = [];
  for await (const item of listed<WithConditions>(resources.agentType, ns)) {
    const ready = item.status?.conditions?.find((c) => c.type === "Ready");
    if (ready?.status !== "True")
      behind.push(
        `${item.metadata.name}: ${ready?.reason ?? "no Ready condition"} (${ready?.message ?? ""})`,
      );
  }
  return behind;
}

/** Namespaces this run made and has not deleted yet: removed on the way out, whatever happens. */
const ours = new Set<string>();

async function namespace(name: string): Promise<string> {
  await client.create(resources.namespace, undefined, {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name },
  });
  ours.add(name);
  return name;
}

async function removeNamespace(name: string): Promise<void> {
  // The next side's restart wipes etcd: no need to wait for the namespace controller.
  if (!freshControlPlane) await deleteNamespace(name);
  ours.delete(name);
}

const run = promisify(execFile);
const clusterSh = new URL("../cluster/cluster.sh", import.meta.url).pathname;

/** Stops the control plane, wipes etcd and starts it again: every side starts on an empty one. */
async function restartControlPlane(): Promise<void> {
  const started = performance.now();
  await run(clusterSh, ["down", "control-plane"], { timeout: 120_000 });
  await run(clusterSh, ["up", "control-plane"], { timeout: 300_000 });
  await installCrds(kubeconfig);
  console.log(`  control plane started afresh in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

/** The control-plane tier's processes, by their pidfiles (tests/cluster/cluster.sh). */
const CONTROL_PLANE = ["etcd", "kube-apiserver", "kube-controller-manager"];

/**
 * With --pin: the control plane on core 0, this process (and so the operator it starts) on the
 * others. Each thread of a running process is moved (taskset -a); children inherit the mask.
 */
async function pinProcesses(): Promise<void> {
  const others = cores === 2 ? "1" : `1-${cores - 1}`;
  await pinControlPlane("0");
  await run("taskset", ["-apc", others, String(process.pid)], { timeout: 10_000 });
  console.log(`  pinned: the control plane on CPU 0, the operator and the ceiling's client on CPU ${others}`);
}

/** Moves every thread of the control plane's processes to `cpus` (a taskset CPU list). */
async function pinControlPlane(cpus: string): Promise<void> {
  for (const name of CONTROL_PLANE) {
    const pid = await controlPlanePid(name);
    await run("taskset", ["-apc", cpus, String(pid)], { timeout: 10_000 });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(500);
  }
}

/** Waits until nothing writes to the operator's kinds for 5 s (the controller-manager settles too). */
async function quiet(): Promise<RequestCounts> {
  let last = await apiserver.writes();
  let quietSince = Date.now();
  const deadline = Date.now() + 30 * 60_000;
  for (;;) {
    await sleep(1000);
    const now = await apiserver.writes();
    if (total(writesBetween(last, now)) > 0) quietSince = Date.now();
    last = now;
    if (Date.now() - quietSince >= 5000) return now;
    if (Date.now() > deadline) throw new Error("the API server did not settle within 30 minutes");
  }
}

/** Waits until `operator` has finished `count` more reconciles than `from` and its queue is empty. */
async function reconciled(operator: OperatorProcess, from: number, count: number): Promise<void> {
  await until(
    `${count} reconciles`,
    async () =>
      ((await operator.metric(RECONCILED)) ?? 0) >= from + count &&
      (await operator.metric(QUEUE_DEPTH)) === 0,
    30 * 60_000,
  );
}

const describeRequests = (requests: Record<string, number>) =>
  Object.entries(requests)
    .map(([key, count]) => `${count} ${key}`)
    .join(", ") || "none";

type WithStatus = KubeObject & { status?: { observedGeneration?: number } };

/**
 * Waits until every AgentType in `ns` has a status for its first generation. One list, then
 * a watch: polling lists of 1,000 objects would load the API server more than the operator.
 */
/** Waits until every AgentType has a status; returns when each got it (ms from `started`), in order. */
async function allReconciled(ns: string, started: number): Promise<number[]> {
  const done = new Map<string, number>();
  const count = (object: WithStatus) => {
    if (object.status?.observedGeneration === 1 && !done.has(object.metadata.name))
      done.set(object.metadata.name, performance.now() - started);
  };
  const list = await client.list<WithStatus>(resources.agentType, ns);
  for (const item of list.items) count(item);
  let resourceVersion = list.metadata.resourceVersion;
  while (done.size < n) {
    const query = { resourceVersion, timeoutSeconds: 60 };
    for await (const event of client.watch<WithStatus>(
      resources.agentType,
      ns,
      query,
      AbortSignal.timeout(120_000),
    )) {
      if (event.type === "ERROR") throw new Error(`watch failed: ${event.object.message}`);
      resourceVersion = event.object.metadata.resourceVersion ?? resourceVersion;
      if (event.type !== "BOOKMARK" && event.type !== "DELETED") count(event.object);
      if (done.size === n) break; // leaving the loop closes the watch
    }
  }
  return [...done.values()].sort((a, b) => a - b);
}

/** When the statuses came: "half at 10.2 s, 90 % at 15.1 s, the last at 16.0 s". */
function describeProgress(times: readonly number[], createdMs: number): string {
  const at = (share: number) =>
    (times[Math.min(times.length - 1, Math.ceil(share * times.length) - 1)] ?? 0) / 1000;
  return `every AgentType created by ${(createdMs / 1000).toFixed(1)} s; statuses: half at ${at(0.5).toFixed(1)} s, 90 % at ${at(0.9).toFixed(1)} s, 99 % at ${at(0.99).toFixed(1)} s, the last at ${at(1).toFixed(1)} s`;
}

/** Samples the peak resident set size of the processes handed to it, every 100 ms. */
function rssSampler() {
  let peakKiB = 0;
  const pids = new Set<number>();
  const timer = setInterval(() => {
    for (const pid of pids) {
      try {
        const status = readFileSync(`/proc/${pid}/status`, "utf8");
        peakKiB = Math.max(peakKiB, Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0));
      } catch {
        pids.delete(pid); // exited
      }
    }
  }, 100);
  return {
    watch: (operator: OperatorProcess) => operator.child.pid !== undefined && pids.add(operator.child.pid),
    stop: () => {
      clearInterval(timer);
      return peakKiB / 1024;
    },
  };
}

/** A side's figures from its clock: its seconds, writes, and its client's CPU (ms per AgentType). */
interface SideFigures {
  seconds: number;
  writesPerAgentType: number;
  cpuMsPerAgentType: number;
}

interface OperatorFigures extends SideFigures {
  rssMiB: number;
  /** What the operator's garbage collector did while the clock ran (its --trace-gc lines). */
  gc: GcPauses;
  /** Undefined with --clock-only. */
  restartWrites: number | undefined;
  resyncWrites: number | undefined;
}

/**
 * Seconds until the operator has reconciled all N AgentTypes created at full speed; then, at
 * steady state, the writes of a restart (SIGTERM, start again) and of one resync.
 */
async function operatorRun(): Promise<OperatorFigures> {
  const ns = await namespace(`bench-op-${suffix}`);
  const start = (identity: string, resync: number) =>
    startOperator({
      kubeconfig,
      namespace: ns,
      identity,
      leaderElection: false,
      extraEnv: { WORKERS: String(concurrency), LOG_LEVEL: "warn", RESYNC_SECONDS: String(resync) },
      // BENCH_OPERATOR_NODE_FLAGS adds flags for a look inside (for example --cpu-prof).
      nodeFlags: [
        "--trace-gc",
        ...(process.env.BENCH_OPERATOR_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? []),
      ],
    });
  const rss = rssSampler();
  // No resync while the clock runs: it would measure resyncs, not reconciling.
  let operator = await start("bench", 86_400);
  try {
    rss.watch(operator);
    // Wait until its caches are synced, so the clock measures reconciling, not start-up.
    for (;;) {
      if ((await fetch(`http://127.0.0.1:${operator.port}/readyz`)).ok) break;
      await sleep(100);
    }
    const pid = operator.child.pid ?? 0;
    const atStart = await apiserver.requests();
    const apiserverCpuAtStart = await apiserver.cpuSeconds();
    const cpuAtStart = cpuSeconds(pid);
    const gcAtStart = gcPauses(operator.logs());
    const reconcilesAtStart = (await operator.metric(RECONCILED)) ?? 0;
    const started = performance.now();
    // Watched from the start, to tell when each status came; a failure is thrown when awaited.
    const statuses = allReconciled(ns, started);
    statuses.catch(() => undefined);
    await inParallel(n, concurrency, async (i) => {
      await client.create(resources.agentType, ns, manifest(`agent-${i}`, ns));
    });
    const createdMs = performance.now() - started;
    const progress = describeProgress(await statuses, createdMs);
    const seconds = (performance.now() - started) / 1000;
    const cpuMsPerAgentType = ((cpuSeconds(pid) - cpuAtStart) * 1000) / n;
    const apiserverCpuMs = ((await apiserver.cpuSeconds()) - apiserverCpuAtStart) * 1000;
    const gc = gcBetween(gcAtStart, gcPauses(operator.logs()));
    const reconciles = ((await operator.metric(RECONCILED)) ?? 0) - reconcilesAtStart;
    const atEnd = await apiserver.requests();
    const writes = writesBetween(atStart, atEnd);
    console.log(
      `  operator: ${seconds.toFixed(2)} s; its CPU ${cpuMsPerAgentType.toFixed(1)} ms per AgentType, the API server's ${(apiserverCpuMs / n).toFixed(1)}; ${(reconciles / n).toFixed(2)} reconciles per AgentType; writes: ${describeRequests(writes)}`,
    );
    console.log(`  ${progress}`);
    console.log(`  its garbage collection: ${describeGc(gc)}`);
    console.log(`  reads: ${describeRequests(readsBetween(atStart, atEnd))}`);
    const deployments = await countObjects(resources.deployment, ns);
    if (deployments !== n) throw new Error(`expected ${n} Deployments, found ${deployments}`);
    if (clockOnly) {
      return {
        seconds,
        writesPerAgentType: perAgentType(writes),
        cpuMsPerAgentType,
        gc,
        rssMiB: rss.stop(),
        restartWrites: undefined,
        resyncWrites: undefined,
      };
    }

    // A restart at steady state: the new process knows nothing of what the old one applied.
    // At steady state every AgentType (replicas 0) is Ready. One that is not is still being
    // worked on (a retry after a failed reconcile waits out its backoff) or was left behind;
    // either way a restart now would count what the first process had not written yet.
    let steady = await quiet();
    const settling = performance.now();
    let behind = await notReady(ns);
    if (behind.length > 0) {
      const failed = await operator.metric(FAILED);
      console.log(
        `  after the clock: ${behind.length} of ${n} AgentTypes not Ready yet (failed reconciles so far: ${failed ?? 0}), e.g. ${behind.slice(0, 3).join("; ")}`,
      );
      const warnings = operator
        .logs()
        .split("\n")
        .filter((line) => /"level":(40|50)/.test(line));
      console.log(
        `  the operator's warnings and errors so far (${warnings.length}, the first 10):\n${warnings.slice(0, 10).join("\n")}`,
      );
    }
    while (behind.length > 0 && performance.now() - settling < 15 * 60_000) {
      await sleep(10_000);
      behind = await notReady(ns);
    }
    if (behind.length > 0)
      console.log(
        `  ${behind.length} AgentTypes still not Ready after 15 minutes, e.g. ${behind.slice(0, 3).join("; ")}`,
      );
    else
      console.log(
        `  every AgentType Ready ${((performance.now() - settling) / 1000).toFixed(0)} s after the clock stopped`,
      );
    steady = await quiet();
    await operator.stop("SIGTERM");
    operator = await start("bench-restarted", resyncSeconds);
    rss.watch(operator);
    await reconciled(operator, 0, n);
    await sleep(2000);
    const afterRestart = await apiserver.writes();
    const restart = writesBetween(steady, afterRestart);
    console.log(`  restart: ${describeRequests(restart)}`);

    // One resync: every AgentType reconciled again, nothing changed.
    const before = (await operator.metric(RECONCILED)) ?? 0;
    await reconciled(operator, before, n);
    await sleep(2000);
    const resync = writesBetween(afterRestart, await apiserver.writes());
    console.log(`  resync (${resyncSeconds} s): ${describeRequests(resync)}`);
    return {
      seconds,
      writesPerAgentType: perAgentType(writes),
      cpuMsPerAgentType,
      gc,
      rssMiB: rss.stop(),
      restartWrites: total(restart),
      resyncWrites: total(resync),
    };
  } finally {
    rss.stop();
    await operator.stop("SIGTERM");
    await removeNamespace(ns);
  }
}

/** The resource of a built object, found by its apiVersion and kind. */
function resourceOf(object: KubeObject): ResourceType {
  const type = Object.values(resources).find(
    (r) =>
      r.kind === object.kind &&
      (r.group === "" ? r.version : `${r.group}/${r.version}`) === object.apiVersion,
  );
  if (type === undefined) throw new Error(`no resource for ${object.apiVersion} ${object.kind}`);
  return type;
}

/** Write requests per AgentType between two readings of the API server's counters. */
const perAgentType = (writes: Record<string, number>) =>
  Object.values(writes).reduce((sum, count) => sum + count, 0) / n;

/**
 * Seconds a plain client takes for the API work the operator does for each AgentType: create
 * it; apply every object the builders make for it at once (the ServiceAccount, ConfigMap,
 * Service, and what else they build), then the Deployment; then at once the status the AgentType ends with and the
 * operator's two Events (Created, and Ready becoming True). The same requests the operator
 * sends, in the same order, but each once and with nothing to watch or decide: the status
 * the workload controller's report would lead to is known beforehand, so it is written once,
 * where the operator writes "rolling out" first and "ready" when the Deployment reports.
 */
async function ceilingRun(): Promise<SideFigures> {
  const ns = await namespace(`bench-ceiling-${suffix}`);
  const settings = {
    sidecarImage: "agenttype/sidecar:dev",
    wrapperImage: "agenttype/wrapper:dev",
    imagePullPolicy: "IfNotPresent" as const,
    sidecarResources: {},
    memoryMaxBytes: 2 ** 26,
  };
  const events = new EventRecorder(client, "bench", pino({ level: "silent" }));
  const before = await apiserver.requests();
  const apiserverCpuAtStart = await apiserver.cpuSeconds();
  const cpuAtStart = process.cpuUsage();
  const started = performance.now();
  await inParallel(n, concurrency, async (i) => {
    const created = await client.create(resources.agentType, ns, manifest(`agent-${i}`, ns));
    const agent: AgentType = agentType.parse(created);
    const objects = buildObjects(agent, [], settings);
    const { workload: desiredWorkload, sidecarConfig: _, ...others } = objects;
    await Promise.all(
      Object.values(others).flatMap((object) =>
        object === undefined ? [] : [client.apply(resourceOf(object), object, "bench")],
      ),
    );
    const workload = await client.apply(resourceOf(desiredWorkload), desiredWorkload, "bench");
    const generation = workload.metadata.generation ?? 1;
    const status = computeStatus(
      undefined,
      {
        generation: 1,
        desiredReplicas: 0,
        selector: "",
        resolution: { resolved: [], missing: [] },
        workload: {
          generation,
          observedGeneration: generation,
          replicas: 0,
          readyReplicas: 0,
          updatedReplicas: 0,
        },
      },
      new Date(),
    );
    const ready = status.conditions?.find((c) => c.type === "Ready");
    if (ready?.status !== "True")
      throw new Error(`the ceiling's status is not Ready: ${JSON.stringify(ready)}`);
    const { apiVersion, kind, metadata } = created;
    const statusPatch = {
      apiVersion,
      kind,
      metadata: { name: metadata.name, namespace: metadata.namespace },
      status,
    };
    await Promise.all([
      // As the operator writes it: the answer drained unparsed.
      client.applyWithoutAnswer(resources.agentType, statusPatch, "bench", "status"),
      events.record(created, "Normal", "Created", `created Deployment ${workload.metadata.name}`),
      events.record(created, "Normal", ready.reason, ready.message),
    ]);
  });
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  const cpuMsPerAgentType = (cpu.user + cpu.system) / 1000 / n;
  const apiserverCpuMs = ((await apiserver.cpuSeconds()) - apiserverCpuAtStart) * 1000;
  const after = await apiserver.requests();
  const writes = writesBetween(before, after);
  console.log(
    `  ceiling: ${seconds.toFixed(2)} s; its client's CPU ${cpuMsPerAgentType.toFixed(1)} ms per AgentType, the API server's ${(apiserverCpuMs / n).toFixed(1)}; writes: ${describeRequests(writes)}`,
  );
  console.log(`  reads: ${describeRequests(readsBetween(before, after))}`);
  await removeNamespace(ns);
  return { seconds, writesPerAgentType: perAgentType(writes), cpuMsPerAgentType };
}

/** Installs the CRDs unless they are there; says whether it did, so that they go again after. */
async function setUp(): Promise<boolean> {
  const missing = [];
  for (const crd of crdManifests()) {
    try {
      await client.get(CRD, undefined, crd.metadata.name);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      missing.push(crd.metadata.name);
    }
  }
  await installCrds(kubeconfig);
  return missing.length > 0;
}

async function cleanUp(installedCrds: boolean): Promise<void> {
  // A control plane that outlives the bench is the user's again, on every core.
  if (pin && !freshControlPlane) await pinControlPlane(`0-${cores - 1}`);
  for (const name of ours) await removeNamespace(name);
  if (installedCrds) {
    for (const crd of crdManifests()) await client.delete(CRD, undefined, crd.metadata.name);
  }
  await apiserver.close();
}

const installedCrds = await setUp();
try {
  // The order alternates (`--first` first in odd rounds, the other side in even ones): the
  // machine's noise hits both sides, and so does running on a fresh etcd or after the other
  // side's objects were created and deleted.
  const ceilings: SideFigures[] = [];
  const operators: OperatorFigures[] = [];
  const side = async <T>(run: () => Promise<T>): Promise<T> => {
    if (freshControlPlane) await restartControlPlane();
    if (pin) await pinProcesses();
    return run();
  };
  for (let round = 0; round < rounds; round++) {
    if ((round % 2 === 0) !== operatorFirst) {
      ceilings.push(await side(ceilingRun));
      operators.push(await side(operatorRun));
    } else {
      operators.push(await side(operatorRun));
      ceilings.push(await side(ceilingRun));
    }
    const last = operators.at(-1);
    console.log(
      `round ${round + 1}: ceiling ${ceilings.at(-1)?.seconds.toFixed(2)} s, operator ${last?.seconds.toFixed(2)} s, operator CPU ${last?.cpuMsPerAgentType.toFixed(1)} ms per AgentType (ceiling's client ${ceilings.at(-1)?.cpuMsPerAgentType.toFixed(1)}), peak RSS ${last?.rssMiB.toFixed(0)} MiB, restart writes ${last?.restartWrites ?? "unmeasured"}, resync writes ${last?.resyncWrites ?? "unmeasured"}`,
    );
  }
  const ceiling = Math.min(...ceilings.map((c) => c.seconds));
  const operatorSeconds = Math.min(...operators.map((o) => o.seconds));
  const rss = Math.max(...operators.map((o) => o.rssMiB));
  const most = (values: (number | undefined)[]) =>
    clockOnly ? "unmeasured" : String(Math.max(...values.map((v) => v ?? 0)));
  const restartWrites = most(operators.map((o) => o.restartWrites));
  const resyncWrites = most(operators.map((o) => o.resyncWrites));
  // Load average over the last minute, divided by the cores: how shared the machine was.
  const load = (loadavg()[0] ?? 0) / cores;
  const leastCpu = (figures: SideFigures[]) =>
    Math.min(...figures.map((f) => f.cpuMsPerAgentType)).toFixed(1);
  const perAgentType = (figures: { writesPerAgentType: number }[]) =>
    Math.max(...figures.map((f) => f.writesPerAgentType)).toFixed(1);
  // The collector's pauses per AgentType: the round that paused least, as for the CPU.
  const gcMsPerAgentType = Math.min(
    ...operators.map((o) => (o.gc.scavengeMs + o.gc.markCompactMs) / n),
  ).toFixed(2);
  console.log(
    `bench-operator n=${n} ratio=${(operatorSeconds / ceiling).toFixed(2)} operator_s=${operatorSeconds.toFixed(1)} ceiling_s=${ceiling.toFixed(1)} rss_mib=${Math.round(rss)} restart_writes=${restartWrites} resync_writes=${resyncWrites} operator_writes_per_at=${perAgentType(operators)} ceiling_writes_per_at=${perAgentType(ceilings)} operator_cpu_ms_per_at=${leastCpu(operators)} operator_gc_pause_ms_per_at=${gcMsPerAgentType} ceiling_client_cpu_ms_per_at=${leastCpu(ceilings)} load_per_core=${load.toFixed(1)} pinned=${pin ? 1 : 0}`,
  );
} finally {
  await cleanUp(installedCrds);
}
