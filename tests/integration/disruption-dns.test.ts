// The objects an AgentType gets only in some configurations, against the real API server and
// kube-controller-manager: the headless Service that governs the StatefulSet of persistent
// memory (per-pod DNS names), and the PodDisruptionBudget of an agent with more than one
// replica. Both appear when wanted, go when no longer wanted, and go with the AgentType.
import { randomUUID } from "node:crypto";
import { AppsV1Api, CoreV1Api, CustomObjectsApi, PolicyV1Api } from "@kubernetes/client-node";
import { afterEach, beforeAll, describe, expect } from "vitest";
import { agentType } from "../../api/agenttype.ts";
import { FIELD_MANAGER } from "../../operator/build/names.ts";
import { type BuildSettings, buildObjects } from "../../operator/build/objects.ts";
import { desiredDigest, liveDigest } from "../../operator/controllers/agenttype/owned-fields.ts";
import type { KubeObject } from "../../operator/kube/client.ts";
import { eventually, kubeconfigPath, simpleAgent, test } from "./cluster.ts";
import { installCrds } from "./crds.ts";
import { type OperatorProcess, startOperator } from "./operator-process.ts";

const AT = { group: "agenttype.dev", version: "v1alpha1", plural: "agenttypes" };
const running: OperatorProcess[] = [];
// Only the workload depends on these; the Services and the budget do not.
const settings: BuildSettings = {
  sidecarImage: "agenttype-sidecar:test",
  wrapperImage: "agenttype-wrapper:test",
  imagePullPolicy: "IfNotPresent",
  sidecarResources: {},
  memoryMaxBytes: 1,
};

beforeAll(async () => {
  await installCrds(kubeconfigPath());
});

afterEach(async () => {
  for (const operator of running.splice(0)) await operator.stop("SIGKILL");
});

const notFound = (error: unknown) => (error as { code?: number }).code === 404;
/** True once reading the object answers 404. */
const gone = (read: () => Promise<unknown>) => async () => {
  try {
    await read();
    return false;
  } catch (error) {
    if (notFound(error)) return true;
    throw error;
  }
};

