// Unchanged AgentTypes cost the API server nothing: a resync of 200 of them, and an operator
// restart, write nothing, counted with the API server's own metrics (apiserver_request_total).
// Drift is still corrected after the restart, with no memory of earlier applies. And the
// quantities our builders write are the ones the API server stores, or the digests of what we
// apply and what we read back could never match.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { AppsV1Api, CustomObjectsApi, type V1Deployment } from "@kubernetes/client-node";
import { afterEach, beforeAll, describe, expect, inject } from "vitest";
import type { AgentTypeStatus } from "../../api/agenttype.ts";
import { canonicalQuantity, MILLI, NANO } from "../../operator/build/quantity.ts";
import { ApiServerMetrics, type RequestCounts, total, writesBetween } from "../fixtures/apiserver-writes.ts";
import { loadSample } from "../fixtures/manifests.ts";
import { eventually, kubeconfigPath, test } from "./cluster.ts";
import { installCrds } from "./crds.ts";
import { type OperatorProcess, startOperator } from "./operator-process.ts";

const run = promisify(execFile);
const cluster = inject("cluster");
const AT = { group: "agenttype.dev", version: "v1alpha1", plural: "agenttypes" };
const COUNT = 200;
const RESYNC_SECONDS = 10;
const RECONCILED = 'controller_runtime_reconcile_total{controller="agenttype",result="success"}';
const QUEUE_DEPTH = 'workqueue_depth{name="agenttype"}';
const running: OperatorProcess[] = [];
let metrics: ApiServerMetrics;

beforeAll(async () => {
  await installCrds(kubeconfigPath());
  metrics = new ApiServerMetrics(kubeconfigPath());
  return () => metrics.close();
});

afterEach(async () => {
  for (const operator of running.splice(0)) await operator.stop("SIGKILL");
});

async function operatorFor(namespace: string, identity: string): Promise<OperatorProcess> {
  const operator = await startOperator({
    kubeconfig: kubeconfigPath(),
    namespace,
    identity,
    extraEnv: { RESYNC_SECONDS: String(RESYNC_SECONDS), LOG_LEVEL: "info", WORKERS: "8" },
  });
  running.push(operator);
  return operator;
}

/**
 * Replicas 0, so that no pod status moves under the measurement. Every tenth one has
 * persistent memory (a StatefulSet with a volume claim template), and every one writes its
 * quantities and environment in a form the API server rewrites unless the builders do first.
 */
