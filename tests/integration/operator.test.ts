// The operator against a real kube-apiserver, etcd and kube-controller-manager: what a user
// sees after kubectl apply, scale and delete, and how it behaves when it, or the API server,
// is killed. Each test has its own namespace and its own operator process watching it.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1Deployment,
} from "@kubernetes/client-node";
import { afterEach, beforeAll, describe, expect, inject } from "vitest";
import type { AgentTypeStatus } from "../../api/agenttype.ts";
import { sidecarConfig } from "../../api/sidecarconfig.ts";
import { loadSample } from "../fixtures/manifests.ts";
import { eventually, kubeconfigPath, simpleAgent, test } from "./cluster.ts";
import { installCrds } from "./crds.ts";
import { type OperatorProcess, startOperator } from "./operator-process.ts";

const run = promisify(execFile);
const cluster = inject("cluster");
const AT = { group: "agenttype.dev", version: "v1alpha1" };
const running: OperatorProcess[] = [];

beforeAll(async () => {
  await installCrds(kubeconfigPath());
});

afterEach(async () => {
  for (const operator of running.splice(0)) await operator.stop("SIGKILL");
});

async function operatorFor(
  namespace: string,
  identity = "op-a",
  leaderElection = true,
): Promise<OperatorProcess> {
  const operator = await startOperator({ kubeconfig: kubeconfigPath(), namespace, identity, leaderElection });
  running.push(operator);
  return operator;
}

function kubectl(...args: string[]) {
  return run(join(cluster.binDir, "kubectl"), ["--kubeconfig", cluster.kubeconfig, ...args], {
    timeout: 60_000,
  });
}

function apis(kc: KubeConfig) {
  return {
    custom: kc.makeApiClient(CustomObjectsApi),
    apps: kc.makeApiClient(AppsV1Api),
    core: kc.makeApiClient(CoreV1Api),
    leases: kc.makeApiClient(CoordinationV1Api),
  };
}

type Api = ReturnType<typeof apis>;

const createAgent = (api: Api, namespace: string, body: object) =>
  api.custom.createNamespacedCustomObject({ ...AT, plural: "agenttypes", namespace, body });

async function agentStatus(api: Api, namespace: string, name: string): Promise<AgentTypeStatus | undefined> {
  const object = (await api.custom.getNamespacedCustomObject({
    ...AT,
    plural: "agenttypes",
    namespace,
    name,
  })) as {
    status?: AgentTypeStatus;
  };
  return object.status;
}

const condition = (status: AgentTypeStatus | undefined, type: string) =>
  status?.conditions?.find((c) => c.type === type);

const deployment = (api: Api, namespace: string, name: string) =>
  api.apps.readNamespacedDeployment({ namespace, name });

async function events(
  api: Api,
  namespace: string,
  name: string,
): Promise<{ type?: string; reason?: string; message?: string }[]> {
  const list = await api.core.listNamespacedEvent({
    namespace,
    fieldSelector: `involvedObject.name=${name}`,
  });
  return list.items;
}

