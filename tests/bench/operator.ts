// `make bench-operator`: on the control-plane tier, how long the operator takes to bring N
// AgentTypes to their owned objects and status, against the API server's own ceiling: a plain
// client doing the same writes with the same concurrency and no operator, in the same run.
//   node tests/bench/operator.ts [--n 1000] [--concurrency 8] --kubeconfig PATH
// The last line is machine-readable.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type AgentType, agentType } from "../../api/agenttype.ts";
import { buildObjects } from "../../operator/build/objects.ts";
import { computeStatus } from "../../operator/controllers/agenttype/status.ts";
import { loadAccess } from "../../operator/kube/access.ts";
import { isNotFound, KubeClient, type KubeObject } from "../../operator/kube/client.ts";
import { resources } from "../../operator/kube/resources.ts";
import { loadSample } from "../fixtures/manifests.ts";
import { startOperator } from "../integration/operator-process.ts";

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "1000" },
    concurrency: { type: "string", default: "8" },
    kubeconfig: { type: "string", default: process.env.KUBECONFIG },
  },
});
const n = Number(values.n);
const concurrency = Number(values.concurrency);
if (!values.kubeconfig) throw new Error("--kubeconfig or KUBECONFIG is required");
const kubeconfig = values.kubeconfig;
const client = new KubeClient(loadAccess({ KUBECONFIG: kubeconfig }));
const suffix = Date.now().toString(36);

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
  const deadline = Date.now() + 300_000;
  while (Date.now() < deadline) {
    try {
      await client.get(resources.namespace, undefined, name);
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`namespace ${name} was not deleted within 5 minutes`);
}

async function namespace(name: string): Promise<string> {
  await client.create(resources.namespace, undefined, {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name },
  });
  return name;
}

type WithStatus = KubeObject & { status?: { observedGeneration?: number } };

/**
 * Waits until every AgentType in `ns` has a status for its first generation. One list, then
 * a watch: polling lists of 1,000 objects would load the API server more than the operator.
 */
async function allReconciled(ns: string): Promise<void> {
  const done = new Set<string>();
  const count = (object: WithStatus) => {
    if (object.status?.observedGeneration === 1) done.add(object.metadata.name);
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
}

/** Seconds until the operator has reconciled all N AgentTypes created at full speed. */
async function operatorRun(): Promise<{ seconds: number; rssMiB: number }> {
  const ns = await namespace(`bench-op-${suffix}`);
  const operator = await startOperator({
    kubeconfig,
    namespace: ns,
    identity: "bench",
    leaderElection: false,
    extraEnv: { WORKERS: String(concurrency), LOG_LEVEL: "warn" },
  });
  // Wait until its caches are synced, so the clock measures reconciling, not start-up.
  for (;;) {
    if ((await fetch(`http://127.0.0.1:${operator.port}/readyz`)).ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  let peakKiB = 0;
  const sampler = setInterval(() => {
    const status = readFileSync(`/proc/${operator.child.pid}/status`, "utf8");
    peakKiB = Math.max(peakKiB, Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0));
  }, 100);
  const started = performance.now();
  await inParallel(n, concurrency, async (i) => {
    await client.create(resources.agentType, ns, manifest(`agent-${i}`, ns));
  });
  await allReconciled(ns);
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  const deployments = await client.list(resources.deployment, ns);
  if (deployments.items.length !== n)
    throw new Error(`expected ${n} Deployments, found ${deployments.items.length}`);
  await operator.stop("SIGTERM");
  await deleteNamespace(ns);
  return { seconds, rssMiB: peakKiB / 1024 };
}

/** Seconds a plain client takes for the same writes: the AgentType, its four objects, its status. */
async function ceilingRun(): Promise<number> {
  const ns = await namespace(`bench-ceiling-${suffix}`);
  const settings = {
    sidecarImage: "agenttype/sidecar:dev",
    wrapperImage: "agenttype/wrapper:dev",
    imagePullPolicy: "IfNotPresent" as const,
    sidecarResources: {},
    memoryMaxBytes: 2 ** 26,
  };
  const started = performance.now();
  await inParallel(n, concurrency, async (i) => {
    const created = await client.create(resources.agentType, ns, manifest(`agent-${i}`, ns));
    const agent: AgentType = agentType.parse(created);
    const objects = buildObjects(agent, [], settings);
    for (const [type, object] of [
      [resources.serviceAccount, objects.serviceAccount],
      [resources.configMap, objects.configMap],
      [resources.service, objects.metricsService],
      [resources.deployment, objects.workload],
    ] as const) {
      await client.apply(type, object as KubeObject, "bench");
    }
    const status = computeStatus(
      undefined,
      { generation: 1, desiredReplicas: 0, selector: "", resolution: { resolved: [], missing: [] } },
      new Date(),
    );
    const { apiVersion, kind, metadata } = created;
    const statusPatch = {
      apiVersion,
      kind,
      metadata: { name: metadata.name, namespace: metadata.namespace },
      status,
    };
    await client.apply(resources.agentType, statusPatch as KubeObject, "bench", "status");
  });
  const seconds = (performance.now() - started) / 1000;
  await deleteNamespace(ns);
  return seconds;
}

// Ceiling first, operator second, then both again: the machine's noise hits both sides.
const ceilings: number[] = [];
const operators: { seconds: number; rssMiB: number }[] = [];
for (let round = 0; round < 2; round++) {
  ceilings.push(await ceilingRun());
  operators.push(await operatorRun());
  console.log(
    `round ${round + 1}: ceiling ${ceilings.at(-1)?.toFixed(2)} s, operator ${operators.at(-1)?.seconds.toFixed(2)} s`,
  );
}
const ceiling = Math.min(...ceilings);
const operatorSeconds = Math.min(...operators.map((o) => o.seconds));
const rss = Math.max(...operators.map((o) => o.rssMiB));
console.log(
  `bench-operator n=${n} ratio=${(operatorSeconds / ceiling).toFixed(2)} operator_s=${operatorSeconds.toFixed(1)} ceiling_s=${ceiling.toFixed(1)} rss_mib=${Math.round(rss)}`,
);
