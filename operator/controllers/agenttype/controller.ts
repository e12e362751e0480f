// The AgentType controller's wiring: it reconciles AgentTypes (For), the objects it creates
// (Owns: a change or deletion of any wakes its owner) and the AgentTools they resolve
// (Watches: a tool change wakes every AgentType asking for that tool).
import type { AgentTool } from "../../../api/agenttool.ts";
import type { AgentType } from "../../../api/agenttype.ts";
import { FIELD_MANAGER } from "../../build/names.ts";
import { Controller } from "../../engine/controller.ts";
import type { ControllerContext } from "../../engine/controller-context.ts";
import { type InformerGroup, objectKey } from "../../engine/informer.ts";
import { queueObserver } from "../../engine/metrics.ts";
import { WorkQueue } from "../../engine/workqueue.ts";
import type { KubeObject } from "../../kube/client.ts";
import { resources } from "../../kube/resources.ts";
import { toolName } from "../../tools/resolve-tools.ts";
import { createAgentTypeReconciler, type OwnedInformers } from "./reconciler.ts";

const NAME = "agenttype";

/** Owned objects are cached without managedFields: the reconciler reads metadata and status. */
function trimOwned({ apiVersion, kind, metadata, status }: KubeObject & { status?: unknown }): KubeObject {
  const { managedFields: _, ...kept } = metadata as KubeObject["metadata"] & { managedFields?: unknown };
  return { apiVersion, kind, metadata: kept, status } as KubeObject;
}

export function setupAgentTypeController(context: ControllerContext): Controller {
  const { client, config, logger, metrics, events } = context;
  const agentTypes = context.informer<KubeObject>(resources.agentType, {
    indexers: {
      // namespace/tool name → the AgentTypes asking for that tool.
      tools: (object) =>
        ((object as AgentType).spec?.tools ?? []).map((t) => `${object.metadata.namespace}/${t.name}`),
    },
  });
  const agentTools = context.informer<KubeObject>(resources.agentTool);
  const ownedOptions = {
    labelSelector: `app.kubernetes.io/managed-by=${FIELD_MANAGER}`,
    transform: trimOwned,
  };
  const owned: Record<keyof OwnedInformers, InformerGroup<KubeObject>> = {
    deployment: context.informer(resources.deployment, ownedOptions),
    statefulSet: context.informer(resources.statefulSet, ownedOptions),
    configMap: context.informer(resources.configMap, ownedOptions),
    service: context.informer(resources.service, ownedOptions),
    serviceAccount: context.informer(resources.serviceAccount, ownedOptions),
  };
  const queue = new WorkQueue({ observer: queueObserver(metrics, NAME) });

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
      const key = `${tool.metadata.namespace}/${toolName(tool as AgentTool)}`;
      for (const agent of agentTypes.byIndex("tools", key)) queue.add(objectKey(agent));
    }
  });
  for (const informer of Object.values(owned)) {
    informer.on((_event, object) => {
      const owner = object.metadata.ownerReferences?.find(
        (ref) => ref.controller && ref.kind === "AgentType",
      );
      if (owner !== undefined) queue.add(`${object.metadata.namespace}/${owner.name}`);
    });
  }

  return new Controller({
    name: NAME,
    queue,
    workers: config.workers,
    metrics,
    logger,
    reconcile: createAgentTypeReconciler({
      client,
      agentTypes,
      agentTools,
      owned,
      settings: {
        sidecarImage: config.sidecarImage,
        wrapperImage: config.wrapperImage,
        imagePullPolicy: config.imagePullPolicy,
        sidecarResources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
        memoryMaxBytes: config.memoryMaxBytes,
      },
      events,
    }),
  });
}
