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
import { type ReconcileResult, TerminalError } from "../../engine/controller.ts";
import type { ObjectCache } from "../../engine/informer.ts";
import {
  isNotFound,
  isStatefulSetImmutable,
  type KubeClient,
  type KubeObject,
  type ResourceType,
} from "../../kube/client.ts";
import type { EventRecorder } from "../../kube/events.ts";
import { resources } from "../../kube/resources.ts";
import { resolveTools, type ToolResolution } from "../../tools/resolve-tools.ts";
import type { ApplyLedger } from "./apply-ledger.ts";
import { classifyFailure, type Failure } from "./failure.ts";
import { applyContent, type CachedOwned, desiredDigest, logStoredOtherwise } from "./owned-fields.ts";
import { NOT_READY_AFTER_MS, type PodView, podsActivity } from "./pods-status.ts";
import { ProvidersReader } from "./read-sidecar-status.ts";
import { computeStatus, type Observation, statusChanged, transitions, type WorkloadState } from "./status.ts";

export interface OwnedInformers {
  deployment: ObjectCache<CachedOwned>;
  statefulSet: ObjectCache<CachedOwned>;
  configMap: ObjectCache<CachedOwned>;
  service: ObjectCache<CachedOwned>;
  serviceAccount: ObjectCache<CachedOwned>;
  podDisruptionBudget: ObjectCache<CachedOwned>;
  networkPolicy: ObjectCache<CachedOwned>;
}