describe("headless Service and PodDisruptionBudget", () => {
  test("exist while wanted, are stored as applied, and go when not wanted and with the AgentType", async ({
    kc,
    namespace,
  }) => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    const policy = kc.makeApiClient(PolicyV1Api);
    const operator = await startOperator({ kubeconfig: kubeconfigPath(), namespace, identity: "op-pdb" });
    running.push(operator);

    const manifest = simpleAgent("drained");
    manifest.spec.replicas = 2;
    manifest.spec.memory = { type: "persistent", size: "1Gi" };
    await custom.createNamespacedCustomObject({ ...AT, namespace, body: manifest });

    const headless = await eventually("the headless Service", () =>
      core.readNamespacedService({ namespace, name: "drained-pods" }),
    );
    expect(headless.spec?.clusterIP).toBe("None");
    const statefulSet = await eventually("the StatefulSet", () =>
      apps.readNamespacedStatefulSet({ namespace, name: "drained" }),
    );
    expect(statefulSet.spec?.serviceName).toBe("drained-pods");
    const budget = await eventually("the PodDisruptionBudget", () =>
      policy.readNamespacedPodDisruptionBudget({ namespace, name: "drained" }),
    );
    expect(budget.spec?.maxUnavailable).toBe(1);
    // The disruption controller finds both pods the StatefulSet controller created through the
    // budget's selector (they never get Ready here: no node, so no eviction is allowed yet).
    await eventually(
      "the budget counting the two pods",
      async () =>
        (await policy.readNamespacedPodDisruptionBudget({ namespace, name: "drained" })).status
          ?.expectedPods === 2,
      60_000,
    );

    // Stored as applied: the fields our manager owns, as the API server keeps them, are what the
    // builders make, so an unchanged AgentType never writes them again (ADR 0005).
    const live = (await custom.getNamespacedCustomObject({
      ...AT,
      namespace,
      name: "drained",
    })) as KubeObject;
    const built = buildObjects(agentType.parse(live), [], settings);
    const stored = async (kind: "service" | "budget") =>
      (kind === "service"
        ? await core.readNamespacedService({ namespace, name: "drained-pods" })
        : await policy.readNamespacedPodDisruptionBudget({ namespace, name: "drained" })) as KubeObject;
    expect(liveDigest(await stored("service"), FIELD_MANAGER)).toBe(
      desiredDigest(built.headlessService as KubeObject),
    );
    expect(liveDigest(await stored("budget"), FIELD_MANAGER)).toBe(
      desiredDigest(built.disruptionBudget as KubeObject),
    );

    const patch = (spec: Record<string, unknown>) =>
      custom.patchNamespacedCustomObject({
        ...AT,
        namespace,
        name: "drained",
        body: Object.entries(spec).map(([field, value]) => ({
          op: "replace",
          path: `/spec/${field}`,
          value,
        })),
      });
    // Down to one replica: a budget of one unavailable pod would block every drain.
    await patch({ replicas: 1 });
    await eventually(
      "the budget deleted",
      gone(() => policy.readNamespacedPodDisruptionBudget({ namespace, name: "drained" })),
    );
    expect((await core.readNamespacedService({ namespace, name: "drained-pods" })).spec?.clusterIP).toBe(
      "None",
    );
    // Ephemeral memory: a Deployment, whose pods need no stable names.
    await patch({ memory: { type: "ephemeral" } });
    await eventually(
      "the headless Service deleted",
      gone(() => core.readNamespacedService({ namespace, name: "drained-pods" })),
    );
    await eventually("the Deployment", () => apps.readNamespacedDeployment({ namespace, name: "drained" }));
    // The metrics Service stays for every memory type.
    await core.readNamespacedService({ namespace, name: "drained-metrics" });

    // Both back, then the AgentType deleted: the garbage collector removes what it owned.
    await patch({ replicas: 3, memory: { type: "persistent", size: "1Gi" } });
    await eventually("the budget again", () =>
      policy.readNamespacedPodDisruptionBudget({ namespace, name: "drained" }),
    );
    await eventually("the headless Service again", () =>
      core.readNamespacedService({ namespace, name: "drained-pods" }),
    );
    await custom.deleteNamespacedCustomObject({ ...AT, namespace, name: "drained" });
    await eventually(
      "the budget collected",
      gone(() => policy.readNamespacedPodDisruptionBudget({ namespace, name: "drained" })),
      60_000,
    );
    await eventually(
      "the headless Service collected",
      gone(() => core.readNamespacedService({ namespace, name: "drained-pods" })),
      60_000,
    );
    expect(operator.logs()).not.toContain("stores this object differently");
  });

  test("a StatefulSet an earlier operator made with another serviceName is created again, its volumes kept", async ({
    kc,
    namespace,
  }) => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    const manifest = simpleAgent("upgraded");
    manifest.spec.memory = { type: "persistent", size: "1Gi" };
    const created = (await custom.createNamespacedCustomObject({
      ...AT,
      namespace,
      body: manifest,
    })) as KubeObject;
    // What operators before the headless Service made: the metrics Service as serviceName, which
    // Kubernetes lets no one change afterwards.
    const old = buildObjects(agentType.parse(created), [], settings).workload as KubeObject & {
      spec: { serviceName?: string; volumeClaimTemplates?: { metadata: { name: string } }[] };
    };
    old.spec.serviceName = "upgraded-metrics";
    await apps.createNamespacedStatefulSet({ namespace, body: old as never, fieldManager: FIELD_MANAGER });
    const claim = `${old.spec.volumeClaimTemplates?.[0]?.metadata.name}-upgraded-0`;
    const volume = await eventually("the old StatefulSet's volume claim", () =>
      core.readNamespacedPersistentVolumeClaim({ namespace, name: claim }),
    );
    // A StatefulSet an earlier operator made has run a while: the garbage collector knows its
    // claims. One made a moment ago may not be in the collector's graph yet; deleted with
    // propagation Orphan then, its claim keeps the owner reference (whenDeleted Delete), and the
    // collector removes it as the dependent of an owner that is gone (CI, a loaded machine: the
    // claim came back with another uid). A claim made after it, owned by a StatefulSet that does
    // not exist, is collected only once the collector has read every claim made before it.
    await core.createNamespacedPersistentVolumeClaim({
      namespace,
      body: {
        metadata: {
          name: "collector-caught-up",
          ownerReferences: [
            { apiVersion: "apps/v1", kind: "StatefulSet", name: "never-made", uid: randomUUID() },
          ],
        },
        spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Mi" } } },
      },
    });
    await eventually(
      "the garbage collector past the old StatefulSet's claim",
      gone(() => core.readNamespacedPersistentVolumeClaim({ namespace, name: "collector-caught-up" })),
      60_000,
    );

    const operator = await startOperator({ kubeconfig: kubeconfigPath(), namespace, identity: "op-sts" });
    running.push(operator);
    await eventually(
      "the StatefulSet created again with the headless Service",
      async () =>
        (await apps.readNamespacedStatefulSet({ namespace, name: "upgraded" })).spec?.serviceName ===
        "upgraded-pods",
      60_000,
    );
    const kept = await core.readNamespacedPersistentVolumeClaim({ namespace, name: claim });
    expect(kept.metadata?.uid).toBe(volume.metadata?.uid);
    const events = await core.listNamespacedEvent({ namespace });
    expect(events.items.find((e) => e.reason === "RecreatingStatefulSet")?.message).toContain(
      "StatefulSet upgraded is created again, its pods and volumes kept",
    );
  });
});
