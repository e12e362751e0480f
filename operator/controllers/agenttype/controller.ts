// The AgentType controller's wiring: it reconciles AgentTypes (For), the objects it creates
// (Owns: a change or deletion of any wakes its owner) and the AgentTools they resolve
// (Watches: a tool change wakes every AgentType asking for that tool).
import { isDeepStrictEqual } from "node:util";
import { AGENT_LABEL, FIELD_MANAGER } from "../../build/names.ts";
import { LABEL_NAME, LABEL_NAMESPACE, LABEL_UID, replicaOf } from "../../drivers/labels.ts";
import { Controller } from "../../engine/controller.ts";
import type { ControllerContext } from "../../engine/controller-context.ts";
import { objectKey } from "../../engine/informer.ts";
import { queueObserver } from "../../engine/metrics.ts";
import { WorkQueue } from "../../engine/workqueue.ts";
import type { KubeObject, ResourceType } from "../../kube/client.ts";
import { resources } from "../../kube/resources.ts";
import { createHostPlacement, HOST_FINALIZER } from "../../placement/host.ts";
import { runsOnHost } from "../../placement/host-plan.ts";
import { toolName } from "../../tools/resolve-tools.ts";
import { ApplyLedger } from "./apply-ledger.ts";
import { type CachedOwned, liveDigest, logStoredOtherwise } from "./owned-fields.ts";
import { type PodView, podViewChanged, trimPod } from "./pods-status.ts";
import { createAgentTypeReconciler, type OwnedInformers } from "./reconciler.ts";

const NAME = "agenttype";

/**
 * An AgentType as the informer holds it: checked by the API server against the CRD's schema,
 * not yet by zod (the reconciler does that, and reports what it finds). The indexes read only
 * these fields, all of which may be absent.
 */
interface StoredAgentType extends KubeObject {
  spec?: { tools?: { name: string }[]; runtime?: { hostRef?: { name: string } } };
}

/** An AgentTool as the informer holds it: only its tool name is read before validation. */
interface StoredAgentTool extends KubeObject {
  spec?: { name?: string };
}

/**
 * What the owned-object caches keep of each object: its identity, its controlling owner, a
 * workload's replica counts, and the digest of the fields our server-side applies own (from
 * managedFields, which then go with the spec and everything else: they dominate the size of
 * an object, and 10,000 AgentTypes own 40,000 objects).
 */
export function trimOwned(object: KubeObject & { status?: CachedOwned["status"] }): CachedOwned {
  const { name, namespace, uid, resourceVersion, generation, deletionTimestamp, ownerReferences } =
    object.metadata;
  const owner = ownerReferences?.find((ref) => ref.controller);
  const appliedDigest = liveDigest(object, FIELD_MANAGER);
  const status = object.status;
  return {
    metadata: {
      name,
      ...(namespace === undefined ? {} : { namespace }),
      ...(uid === undefined ? {} : { uid }),
      ...(resourceVersion === undefined ? {} : { resourceVersion }),
      ...(generation === undefined ? {} : { generation }),
      ...(deletionTimestamp === undefined ? {} : { deletionTimestamp }),
      ...(owner === undefined
        ? {}
        : {
            ownerReferences: [
              {
                apiVersion: owner.apiVersion,
                kind: owner.kind,
                name: owner.name,
                uid: owner.uid,
                controller: true,
              },
            ],
          }),
    },
    ...(status === undefined
      ? {}
      : {
          status: {
            observedGeneration: status.observedGeneration,
            replicas: status.replicas,
            readyReplicas: status.readyReplicas,
            updatedReplicas: status.updatedReplicas,
          },
        }),
    ...(appliedDigest === undefined ? {} : { appliedDigest }),
  };
}

/** The queue key (namespace/name) of the AgentType that controls an owned object, if one does. */
function controllingAgentType(object: KubeObject): string | undefined {
  const owner = object.metadata.ownerReferences?.find((ref) => ref.controller && ref.kind === "AgentType");
  return owner === undefined ? undefined : `${object.metadata.namespace}/${owner.name}`;
}