export interface ReconcilerDeps {
  client: KubeClient;
  agentTypes: ObjectCache<KubeObject>;
  agentTools: ObjectCache<KubeObject>;
  owned: OwnedInformers;
  /** The AgentTypes' pods, trimmed (pods-status.ts), indexed by "agent" as namespace/name. */
  pods: ObjectCache<PodView>;
  /** Shared with the owned informers' handlers, which tell it what the caches show. */
  ledger: ApplyLedger;
  settings: BuildSettings;
  events: EventRecorder;
  /** Reads the sidecars' /status under the bounds of ADR 0007; one per operator process. */
  providers?: ProvidersReader;
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

/** How far a reconcile got: what a failure is reported against. */
interface Step {
  action: string;
  observation?: Observation;
}

/** Conditions whose trouble status gets a Warning Event, and whose way back a Normal one. */
/** How soon to look again while a StatefulSet being created again is still being deleted. */
const RECREATE_POLL_MS = 1000;

const TROUBLE_STATUS: Record<string, string> = {
  Degraded: "True",
  ProvidersReady: "False",
  ModelsReady: "False",
};

export function createAgentTypeReconciler(deps: ReconcilerDeps) {
  const { client, agentTypes, agentTools, owned, pods, ledger, settings, events } = deps;
  const providers = deps.providers ?? new ProvidersReader();

  /**
   * Applies `desired` unless the cached object already holds it: the digest of the fields
   * we own, kept by the informer, equals the digest of what we would apply (see
   * owned-fields.ts). Survives restarts: nothing in memory is needed for an unchanged object.
   * The object returned is the newest state known: the answer to this apply, or to an earlier
   * one the informer has not shown yet, or the cached object.
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
    if (!ledger.needsApply(owner, object, wanted, cached))
      return { object: ledger.unseenAnswer(owner, object) ?? cached ?? desired, wrote: false };
    ledger.applying(owner, object);
    let applied: KubeObject;
    try {
      applied = await client.apply(type, desired, FIELD_MANAGER, undefined, signal);
    } catch (error) {
      ledger.applyFailed(owner, object);
      throw error;
    }
    const built = applyContent(desired);
    // The informer showed our write before its answer came: name what the server stores otherwise.
    if (ledger.applied(owner, object, wanted, built, applied).storedOtherwise !== undefined)
      logStoredOtherwise(log, object, built, applied);
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
    if (!statusChanged(previous, status)) return [];
    const { name, namespace } = raw.metadata;
    await client.applyWithoutAnswer(
      resources.agentType,
      { apiVersion: API_VERSION, kind: "AgentType", metadata: { name, namespace }, status },
      FIELD_MANAGER,
      "status",
      signal,
    );
    const recorded: string[] = [];
    for (const condition of transitions(previous, status)) {
      const trouble = TROUBLE_STATUS[condition.type];
      // A model being pulled is progress, not trouble: a Normal Event says it started.
      const pulling = condition.type === "ModelsReady" && condition.reason === "ModelsPulling";
      const warning =
        (trouble !== undefined && condition.status === trouble && !pulling) ||
        (condition.type === "ToolsResolved" &&
          (condition.status === "False" ||
            condition.reason === "NewerToolUnavailable" ||
            condition.reason === "ToolUnavailable"));
      const recovered =
        trouble !== undefined &&
        condition.status !== trouble &&
        condition.status !== "Unknown" &&
        previous?.conditions?.some((c) => c.type === condition.type && c.status === trouble);
      if (warning || recovered || pulling || (condition.type === "Ready" && condition.status === "True")) {
        await events.record(raw, warning ? "Warning" : "Normal", condition.reason, condition.message, signal);
        recorded.push(condition.reason);
      }
    }
    return recorded;
  }

  function baseObservation(raw: KubeObject): Observation {
    return {
      generation: raw.metadata.generation ?? 0,
      desiredReplicas: 0,
      selector: Object.entries(selectorLabels(raw))
        .map(([k, v]) => `${k}=${v}`)
        .join(","),
    };
  }

  /**
   * Every failure reaches the AgentType within the reconcile that met it: a condition (Degraded
   * when someone must change something, Progressing while a transient one is retried) and a
   * Warning Event. Then throws, so the work queue retries: soon for a transient failure, at
   * the slow end of the backoff otherwise.
   */
  async function reportFailure(
    raw: KubeObject,
    step: Step,
    failure: Failure,
    log: Logger,
    signal: AbortSignal,
  ): Promise<never> {
    const previous = (raw as { status?: AgentTypeStatus }).status;
    const observation = step.observation ?? baseObservation(raw);
    const { reason, message } = failure;
    try {
      const recorded = await writeStatus(
        raw,
        previous,
        failure.transient
          ? { ...observation, retrying: { reason, message } }
          : { ...observation, problem: { reason, message } },
        signal,
      );
      if (!recorded.includes(reason)) await events.record(raw, "Warning", reason, message, signal);
    } catch (error) {
      if (signal.aborted) throw error;
      log.warn(
        { err: (error as Error).message, failure: message },
        "could not report a failure on the AgentType",
      );
    }
    throw failure.transient ? new Error(message) : new TerminalError(message);
  }

  return async function reconcile(
    key: string,
    log: Logger,
    signal: AbortSignal,
  ): Promise<ReconcileResult | undefined> {
    const raw = agentTypes.get(key);
    // Gone: the garbage collector removes what it owned, through the ownerReferences.
    if (raw === undefined || raw.metadata.deletionTimestamp !== undefined) {
      ledger.forget(key);
      providers.forget(key);
      return undefined;
    }
    const step: Step = { action: "building the objects of this AgentType" };
    try {
      return await converge(key, raw, log, signal, step);
    } catch (error) {
      // Reported already (InvalidSpec), or not a failure of the object (stopping).
      if (signal.aborted || error instanceof TerminalError) throw error;
      return await reportFailure(raw, step, classifyFailure(error, step.action), log, signal);
    }
  };

  async function converge(
    key: string,
    raw: KubeObject,
    log: Logger,
    signal: AbortSignal,
    step: Step,
  ): Promise<ReconcileResult | undefined> {
    const previous = (raw as { status?: AgentTypeStatus }).status;
    const base = baseObservation(raw);

    const parsed = parseAs(agentType, raw);
    if (!parsed.ok) {
      const message = formatFieldErrors(parsed.errors).replaceAll("\n", "; ");
      await writeStatus(raw, previous, { ...base, problem: { reason: "InvalidSpec", message } }, signal);
      throw new TerminalError(`invalid spec: ${message}`);
    }
    const agent: AgentType = parsed.value;
    const agentPods = pods.byIndex("agent", key);
    const observation: Observation = { ...base, desiredReplicas: agent.spec.replicas, pods: agentPods };
    step.observation = observation;
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
    const apply = async (type: ResourceType, informer: ObjectCache<CachedOwned>, object: KubeObject) => {
      try {
        return await applyIfChanged(key, type, informer, object, signal, log);
      } catch (error) {
        step.action = `applying ${type.kind} ${object.metadata.name}`;
        throw error;
      }
    };
    /** Applies an object wanted only in some configurations, or deletes ours when it is not. */
    const applyOrRemove = async (
      type: ResourceType,
      informer: ObjectCache<CachedOwned>,
      name: string,
      object: KubeObject | undefined,
    ) => {
      if (object !== undefined) return apply(type, informer, object);
      if (!ownedBy(informer.get(`${namespace}/${name}`), raw)) return undefined;
      step.action = `deleting ${type.kind} ${name}`;
      try {
        await client.delete(type, namespace, name, signal);
      } catch (error) {
        // Deleted meanwhile by someone else: what we wanted.
        if (!isNotFound(error)) throw error;
      }
      log.info({ kind: type.kind, name }, "deleted an object this AgentType no longer needs");
      return undefined;
    };
    // These do not depend on each other: applied at once, a new AgentType waits for one round
    // trip to the API server instead of several. The workload, whose pods need the
    // ServiceAccount and the ConfigMap, comes after them.
    await Promise.all([
      apply(resources.serviceAccount, owned.serviceAccount, desired.serviceAccount),
      apply(resources.configMap, owned.configMap, desired.configMap),
      apply(resources.service, owned.service, desired.metricsService),
      applyOrRemove(resources.service, owned.service, names.headlessService, desired.headlessService),
      applyOrRemove(
        resources.podDisruptionBudget,
        owned.podDisruptionBudget,
        names.disruptionBudget,
        desired.disruptionBudget,
      ),
      applyOrRemove(resources.networkPolicy, owned.networkPolicy, names.networkPolicy, desired.networkPolicy),
    ]);
    const isStatefulSet = desired.workload.kind === "StatefulSet";
    const [type, informer, otherType, otherInformer] = isStatefulSet
      ? [resources.statefulSet, owned.statefulSet, resources.deployment, owned.deployment]
      : [resources.deployment, owned.deployment, resources.statefulSet, owned.statefulSet];
    const live = informer.get(key);
    if (live?.metadata.deletionTimestamp !== undefined) {
      // Being deleted (a StatefulSet created again, below): apply once it is gone.
      return { requeueAfterMs: RECREATE_POLL_MS };
    }
    const existed = live !== undefined;
    let workload: Awaited<ReturnType<typeof apply>>;
    try {
      workload = await apply(type, informer, desired.workload);
    } catch (error) {
      if (!(isStatefulSet && isStatefulSetImmutable(error) && ownedBy(live, raw))) throw error;
      // A field Kubernetes lets no one change changed (an earlier operator's serviceName, a new
      // volume size): the StatefulSet goes, its pods and volumes stay for the new one to adopt.
      step.action = `deleting StatefulSet ${names.workload} to create it again`;
      await client.delete(resources.statefulSet, namespace, names.workload, signal, "orphan");
      await events.record(
        raw,
        "Normal",
        "RecreatingStatefulSet",
        `StatefulSet ${names.workload} is created again, its pods and volumes kept: ${(error as Error).message}`,
        signal,
      );
      log.info({ name: names.workload }, "deleted the StatefulSet (orphaning its pods) to create it again");
      return { requeueAfterMs: RECREATE_POLL_MS };
    }
    // Memory changed between ephemeral and persistent: the other kind of workload goes.
    const stale = otherInformer.get(key);
    if (ownedBy(stale, raw)) {
      step.action = `deleting ${otherType.kind} ${names.workload}`;
      await client.delete(otherType, namespace, names.workload, signal);
      log.info({ kind: otherType.kind }, "deleted the workload of the previous memory type");
    }
    // Not the cache: the informer's event for our own write wakes no second reconcile.
    observation.workload = workloadState(workload.object);
    step.action = "reading the sidecars' provider status";
    observation.providers =
      agent.spec.llm === undefined
        ? "none"
        : await providers.observe(key, agentPods, agent.spec.sidecar.metricsPort, signal);
    observation.modelLifecycle = agent.spec.llm?.providers.some((p) => p.type === "ollama") ?? false;
    step.action = "writing the status";
    // The Event and the status go at once too: neither needs the other.
    await Promise.all([
      !existed && workload.wrote
        ? events.record(raw, "Normal", "Created", `created ${type.kind} ${names.workload}`, signal)
        : undefined,
      writeStatus(raw, previous, observation, signal),
    ]);
    log.debug({ replicas: observation.workload?.readyReplicas }, "reconciled");
    // A readiness probe that keeps failing changes nothing a watch would see: look again.
    return podsActivity(agentPods).starting > 0 ? { requeueAfterMs: NOT_READY_AFTER_MS / 2 } : undefined;
  }
}