describe("reconciling an AgentType", () => {
  test("create builds every object per the pod contract, owned by the AgentType", async ({
    kc,
    namespace,
  }) => {
    const api = apis(kc);
    await operatorFor(namespace);
    const created = (await createAgent(api, namespace, simpleAgent("summarizer"))) as {
      metadata: { uid: string };
    };
    const workload: V1Deployment = await eventually("the Deployment", () =>
      deployment(api, namespace, "summarizer"),
    );
    const pod = workload.spec?.template.spec;
    expect(pod?.initContainers?.map((c) => `${c.name}:${c.restartPolicy ?? "-"}`)).toEqual([
      "agenttype-wrapper:-",
      "agenttype-sidecar:Always",
    ]);
    expect(pod?.containers.map((c) => [c.name, c.image])).toEqual([
      ["agent", "ghcr.io/acme/summarizer:0.9.0"],
    ]);
    const env = Object.fromEntries((pod?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({
      OPENAI_BASE_URL: "http://127.0.0.1:4000/v1",
      AGENTTYPE_NAMESPACE: namespace,
    });
    expect(workload.metadata?.ownerReferences).toEqual([
      expect.objectContaining({
        kind: "AgentType",
        name: "summarizer",
        uid: created.metadata.uid,
        controller: true,
      }),
    ]);
    const configMap = await api.core.readNamespacedConfigMap({ namespace, name: "summarizer-sidecar" });
    const config = sidecarConfig.parse(JSON.parse(configMap.data?.["sidecar.json"] ?? ""));
    expect(config.llm?.providers.map((p) => p.model)).toEqual(["qwen2.5:7b"]);
    const service = await api.core.readNamespacedService({ namespace, name: "summarizer-metrics" });
    expect(service.spec?.ports?.map((p) => p.port)).toEqual([9090]);
    await api.core.readNamespacedServiceAccount({ namespace, name: "summarizer" });
    const status = await eventually("a status", async () => {
      const s = await agentStatus(api, namespace, "summarizer");
      return s?.observedGeneration === 1 && s.replicas === 1 ? s : undefined;
    });
    expect(status.selector).toBe("agenttype.dev/agent=summarizer");
    expect(condition(status, "ToolsResolved")?.status).toBe("True");
    expect(condition(status, "Degraded")?.status).toBe("False");
    // No kubelet on this tier: the pod is created but never ready.
    expect(condition(status, "Ready")).toMatchObject({ status: "False", observedGeneration: 1 });
    const { stdout } = await kubectl("get", "at", "-n", namespace);
    expect(stdout).toMatch(/summarizer\s+False\s+1\s+0\s+qwen2\.5:7b/);
  });

  test("an image change rolls the Deployment out", async ({ kc, namespace }) => {
    const api = apis(kc);
    await operatorFor(namespace);
    await createAgent(api, namespace, simpleAgent("roller"));
    await eventually(
      "the first ReplicaSet",
      async () => (await api.apps.listNamespacedReplicaSet({ namespace })).items.length === 1,
    );
    await kubectl(
      "patch",
      "at",
      "roller",
      "-n",
      namespace,
      "--type=merge",
      "-p",
      '{"spec":{"image":"ghcr.io/acme/summarizer:1.0.0"}}',
    );
    await eventually("the new image in the Deployment", async () => {
      const d = await deployment(api, namespace, "roller");
      return d.spec?.template.spec?.containers[0]?.image === "ghcr.io/acme/summarizer:1.0.0";
    });
    const replicaSets = await eventually("a second ReplicaSet", async () => {
      const list = (await api.apps.listNamespacedReplicaSet({ namespace })).items;
      return list.length === 2 ? list : undefined;
    });
    expect(replicaSets.map((rs) => rs.spec?.template?.spec?.containers[0]?.image).sort()).toEqual([
      "ghcr.io/acme/summarizer:0.9.0",
      "ghcr.io/acme/summarizer:1.0.0",
    ]);
    const status = await eventually("status of generation 2", async () => {
      const s = await agentStatus(api, namespace, "roller");
      return s?.observedGeneration === 2 ? s : undefined;
    });
    expect(condition(status, "Progressing")?.status).toBe("True");
  });

  test("kubectl scale and kubectl wait work through the scale subresource and Ready", async ({
    kc,
    namespace,
  }) => {
    const api = apis(kc);
    await operatorFor(namespace);
    await createAgent(api, namespace, simpleAgent("scaler"));
    await eventually("the Deployment", () => deployment(api, namespace, "scaler"));
    await kubectl("scale", "at/scaler", "-n", namespace, "--replicas=3");
    await eventually(
      "3 replicas in the Deployment",
      async () => (await deployment(api, namespace, "scaler")).spec?.replicas === 3,
    );
    await eventually(
      "3 pods counted in the status",
      async () => (await agentStatus(api, namespace, "scaler"))?.replicas === 3,
    );
    const scale = await kubectl(
      "get",
      "--raw",
      `/apis/agenttype.dev/v1alpha1/namespaces/${namespace}/agenttypes/scaler/scale`,
    );
    expect(JSON.parse(scale.stdout)).toMatchObject({
      spec: { replicas: 3 },
      status: { replicas: 3, selector: "agenttype.dev/agent=scaler" },
    });
    // Without a kubelet no pod becomes ready; at zero replicas the agent is Ready by definition.
    await kubectl("scale", "at/scaler", "-n", namespace, "--replicas=0");
    const { stdout } = await kubectl(
      "wait",
      "--for=condition=Ready",
      "at/scaler",
      "-n",
      namespace,
      "--timeout=60s",
    );
    expect(stdout).toContain("condition met");
  });

  test("drift is reverted: an edited or deleted Deployment is restored", async ({ kc, namespace }) => {
    const api = apis(kc);
    await operatorFor(namespace);
    await createAgent(api, namespace, simpleAgent("drifter"));
    const original = await eventually("the Deployment", () => deployment(api, namespace, "drifter"));
    await kubectl(
      "patch",
      "deployment",
      "drifter",
      "-n",
      namespace,
      "--type=json",
      "-p",
      '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"evil:latest"}]',
    );
    await eventually("the image restored", async () => {
      const d = await deployment(api, namespace, "drifter");
      return (
        (d.metadata?.generation ?? 0) > 1 &&
        d.spec?.template.spec?.containers[0]?.image === "ghcr.io/acme/summarizer:0.9.0"
      );
    });
    await api.apps.deleteNamespacedDeployment({ namespace, name: "drifter" });
    const recreated = await eventually("the Deployment recreated", async () => {
      const d = await deployment(api, namespace, "drifter");
      return d.metadata?.uid !== original.metadata?.uid ? d : undefined;
    });
    expect(recreated.spec?.template.spec?.containers[0]?.image).toBe("ghcr.io/acme/summarizer:0.9.0");
  });

  test("deleting the AgentType removes everything it owned", async ({ kc, namespace }) => {
    const api = apis(kc);
    await operatorFor(namespace);
    await createAgent(api, namespace, simpleAgent("doomed"));
    await eventually("the Deployment", () => deployment(api, namespace, "doomed"));
    await kubectl("delete", "at", "doomed", "-n", namespace, "--wait=true");
    await eventually("owned objects gone", async () => {
      const [deployments, configMaps, services, accounts] = await Promise.all([
        api.apps.listNamespacedDeployment({ namespace }),
        api.core.listNamespacedConfigMap({ namespace, labelSelector: "agenttype.dev/agent=doomed" }),
        api.core.listNamespacedService({ namespace }),
        api.core.listNamespacedServiceAccount({ namespace, labelSelector: "agenttype.dev/agent=doomed" }),
      ]);
      return [deployments, configMaps, services, accounts].every((list) => list.items.length === 0);
    });
  });

  test("a missing required tool blocks the rollout; the tool added later flips ToolsResolved", async ({
    kc,
    namespace,
  }) => {
    const api = apis(kc);
    await operatorFor(namespace);
    const agent = simpleAgent("toolish");
    agent.spec.tools = [{ name: "web-search", version: "^1.2.0" }];
    await createAgent(api, namespace, agent);
    const blocked = await eventually("ToolsResolved=False", async () => {
      const s = await agentStatus(api, namespace, "toolish");
      return condition(s, "ToolsResolved")?.status === "False" ? s : undefined;
    });
    expect(condition(blocked, "ToolsResolved")).toMatchObject({
      reason: "RequiredToolsMissing",
      message: "web-search@^1.2.0: no AgentTool offers it",
    });
    expect(condition(blocked, "Degraded")?.status).toBe("True");
    const warning = await eventually("a warning event", async () =>
      (await events(api, namespace, "toolish")).find((e) => e.reason === "RequiredToolsMissing"),
    );
    expect(warning).toMatchObject({ type: "Warning", message: "web-search@^1.2.0: no AgentTool offers it" });
    await expect(deployment(api, namespace, "toolish")).rejects.toThrow();

    const tool = loadSample("agenttool_web-search-mcp.yaml");
    await api.custom.createNamespacedCustomObject({ ...AT, plural: "agenttools", namespace, body: tool });
    const resolved = await eventually("ToolsResolved=True", async () => {
      const s = await agentStatus(api, namespace, "toolish");
      return condition(s, "ToolsResolved")?.status === "True" ? s : undefined;
    });
    expect(resolved.resolvedTools).toEqual([
      { name: "web-search", version: "1.3.0", agentTool: "web-search-1-3-0", protocol: "mcp" },
    ]);
    const config = await eventually("the sidecar config with the tool", async () => {
      const cm = await api.core.readNamespacedConfigMap({ namespace, name: "toolish-sidecar" });
      return sidecarConfig.parse(JSON.parse(cm.data?.["sidecar.json"] ?? ""));
    });
    expect(config.tools.map((t) => t.url)).toEqual([`http://web-search.${namespace}.svc:8080/mcp`]);
    await eventually("the Deployment", () => deployment(api, namespace, "toolish"));
  });

  test("a tool range no version satisfies is reported with the versions on offer", async ({
    kc,
    namespace,
  }) => {
    const api = apis(kc);
    await operatorFor(namespace);
    await api.custom.createNamespacedCustomObject({
      ...AT,
      plural: "agenttools",
      namespace,
      body: loadSample("agenttool_web-search-mcp.yaml"),
    });
    const agent = simpleAgent("picky");
    agent.spec.tools = [{ name: "web-search", version: ">=2.0.0" }];
    await createAgent(api, namespace, agent);
    // The operator may reconcile before its cache has the AgentTool ("no AgentTool offers it");
    // the AgentTool's arrival wakes the AgentType again, and the Event then names the versions.
    const event = await eventually("the warning event naming the versions on offer", async () =>
      (await events(api, namespace, "picky")).find(
        (e) => e.reason === "RequiredToolsMissing" && e.message?.includes("no version matches"),
      ),
    );
    expect(event.message).toBe("web-search@>=2.0.0: no version matches (offered: 1.3.0)");
  });
});

describe("operator resilience", () => {
  test("killed mid-reconcile and restarted, the operator converges", async ({ kc, namespace }) => {
    const api = apis(kc);
    const names = Array.from({ length: 40 }, (_, i) => `agent-${i}`);
    await Promise.all(names.map((name) => createAgent(api, namespace, simpleAgent(name))));
    const first = await operatorFor(namespace, "op-first");
    await eventually("some reconciles done", async () => {
      const done = await first.metric(
        'controller_runtime_reconcile_total{controller="agenttype",result="success"}',
      );
      return (done ?? 0) >= 3;
    });
    await first.stop("SIGKILL");
    await operatorFor(namespace, "op-second", false);
    await eventually(
      "every AgentType reconciled",
      async () => {
        const list = (await api.custom.listNamespacedCustomObject({
          ...AT,
          plural: "agenttypes",
          namespace,
        })) as {
          items: { status?: AgentTypeStatus }[];
        };
        const deployments = await api.apps.listNamespacedDeployment({ namespace });
        return (
          deployments.items.length === names.length &&
          list.items.every((a) => a.status?.observedGeneration === 1)
        );
      },
      90_000,
    );
  });

  test("two replicas: one leads; killed, the other takes over well under 20 s", async ({ kc, namespace }) => {
    const api = apis(kc);
    const a = await operatorFor(namespace, "op-a");
    const b = await operatorFor(namespace, "op-b");
    const leaderGauge = 'leader_election_master_status{name="agenttype-operator"}';
    const leader = await eventually("one leader", async () => {
      const [la, lb] = await Promise.all([a.metric(leaderGauge), b.metric(leaderGauge)]);
      if (la === 1 && lb !== 1) return a;
      if (lb === 1 && la !== 1) return b;
      return undefined;
    });
    const standby = leader === a ? b : a;
    // Both stay ready: a standby is healthy, it only waits for the lease.
    expect((await fetch(`http://127.0.0.1:${standby.port}/readyz`)).status).toBe(200);
    await createAgent(api, namespace, simpleAgent("before"));
    await eventually("reconciled by the leader", () => deployment(api, namespace, "before"));

    const killedAt = Date.now();
    await leader.stop("SIGKILL");
    await eventually("the standby leads", async () => (await standby.metric(leaderGauge)) === 1, 25_000);
    const failoverMs = Date.now() - killedAt;
    await createAgent(api, namespace, simpleAgent("after"));
    await eventually("reconciled by the new leader", () => deployment(api, namespace, "after"));
    const lease = await api.leases.readNamespacedLease({ namespace, name: "agenttype-operator" });
    expect(lease.spec?.holderIdentity).toBe(standby.identity);
    console.log(`[operator] leader failover after SIGKILL: ${(failoverMs / 1000).toFixed(1)} s`);
    expect(failoverMs).toBeLessThan(20_000);
  });

  test("SIGTERM finishes, releases the lease, and the standby takes over at once", async ({
    kc,
    namespace,
  }) => {
    const api = apis(kc);
    const a = await operatorFor(namespace, "op-a");
    await eventually(
      "op-a leads",
      async () => (await a.metric('leader_election_master_status{name="agenttype-operator"}')) === 1,
    );
    const b = await operatorFor(namespace, "op-b");
    const stoppedAt = Date.now();
    expect(await a.stop("SIGTERM")).toBe(0);
    expect(a.logs()).toContain("finishing reconciles in flight");
    await eventually(
      "op-b leads",
      async () => (await b.metric('leader_election_master_status{name="agenttype-operator"}')) === 1,
      10_000,
    );
    // The released lease is taken on op-b's next retry, not after a whole lease duration.
    expect(Date.now() - stoppedAt).toBeLessThan(6_000);
    const lease = await api.leases.readNamespacedLease({ namespace, name: "agenttype-operator" });
    expect(lease.spec?.holderIdentity).toBe("op-b");
  });

  test("/metrics carries reconcile, queue, watch and leader metrics", async ({ kc, namespace }) => {
    const api = apis(kc);
    const operator = await operatorFor(namespace);
    await createAgent(api, namespace, simpleAgent("measured"));
    await eventually("the Deployment", () => deployment(api, namespace, "measured"));
    const text = await eventually("a success in the metrics", async () => {
      const t = await operator.metrics();
      return t.includes('controller_runtime_reconcile_total{controller="agenttype",result="success"}')
        ? t
        : undefined;
    });
    for (const name of [
      "controller_runtime_reconcile_errors_total",
      'controller_runtime_reconcile_time_seconds_bucket{le="0.1",controller="agenttype"}',
      'workqueue_depth{name="agenttype"}',
      'workqueue_adds_total{name="agenttype"}',
      "workqueue_queue_duration_seconds_bucket",
      "agenttype_watch_restarts_total",
      'leader_election_master_status{name="agenttype-operator"} 1',
    ]) {
      expect(text).toContain(name);
    }
    const log = operator
      .logs()
      .split("\n")
      .find((line) => line.includes('"key":"') && line.includes('"reconcileId"'));
    expect(log).toBeDefined();
  });
});
