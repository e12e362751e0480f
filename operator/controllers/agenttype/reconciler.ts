// Reconciles one AgentType: reads it and its tools from the informer caches, builds the
// desired objects, applies them with server-side apply, and writes the status when it
// changed. Level-triggered: it never asks which event woke it.
import type { Logger } from "pino";
import { type AgentTool, agentTool } from "../../../api/agenttool.ts";
import { type AgentType, type AgentTypeStatus, agentType } from "../../../api/agenttype.ts";
import { API_VERSION } from "../../../api/common.ts";
import { formatFieldErrors, parseAs } from "../../../api/field-errors.ts";
import { FIELD_MANAGER, ownedNames, selectorLabels } from "../../build/names.ts";
import { type BuildSettings, buildObjects } from "../../build/objects.ts";
import { TerminalError } from "../../engine/controller.ts";
import type { ObjectCache } from "../../engine/informer.ts";
import { KubeApiError, type KubeClient, type KubeObject, type ResourceType } from "../../kube/client.ts";
import type { EventRecorder } from "../../kube/events.ts";
import { resources } from "../../kube/resources.ts";
import { resolveTools, type ToolResolution } from "../../tools/resolve-tools.ts";
import type { ApplyLedger } from "./apply-ledger.ts";
import {
  applyContent,
  type CachedOwned,
  desiredDigest,
  firstDifference,
  liveDigest,
  ownedPart,
} from "./owned-fields.ts";
import { computeStatus, type Observation, statusChanged, transitions, type WorkloadState } from "./status.ts";

export interface OwnedInformers {
  deployment: ObjectCache<CachedOwned>;
  statefulSet: ObjectCache<CachedOwned>;
  configMap: ObjectCache<CachedOwned>;
  service: ObjectCache<CachedOwned>;
  serviceAccount: ObjectCache<CachedOwned>;
}

export interface ReconcilerDeps {
  client: KubeClient;
  agentTypes: ObjectCache<KubeObject>;
  agentTools: ObjectCache<KubeObject>;
  owned: OwnedInformers;
  /** Shared with the owned informers' handlers, which tell it what the caches show. */
  ledger: ApplyLedger;
  settings: BuildSettings;
  events: EventRecorder;
}

interface WorkloadObject extends KubeObject {
  status?: {
    observedGeneration?: number;
    replicas?: number;
    readyReplicas?: number;
    updatedReplicas?: number;
  };
}

function workloadState(object: WorkloadObject | undefined): WorkloadState | undefined {
  if (object === undefined) return undefined;
  const status = object.status ?? {};
  return {
    generation: object.metadata.generation ?? 0,
    observedGeneration: status.observedGeneration ?? 0,
    replicas: status.replicas ?? 0,
    readyReplicas: status.readyReplicas ?? 0,
    updatedReplicas: status.updatedReplicas ?? 0,
  };
}

function ownedBy(object: KubeObject | undefined, agent: KubeObject): boolean {
  return (
    object?.metadata.ownerReferences?.some((ref) => ref.controller && ref.uid === agent.metadata.uid) ?? false
  );
}