function agent(index: number) {
  const persistent = index % 10 === 0;
  const manifest = loadSample(
    persistent ? "agenttype_node-researcher.yaml" : "agenttype_python-summarizer.yaml",
  );
  manifest.metadata = { name: `idle-${index}` };
  manifest.spec.replicas = 0;
  delete manifest.spec.tools;
  manifest.spec.resources = {
    requests: { cpu: "0.5", memory: "1024Mi" },
    limits: { cpu: 2, memory: "1.5Gi" },
  };
  manifest.spec.env = [
    ...(manifest.spec.env ?? []),
    { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
  ];
  manifest.spec.memory = persistent
    ? { type: "persistent", size: "2048Mi" }
    : { type: "ephemeral", size: "0.5Gi" };
  return manifest;
}

/** Waits until the operator's writes (and the controller-manager's, on our objects) stop. */
async function quiet(what: string): Promise<RequestCounts> {
  let last = await metrics.writes();
  let quietSince = Date.now();
  return eventually(
    what,
    async () => {
      await new Promise((r) => setTimeout(r, 1000));
      const now = await metrics.writes();
      if (total(writesBetween(last, now)) > 0) quietSince = Date.now();
      last = now;
      return Date.now() - quietSince >= 3000 ? now : undefined;
    },
    120_000,
    0,
  );
}

/** Waits until the operator has finished `count` more reconciles than `from`, with an empty queue. */
async function reconciled(operator: OperatorProcess, from: number, count: number): Promise<void> {
  await eventually(
    `${count} reconciles`,
    async () =>
      ((await operator.metric(RECONCILED)) ?? 0) >= from + count &&
      (await operator.metric(QUEUE_DEPTH)) === 0,
    120_000,
  );
}

function kubectl(...args: string[]) {
  return run(join(cluster.binDir, "kubectl"), ["--kubeconfig", cluster.kubeconfig, ...args], {
    timeout: 60_000,
  });
}

describe("no idle writes", () => {
  test("a resync of 200 unchanged AgentTypes and an operator restart write nothing; drift is still reverted", async ({
    kc,
    namespace,
  }) => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    const apps = kc.makeApiClient(AppsV1Api);
    const first = await operatorFor(namespace, "idle-first");
    for (let i = 0; i < COUNT; i += 20) {
      await Promise.all(
        Array.from({ length: 20 }, (_, j) =>
          custom.createNamespacedCustomObject({ ...AT, namespace, body: agent(i + j) }),
        ),
      );
    }
    // The ones not Ready at the last look, with their Ready condition, for a failure's message.
    let notReady: string[] = [];
    await eventually(
      "every AgentType Ready",
      async () => {
        const list = (await custom.listNamespacedCustomObject({ ...AT, namespace })) as {
          items: { metadata: { name: string }; status?: AgentTypeStatus }[];
        };
        notReady = list.items.flatMap((a) => {
          const ready = a.status?.conditions?.find((c) => c.type === "Ready");
          return ready?.status === "True"
            ? []
            : [`${a.metadata.name}: ${ready ? `${ready.reason}: ${ready.message}` : "no Ready condition"}`];
        });
        return list.items.length === COUNT && notReady.length === 0;
      },
      // Five owned objects each (a NetworkPolicy too), a sixth for the persistent ones: on a
      // loaded 2-core machine the first rollout of 200 takes more than two minutes.
      240_000,
    ).catch((error: Error) => {
      const errors = first
        .logs()
        .split("\n")
        .filter((line) => /"level":(50|40)/.test(line))
        .slice(-10);
      throw new Error(
        `${error.message}; ${notReady.length} not Ready, e.g.\n${notReady.slice(0, 5).join("\n")}\n` +
          `the operator's last warnings and errors:\n${errors.join("\n")}`,
      );
    });

    // A resync: every AgentType reconciled again (each is woken by itself and by each owned object).
    const steady = await quiet("the writes of the rollout to settle");
    const before = (await first.metric(RECONCILED)) ?? 0;
    const started = Date.now();
    await reconciled(first, before, COUNT);
    await new Promise((r) =>
      setTimeout(r, Math.max(0, RESYNC_SECONDS * 1000 - (Date.now() - started)) + 2000),
    );
    const afterResync = await metrics.writes();
    expect(((await first.metric(RECONCILED)) ?? 0) - before).toBeGreaterThanOrEqual(COUNT);
    expect(writesBetween(steady, afterResync)).toEqual({});

    // A restart: the new process knows nothing of what the old one applied.
    expect(await first.stop("SIGTERM")).toBe(0);
    const beforeRestart = await metrics.writes();
    const second = await operatorFor(namespace, "idle-second");
    await reconciled(second, 0, COUNT);
    await new Promise((r) => setTimeout(r, 2000));
    expect(writesBetween(beforeRestart, await metrics.writes())).toEqual({});
    // Every object matched at its first apply, so neither process met a value the API server
    // stores differently than the builders made it.
    for (const operator of [first, second]) {
      expect(operator.logs()).not.toContain("stores this object differently");
    }

    // A field someone else added is theirs: nothing to re-apply.
    const mark = await metrics.writes();
    await kubectl("annotate", "deployment", "idle-1", "-n", namespace, "example.com/note=hello");
    await new Promise((r) => setTimeout(r, 3000));
    // (The controller-manager may write the Deployment's status meanwhile; that is not us.)
    const afterAnnotate = writesBetween(mark, await metrics.writes(), ["deployments"]);
    expect(afterAnnotate["PATCH deployments"]).toBe(1);
    expect(afterAnnotate).not.toHaveProperty(["APPLY deployments"]);

    // A field of ours someone else changed moves to them: the restarted operator takes it back.
    await kubectl(
      "patch",
      "deployment",
      "idle-1",
      "-n",
      namespace,
      "--type=json",
      "-p",
      '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"evil:latest"}]',
    );
    await eventually("the image restored", async () => {
      const d: V1Deployment = await apps.readNamespacedDeployment({ namespace, name: "idle-1" });
      return (
        (d.metadata?.generation ?? 0) > 2 &&
        d.spec?.template.spec?.containers[0]?.image === "ghcr.io/acme/summarizer:0.9.0"
      );
    });
  }, 600_000);

  test("the builders' quantities are the ones the API server stores", async ({ kc, namespace }) => {
    const inputs: (string | number)[] = [
      "0",
      "0Mi",
      "100m",
      "0.1",
      "0.5",
      "1",
      "1000",
      "1000m",
      "1500m",
      "1.5",
      ".5",
      "5.",
      "+2",
      "+2.5",
      "010",
      "64Mi",
      "1024Mi",
      "1.5Gi",
      "0.5Ki",
      "1Ki",
      "+1Ki",
      "+8Ki",
      "1.1Ki",
      "2048Ki",
      "1536",
      "1e3",
      "1.5e3",
      "12e3",
      "1E6",
      "1.0E6",
      "1e-3",
      "1G",
      "1000M",
      "0.1m",
      "1n",
      "0.1n",
      "100u",
      "1.0001",
      1,
      0.5,
      2048,
    ];
    // sizeLimit is a plain quantity (nano); a container's requests are a ResourceList (milli).
    const body: V1Deployment = {
      metadata: { name: "quantities" },
      spec: {
        replicas: 0,
        selector: { matchLabels: { app: "quantities" } },
        template: {
          metadata: { labels: { app: "quantities" } },
          spec: {
            containers: inputs.map((input, i) => ({
              name: `c${i}`,
              image: "busybox",
              resources: { requests: { cpu: input as string } },
            })),
            volumes: inputs.map((input, i) => ({ name: `v${i}`, emptyDir: { sizeLimit: input as string } })),
          },
        },
      },
    };
    const stored = await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({ namespace, body });
    const spec = stored.spec?.template.spec;
    const actual = inputs.map((input, i) => [
      input,
      spec?.volumes?.[i]?.emptyDir?.sizeLimit,
      spec?.containers[i]?.resources?.requests?.cpu,
    ]);
    const expected = inputs.map((input) => [
      input,
      canonicalQuantity(input, NANO),
      canonicalQuantity(input, MILLI),
    ]);
    expect(actual).toEqual(expected);
  });
});
