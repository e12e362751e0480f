// Nothing retries silently: a reconcile that fails against the real API server leaves a
// condition with reason and message and a Warning Event on the AgentType within that
// reconcile, and a failure retrying cannot fix is retried at the slow end of the backoff.
import { AdmissionregistrationV1Api, AppsV1Api, CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { pino } from "pino";
import { beforeAll, describe, expect } from "vitest";
import type { AgentTypeStatus } from "../../api/agenttype.ts";
import { ApplyLedger } from "../../operator/controllers/agenttype/apply-ledger.ts";
import { trimOwned } from "../../operator/controllers/agenttype/controller.ts";
import type { CachedOwned } from "../../operator/controllers/agenttype/owned-fields.ts";
import type { PodView } from "../../operator/controllers/agenttype/pods-status.ts";
import { createAgentTypeReconciler } from "../../operator/controllers/agenttype/reconciler.ts";
import { Controller } from "../../operator/engine/controller.ts";
import { InformerGroup, type InformerOptions } from "../../operator/engine/informer.ts";
import { createMetrics } from "../../operator/engine/metrics.ts";
import { WorkQueue } from "../../operator/engine/workqueue.ts";
import { loadAccess } from "../../operator/kube/access.ts";
import { KubeClient, type KubeObject, type ResourceType } from "../../operator/kube/client.ts";
import { EventRecorder } from "../../operator/kube/events.ts";
import { resources } from "../../operator/kube/resources.ts";
import { eventually, kubeconfigPath, simpleAgent, test } from "./cluster.ts";
import { installCrds } from "./crds.ts";

const AT = { group: "agenttype.dev", version: "v1alpha1", plural: "agenttypes" };
const logger = pino({ level: "silent" });

beforeAll(async () => {
  await installCrds(kubeconfigPath());
});

/**
 * The AgentType controller's reconciler in this process, on real informers of `namespace`,
 * with build settings of our choosing, driven by a controller whose backoff ends at `slowMs`.
 */
function reconcilerIn(namespace: string, sidecarResources: unknown, slowMs: number, signal: AbortSignal) {
  const client = new KubeClient(loadAccess({ KUBECONFIG: kubeconfigPath() }));
  const informer = <T extends KubeObject>(type: ResourceType, extras: Partial<InformerOptions<T>> = {}) => {
    const group = new InformerGroup<T>(
      {
        client,
        type,
        resyncMs: 600_000,
        watchTimeoutSeconds: 60,
        silenceMs: 120_000,
        retryBaseMs: 100,
        retryMaxMs: 2_000,
        logger,
        ...extras,
      },
      [namespace],
    );
    void group.run(signal);
    return group;
  };
  const owned = (type: ResourceType) => informer<CachedOwned>(type, { transform: trimOwned });
  const agentTypes = informer<KubeObject>(resources.agentType);
  const reconcile = createAgentTypeReconciler({
    client,
    agentTypes,
    agentTools: informer<KubeObject>(resources.agentTool),
    owned: {
      deployment: owned(resources.deployment),
      statefulSet: owned(resources.statefulSet),
      configMap: owned(resources.configMap),
      service: owned(resources.service),
      serviceAccount: owned(resources.serviceAccount),
      podDisruptionBudget: owned(resources.podDisruptionBudget),
      networkPolicy: owned(resources.networkPolicy),
    },
    pods: informer<PodView>(resources.pod),
    ledger: new ApplyLedger(),
    settings: {
      sidecarImage: "agenttype-sidecar:test",
      wrapperImage: "agenttype-wrapper:test",
      imagePullPolicy: "IfNotPresent",
      sidecarResources: sidecarResources as never,
      memoryMaxBytes: 64 * 1024 * 1024,
    },
    events: new EventRecorder(client, "agenttype-operator", logger),
  });
  const attempts: number[] = [];
  const queue = new WorkQueue({ baseDelayMs: 5, maxDelayMs: slowMs });
  const controller = new Controller({
    name: "agenttype",
    queue,
    workers: 1,
    metrics: createMetrics(),
    logger,
    reconcile: (key, log, s) => {
      attempts.push(Date.now());
      return reconcile(key, log, s);
    },
  });
  agentTypes.on((_event, object) => queue.add(`${object.metadata.namespace}/${object.metadata.name}`));
  controller.start();
  signal.addEventListener("abort", () => void controller.stop());
  return { attempts };
}

describe("nothing retries silently", () => {
  test("an apply the API server answers with 500 (malformed object): ApplyFailed, an Event, a slow retry", async ({
    kc,
    namespace,
  }) => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    const core = kc.makeApiClient(CoreV1Api);
    await custom.createNamespacedCustomObject({ ...AT, namespace, body: simpleAgent("web") });
    const stop = new AbortController();
    // A string where the Deployment's schema has a list: the API server answers the server-side
    // apply with HTTP 500 "failed to create typed patch object", which no retry can fix.
    const slowMs = 4_000;
    const { attempts } = reconcilerIn(
      namespace,
      { limits: { memory: "256Mi" }, claims: "all" },
      slowMs,
      stop.signal,
    );
    try {
      const status = await eventually("Degraded=True ApplyFailed", async () => {
        const object = (await custom.getNamespacedCustomObject({ ...AT, namespace, name: "web" })) as {
          status?: AgentTypeStatus;
        };
        const degraded = object.status?.conditions?.find((c) => c.type === "Degraded");
        return degraded?.reason === "ApplyFailed" ? object.status : undefined;
      });
      const degraded = status?.conditions?.find((c) => c.type === "Degraded");
      expect(degraded?.status).toBe("True");
      expect(degraded?.message).toContain("applying Deployment web");
      expect(degraded?.message).toContain("failed to create typed patch object");
      expect(status?.conditions?.find((c) => c.type === "Ready")?.reason).toBe("ApplyFailed");
      const events = await eventually("a Warning Event ApplyFailed", async () => {
        const list = await core.listNamespacedEvent({ namespace, fieldSelector: "involvedObject.name=web" });
        const found = list.items.filter((e) => e.reason === "ApplyFailed");
        return found.length > 0 ? found : undefined;
      });
      expect(events?.[0]?.type).toBe("Warning");
      expect(events?.[0]?.involvedObject.kind).toBe("AgentType");
      // Not retried at once: the next attempt comes at the slow end of the backoff.
      const first = attempts.length;
      await new Promise((r) => setTimeout(r, slowMs / 2));
      expect(attempts.length).toBe(first);
      await eventually("retried slowly", async () => attempts.length > first, 10_000);
      const gap = (attempts.at(-1) ?? 0) - (attempts.at(-2) ?? 0);
      expect(gap).toBeGreaterThanOrEqual(slowMs - 100);
    } finally {
      stop.abort();
    }
  });

  test("a webhook that does not answer (500): Progressing says it is retried, an Event, then it converges", async ({
    kc,
    namespace,
  }) => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    const core = kc.makeApiClient(CoreV1Api);
    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    // Every Deployment write in this namespace goes through a webhook nobody serves: the API
    // server answers 500 "failed calling webhook", which can succeed later unchanged.
    const webhook = `deny-${namespace}`;
    await admission.createValidatingWebhookConfiguration({
      body: {
        metadata: { name: webhook },
        webhooks: [
          {
            name: "unreachable.agenttype.dev",
            admissionReviewVersions: ["v1"],
            sideEffects: "None",
            failurePolicy: "Fail",
            timeoutSeconds: 2,
            clientConfig: { url: "https://127.0.0.1:1/validate" },
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } },
            rules: [
              {
                apiGroups: ["apps"],
                apiVersions: ["v1"],
                operations: ["CREATE", "UPDATE"],
                resources: ["deployments"],
              },
            ],
          },
        ],
      },
    });
    const stop = new AbortController();
    try {
      await custom.createNamespacedCustomObject({ ...AT, namespace, body: simpleAgent("web") });
      reconcilerIn(namespace, { requests: { cpu: "50m", memory: "64Mi" } }, 300_000, stop.signal);
      const progressing = await eventually("Progressing=True APIServerUnavailable", async () => {
        const object = (await custom.getNamespacedCustomObject({ ...AT, namespace, name: "web" })) as {
          status?: AgentTypeStatus;
        };
        const found = object.status?.conditions?.find((c) => c.type === "Progressing");
        return found?.reason === "APIServerUnavailable" ? found : undefined;
      });
      expect(progressing?.status).toBe("True");
      expect(progressing?.message).toContain("retrying: applying Deployment web");
      expect(progressing?.message).toContain("failed calling webhook");
      const event = await eventually("a Warning Event APIServerUnavailable", async () => {
        const list = await core.listNamespacedEvent({ namespace, fieldSelector: "involvedObject.name=web" });
        return list.items.find((e) => e.reason === "APIServerUnavailable");
      });
      expect(event?.type).toBe("Warning");
      // Retried soon, not at the slow end: once the webhook is gone the Deployment is applied.
      await admission.deleteValidatingWebhookConfiguration({ name: webhook });
      await eventually(
        "the Deployment",
        () => kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace, name: "web" }),
        60_000,
      );
    } finally {
      stop.abort();
      await admission.deleteValidatingWebhookConfiguration({ name: webhook }).catch(() => undefined);
    }
  });
});