export function createAgentTypeReconciler(deps: ReconcilerDeps) {
  const { client, agentTypes, agentTools, owned, ledger, settings, events } = deps;

  /**
   * Applies `desired` unless the cached object already holds it: the digest of the fields
   * we own, kept by the informer, equals the digest of what we would apply (see
   * owned-fields.ts). Survives restarts: nothing in memory is needed for an unchanged object.
   */
  async function applyIfChanged(
    owner: string,
    type: ResourceType,
    informer: ObjectCache<CachedOwned>,
    desired: KubeObject,
    signal: AbortSignal,
    log: Logger,
  ): Promise<{ object: KubeObject; wrote: boolean }> {
    const { namespace, name } = desired.metadata;
    const object = `${type.plural}/${name}`;
    const wanted = desiredDigest(desired);
    const cached = informer.get(`${namespace}/${name}`);
    if (!ledger.needsApply(owner, object, wanted, cached)) return { object: cached ?? desired, wrote: false };
    const applied = await client.apply(type, desired, FIELD_MANAGER, undefined, signal);
    const stored = liveDigest(applied, FIELD_MANAGER);
    ledger.applied(owner, object, wanted, applied, stored);
    if (stored !== wanted) {
      // Re-applied only after a restart, but worth fixing in the builders: name the field.
      const difference = firstDifference(applyContent(desired), ownedPart(applied, FIELD_MANAGER));
      log.info({ object, difference }, "the API server stores this object differently than it was built");
    }
    return { object: applied, wrote: true };
  }

  function toolsOf(namespace: string, log: Logger): AgentTool[] {
    return agentTools.list(namespace).flatMap((raw) => {
      const parsed = parseAs(agentTool, raw);
      if (parsed.ok) return [parsed.value];
      log.warn(
        { agentTool: raw.metadata.name, errors: formatFieldErrors(parsed.errors) },
        "ignoring an invalid AgentTool",
      );
      return [];
    });
  }

  async function writeStatus(
    raw: KubeObject,
    previous: AgentTypeStatus | undefined,
    observation: Observation,
    signal: AbortSignal,
  ) {
    const status = computeStatus(previous, observation, new Date());
    if (!statusChanged(previous, status)) return;
    const { name, namespace } = raw.metadata;
    await client.apply(
      resources.agentType,
      { apiVersion: API_VERSION, kind: "AgentType", metadata: { name, namespace }, status },
      FIELD_MANAGER,
      "status",
      signal,
    );
    for (const condition of transitions(previous, status)) {
      const warning =
        (condition.type === "Degraded" && condition.status === "True") ||
        (condition.type === "ToolsResolved" && condition.status === "False");
      if (warning || (condition.type === "Ready" && condition.status === "True")) {
        await events.record(raw, warning ? "Warning" : "Normal", condition.reason, condition.message, signal);
      }
    }
  }

  return async function reconcile(key: string, log: Logger, signal: AbortSignal): Promise<undefined> {
    const raw = agentTypes.get(key);
    // Gone: the garbage collector removes what it owned, through the ownerReferences.
    if (raw === undefined || raw.metadata.deletionTimestamp !== undefined) {
      ledger.forget(key);
      return undefined;
    }
    const previous = (raw as { status?: AgentTypeStatus }).status;
    const base = {
      generation: raw.metadata.generation ?? 0,
      desiredReplicas: 0,
      selector: Object.entries(selectorLabels(raw))
        .map(([k, v]) => `${k}=${v}`)
        .join(","),
    };

    const parsed = parseAs(agentType, raw);
    if (!parsed.ok) {
      const message = formatFieldErrors(parsed.errors).replaceAll("\n", "; ");
      await writeStatus(raw, previous, { ...base, problem: { reason: "InvalidSpec", message } }, signal);
      throw new TerminalError(`invalid spec: ${message}`);
    }
    const agent: AgentType = parsed.value;
    const observation: Observation = { ...base, desiredReplicas: agent.spec.replicas };
    if (agent.spec.runtime.type !== "kubernetes") {
      const message = `runtime ${agent.spec.runtime.type} is not available in this operator version; the agent is not started`;
      await writeStatus(
        raw,
        previous,
        {
          ...observation,
          problem: { reason: "RuntimeNotAvailable", message },
        },
        signal,
      );
      return undefined;
    }

    const namespace = raw.metadata.namespace ?? "default";
    const resolution: ToolResolution = resolveTools(
      agent.metadata.name,
      agent.spec.tools,
      toolsOf(namespace, log),
    );
    observation.resolution = resolution;
    if (resolution.missing.some((m) => m.required)) {
      // Pods are left as they are: a missing tool must not take a running agent down.
      await writeStatus(raw, previous, observation, signal);
      return undefined;
    }

    const desired = buildObjects(agent, resolution.resolved, settings);
    const names = ownedNames(agent);
    try {
      const apply = (type: ResourceType, informer: ObjectCache<CachedOwned>, object: KubeObject) =>
        applyIfChanged(key, type, informer, object, signal, log);
      await apply(resources.serviceAccount, owned.serviceAccount, desired.serviceAccount);
      await apply(resources.configMap, owned.configMap, desired.configMap);
      await apply(resources.service, owned.service, desired.metricsService);
      const isStatefulSet = desired.workload.kind === "StatefulSet";
      const [type, informer, otherType, otherInformer] = isStatefulSet
        ? [resources.statefulSet, owned.statefulSet, resources.deployment, owned.deployment]
        : [resources.deployment, owned.deployment, resources.statefulSet, owned.statefulSet];
      const existed = informer.get(key) !== undefined;
      const workload = await apply(type, informer, desired.workload);
      if (!existed && workload.wrote) {
        await events.record(raw, "Normal", "Created", `created ${type.kind} ${names.workload}`, signal);
      }
      // Memory changed between ephemeral and persistent: the other kind of workload goes.
      const stale = otherInformer.get(key);
      if (ownedBy(stale, raw)) {
        await client.delete(otherType, namespace, names.workload, signal);
        log.info({ kind: otherType.kind }, "deleted the workload of the previous memory type");
      }
      observation.workload = workloadState(informer.get(key) ?? workload.object);
    } catch (error) {
      if (error instanceof KubeApiError && !error.retryable) {
        const message = `the API server rejected an object built from this AgentType: ${error.message}`;
        await writeStatus(
          raw,
          previous,
          { ...observation, problem: { reason: "ApplyFailed", message } },
          signal,
        );
        throw new TerminalError(message);
      }
      throw error;
    }
    await writeStatus(raw, previous, observation, signal);
    log.debug({ replicas: observation.workload?.readyReplicas }, "reconciled");
    return undefined;
  };
}