/**
 * Whether two cached versions of an owned object differ only in their resourceVersion: the
 * cache keeps only what the reconciler reads (trimOwned), so nothing it reads changed.
 */
export function sameToReconciler(a: CachedOwned, b: CachedOwned): boolean {
  const { resourceVersion: _a, ...metadataA } = a.metadata;
  const { resourceVersion: _b, ...metadataB } = b.metadata;
  return isDeepStrictEqual({ ...a, metadata: metadataA }, { ...b, metadata: metadataB });
}

export function setupAgentTypeController(context: ControllerContext): Controller {
  const { client, config, logger, metrics, events } = context;
  const agentTypes = context.informer<StoredAgentType>(resources.agentType, {
    indexers: {
      // namespace/tool name → the AgentTypes asking for that tool.
      tools: (object) => (object.spec?.tools ?? []).map((t) => `${object.metadata.namespace}/${t.name}`),
      host: (object) => {
        const host = object.spec?.runtime?.hostRef?.name;
        return host === undefined ? [] : [host];
      },
    },
  });
  const agentTools = context.informer<StoredAgentTool>(resources.agentTool);
  // Agents on hosts (runtime containerd) follow their AgentHost: a new or changed host wakes them.
  const agentHosts = context.informer<KubeObject>(resources.agentHost);
  const queue = new WorkQueue({ observer: queueObserver(metrics, NAME) });
  // Wakes an AgentType whose object changed while an apply of it was in flight.
  const ledger = new ApplyLedger((owner) => queue.add(owner));
  const ownedInformer = (type: ResourceType) => ({
    type,
    informer: context.informer(type, {
      labelSelector: `app.kubernetes.io/managed-by=${FIELD_MANAGER}`,
      transform: (object: KubeObject) => {
        const trimmed = trimOwned(object);
        // Our own write, shown after its answer came: a server that stores a value in its own
        // form is named here, where the whole object is at hand.
        const owner = controllingAgentType(trimmed);
        const objectName = `${type.plural}/${object.metadata.name}`;
        const write = owner === undefined ? undefined : ledger.unseenWrite(owner, objectName, trimmed);
        if (write !== undefined && write.desired !== trimmed.appliedDigest)
          logStoredOtherwise(logger.child({ agentType: owner }), objectName, write.built, object);
        return trimmed;
      },
    }),
  });
  const ownedKinds = {
    deployment: ownedInformer(resources.deployment),
    statefulSet: ownedInformer(resources.statefulSet),
    configMap: ownedInformer(resources.configMap),
    service: ownedInformer(resources.service),
    serviceAccount: ownedInformer(resources.serviceAccount),
    podDisruptionBudget: ownedInformer(resources.podDisruptionBudget),
    networkPolicy: ownedInformer(resources.networkPolicy),
  };
  const owned: OwnedInformers = {
    deployment: ownedKinds.deployment.informer,
    statefulSet: ownedKinds.statefulSet.informer,
    configMap: ownedKinds.configMap.informer,
    service: ownedKinds.service.informer,
    serviceAccount: ownedKinds.serviceAccount.informer,
    podDisruptionBudget: ownedKinds.podDisruptionBudget.informer,
    networkPolicy: ownedKinds.networkPolicy.informer,
  };
  // Pods are watched for the status alone (image pulls, crash loops, scheduling), trimmed to it.
  const agentOf = (pod: KubeObject) =>
    `${pod.metadata.namespace}/${pod.metadata.labels?.[AGENT_LABEL] ?? ""}`;
  const pods = context.informer<PodView>(resources.pod, {
    labelSelector: `app.kubernetes.io/managed-by=${FIELD_MANAGER},${AGENT_LABEL}`,
    transform: trimPod,
    indexers: { agent: (pod) => [agentOf(pod)] },
  });

  agentTypes.on((event, object, previous) => {
    // Our own status writes change neither generation nor deletion: nothing to do for them.
    const unchanged =
      event === "update" &&
      previous?.metadata.generation === object.metadata.generation &&
      previous?.metadata.deletionTimestamp === object.metadata.deletionTimestamp &&
      JSON.stringify(previous?.metadata.labels) === JSON.stringify(object.metadata.labels);
    if (!unchanged) queue.add(objectKey(object));
  });
  agentTools.on((_event, object, previous) => {
    for (const tool of [object, previous]) {
      if (tool === undefined) continue;
      const key = `${tool.metadata.namespace}/${toolName(tool)}`;
      for (const agent of agentTypes.byIndex("tools", key)) queue.add(objectKey(agent));
    }
  });
  agentHosts.on((_event, host) => {
    for (const agent of agentTypes.byIndex("host", host.metadata.name)) queue.add(objectKey(agent));
  });
  pods.on((event, pod, previous) => {
    if (event !== "update" || podViewChanged(previous, pod)) queue.add(agentOf(pod));
  });
  // What a host's driver sees happen to an agent's group (libvirt: a guest stopped) wakes its
  // AgentType at once; what happened outside the operator is told as a Warning Event.
  context.hosts.onGroupEvent((host, event) => {
    const namespace = event.labels[LABEL_NAMESPACE];
    const name = event.labels[LABEL_NAME];
    if (namespace === undefined || name === undefined) return;
    const key = `${namespace}/${name}`;
    queue.add(key);
    const agent = agentTypes.get(key);
    if (event.warning === undefined || agent === undefined || agent.metadata.uid !== event.labels[LABEL_UID])
      return;
    const replica = replicaOf(event.labels)?.replica;
    void events
      .record(
        agent,
        "Warning",
        event.warning,
        `guest ${event.group} of replica ${replica} on host ${host}: ${event.change}, not done by the operator`,
        AbortSignal.timeout(30_000),
      )
      .catch((err: unknown) => logger.warn({ err }, "could not record a guest's Event"));
  });
  for (const { type, informer } of Object.values(ownedKinds)) {
    const { plural } = type;
    informer.on((event, object, previous) => {
      const ownerKey = controllingAgentType(object);
      if (ownerKey === undefined) return;
      // Exactly the answer to our apply, which the reconcile that applied it has seen; or a
      // change during an apply of the object, judged when its answer comes (apply-ledger.ts).
      const ours = ledger.observed(ownerKey, `${plural}/${object.metadata.name}`, object, event === "delete");
      if (ours) return;
      // A change of nothing the reconciler reads (a workload's conditions, another manager's
      // field): reconciling again would decide the same.
      if (event === "update" && previous !== undefined && sameToReconciler(previous, object)) return;
      queue.add(ownerKey);
    });
  }

  const settings = {
    sidecarImage: config.sidecarImage,
    wrapperImage: config.wrapperImage,
    imagePullPolicy: config.imagePullPolicy,
    sidecarResources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
    memoryMaxBytes: config.memoryMaxBytes,
    // The operator reads a sidecar's /status on the metrics port: its own namespace is always in.
    metricsFromNamespaces: [config.leaseNamespace, ...config.metricsFromNamespaces],
    metricsFromPods: config.metricsFromPods,
  };
  const onPods = createAgentTypeReconciler({
    client,
    agentTypes,
    agentTools,
    owned,
    pods,
    ledger,
    settings,
    events,
  });
  const onHost = createHostPlacement({
    client,
    agentHosts,
    agentTools,
    hosts: context.hosts,
    events,
    settings,
  });

  return new Controller({
    name: NAME,
    queue,
    workers: config.workers,
    metrics,
    logger,
    reconcile: (key, log, signal) => {
      // runtime containerd or kvm, or one that still holds our host finalizer: the host path.
      const raw = agentTypes.get(key);
      if (raw !== undefined && (runsOnHost(raw) || raw.metadata.finalizers?.includes(HOST_FINALIZER)))
        return onHost(key, raw, log, signal);
      return onPods(key, log, signal);
    },
  });
}
