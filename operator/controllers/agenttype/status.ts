// Computes an AgentType's status from what the reconcile observed, following the Kubernetes
// API conventions for conditions: one entry per type, lastTransitionTime moves only when the
// status flips, every condition carries the generation it was computed for. Pure.
import { isDeepStrictEqual } from "node:util";
import type { AgentTypeStatus } from "../../../api/agenttype.ts";
import {
  describeMissing,
  describePassedOver,
  type ResolvedTool,
  type ToolResolution,
} from "../../tools/resolve-tools.ts";
import { availability } from "../../tools/tool-status.ts";
import { type PodView, podsActivity, podsProblem } from "./pods-status.ts";
import { modelsVerdict, type ProvidersObservation, providersVerdict } from "./providers-status.ts";

type Condition = NonNullable<AgentTypeStatus["conditions"]>[number];
type ConditionStatus = Condition["status"];

/** What the workload reports, from Deployment or StatefulSet status. */
export interface WorkloadState {
  generation: number;
  observedGeneration: number;
  replicas: number;
  readyReplicas: number;
  updatedReplicas: number;
}

export interface Observation {
  generation: number;
  desiredReplicas: number;
  selector: string;
  /** Absent when the reconcile stopped before resolving tools. */
  resolution?: ToolResolution;
  /** Absent until the workload exists. */
  workload?: WorkloadState;
  /** Why the agent cannot run as specified; Degraded and not Ready. */
  problem?: { reason: string; message: string };
  /** A transient failure of this reconcile, retried soon: Progressing says so. */
  retrying?: { reason: string; message: string };
  /** The AgentType's pods, as the pod informer keeps them. */
  pods?: readonly PodView[];
  /**
   * What the sidecars say of the LLM providers; "none" when the AgentType has no LLM (no
   * ProvidersReady condition); absent when not known this time (the condition stays as it is).
   */
  providers?: ProvidersObservation | "none";
  /** Whether the AgentType has providers with a model lifecycle (ollama): only then is there a ModelsReady condition. */
  modelLifecycle?: boolean;
}

/** Sets a condition, keeping lastTransitionTime when the status did not change. */
export function setCondition(
  conditions: readonly Condition[],
  next: Omit<Condition, "lastTransitionTime">,
  now: Date,
): Condition[] {
  const previous = conditions.find((c) => c.type === next.type);
  const lastTransitionTime =
    previous !== undefined && previous.status === next.status
      ? previous.lastTransitionTime
      : now.toISOString();
  return [...conditions.filter((c) => c.type !== next.type), { ...next, lastTransitionTime }];
}

/** What the pods are doing right now, as a clause: "1 pod starting (ContainerCreating)". */
function activity(pods: readonly PodView[] | undefined): string {
  if (pods === undefined) return "";
  const { starting, terminating, waiting } = podsActivity(pods);
  const parts: string[] = [];
  if (starting > 0)
    parts.push(
      `${starting} ${plural(starting, "pod")} starting${waiting.length > 0 ? ` (${waiting.join(", ")})` : ""}`,
    );
  if (terminating > 0) parts.push(`${terminating} ${plural(terminating, "pod")} terminating`);
  return parts.join(", ");
}

const plural = (n: number, word: string) => (n === 1 ? word : `${word}s`);

function progress(observation: Observation): { progressing: boolean; message: string } {
  const { workload, desiredReplicas, pods } = observation;
  if (workload === undefined) return { progressing: true, message: "creating the workload" };
  if (workload.observedGeneration < workload.generation) {
    return { progressing: true, message: "the workload controller has not seen the latest spec yet" };
  }
  const now = activity(pods);
  const doing = now === "" ? "" : `; ${now}`;
  if (workload.updatedReplicas < desiredReplicas) {
    return {
      progressing: true,
      message: `${workload.updatedReplicas} of ${desiredReplicas} pods updated${doing}`,
    };
  }
  if (workload.replicas > desiredReplicas) {
    // Old pods stay until new ones are ready: say which side is waiting, not a guess.
    return {
      progressing: true,
      message: `${workload.readyReplicas} of ${desiredReplicas} pods ready, ${workload.replicas} pods in all${doing}`,
    };
  }
  return {
    progressing: false,
    message: `${desiredReplicas} ${plural(desiredReplicas, "pod")} at the latest spec${doing}`,
  };
}

export function computeStatus(
  previous: AgentTypeStatus | undefined,
  observation: Observation,
  now: Date,
): AgentTypeStatus {
  const { generation, resolution, workload, problem, desiredReplicas, retrying } = observation;
  const required = resolution?.missing.filter((m) => m.required) ?? [];
  const optional = resolution?.missing.filter((m) => !m.required) ?? [];
  // Resolved, yet its last probe failed: no available version matches, the agent gets this one.
  const unavailable = resolution?.resolved.filter((r) => availability(r.agentTool) === "False") ?? [];
  const set = (
    conditions: Condition[],
    type: string,
    status: ConditionStatus,
    reason: string,
    message: string,
  ): Condition[] =>
    setCondition(conditions, { type, status, reason, message, observedGeneration: generation }, now);

  let conditions: Condition[] = [...(previous?.conditions ?? [])];

  if (resolution === undefined) {
    conditions = set(
      conditions,
      "ToolsResolved",
      "Unknown",
      problem?.reason ?? "NotResolved",
      "tools were not resolved",
    );
  } else if (required.length > 0) {
    conditions = set(conditions, "ToolsResolved", "False", "RequiredToolsMissing", describeMissing(required));
  } else if (unavailable.length > 0) {
    conditions = set(
      conditions,
      "ToolsResolved",
      "True",
      "ToolUnavailable",
      describeUnavailable(unavailable),
    );
  } else if ((resolution.passedOver ?? []).length > 0) {
    conditions = set(
      conditions,
      "ToolsResolved",
      "True",
      "NewerToolUnavailable",
      describePassedOver(resolution.passedOver ?? [], resolution.resolved),
    );
  } else if (optional.length > 0) {
    conditions = set(conditions, "ToolsResolved", "True", "OptionalToolsMissing", describeMissing(optional));
  } else {
    const count = resolution.resolved.length;
    conditions = set(
      conditions,
      "ToolsResolved",
      "True",
      "Resolved",
      count === 0 ? "no tools requested" : `${count} tools resolved`,
    );
  }

  const blocked =
    problem ??
    (required.length > 0
      ? { reason: "RequiredToolsMissing", message: describeMissing(required) }
      : undefined);
  // The pods' trouble degrades the agent but does not block the rollout: a fixed spec rolls on.
  const found =
    blocked === undefined && observation.pods !== undefined ? podsProblem(observation.pods, now) : undefined;
  // A sidecar pulling a model is not ready for as long as the download takes: that is progress,
  // which ModelsReady reports, not a failing probe.
  const pulling =
    observation.modelLifecycle === true &&
    observation.providers !== undefined &&
    observation.providers !== "none" &&
    modelsVerdict(observation.providers).reason === "ModelsPulling";
  const podTrouble = found?.reason === "ProbeFailing" && pulling ? undefined : found;
  const degraded = blocked ?? podTrouble;
  conditions = degraded
    ? set(conditions, "Degraded", "True", degraded.reason, degraded.message)
    : set(conditions, "Degraded", "False", "AsExpected", "no problems");

  const { progressing, message } = progress(observation);
  if (blocked) {
    conditions = set(
      conditions,
      "Progressing",
      "False",
      blocked.reason,
      "not rolling out until the problem is fixed",
    );
  } else if (retrying) {
    conditions = set(conditions, "Progressing", "True", retrying.reason, `retrying: ${retrying.message}`);
  } else {
    conditions = set(
      conditions,
      "Progressing",
      progressing ? "True" : "False",
      progressing ? "RollingOut" : "Complete",
      message,
    );
  }

  const ready = workload?.readyReplicas ?? 0;
  if (blocked) {
    conditions = set(conditions, "Ready", "False", blocked.reason, blocked.message);
  } else if (!progressing && ready >= desiredReplicas) {
    conditions = set(
      conditions,
      "Ready",
      "True",
      desiredReplicas === 0 ? "ScaledToZero" : "PodsReady",
      `${ready}/${desiredReplicas} pods ready`,
    );
  } else {
    conditions = set(
      conditions,
      "Ready",
      "False",
      podTrouble?.reason ?? (progressing ? "RollingOut" : "PodsNotReady"),
      `${ready}/${desiredReplicas} pods ready`,
    );
  }

  if (observation.providers === "none") {
    conditions = conditions.filter((c) => c.type !== "ProvidersReady");
  } else if (observation.providers !== undefined) {
    const verdict = providersVerdict(observation.providers);
    conditions = set(conditions, "ProvidersReady", verdict.status, verdict.reason, verdict.message);
  }
  if (observation.providers === "none" || observation.modelLifecycle === false) {
    conditions = conditions.filter((c) => c.type !== "ModelsReady");
  } else if (observation.providers !== undefined && observation.modelLifecycle === true) {
    const verdict = modelsVerdict(observation.providers);
    conditions = set(conditions, "ModelsReady", verdict.status, verdict.reason, verdict.message);
  }

  const order = ["Ready", "Progressing", "Degraded", "ToolsResolved", "ProvidersReady", "ModelsReady"];
  conditions.sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type));

  const status: AgentTypeStatus = {
    observedGeneration: generation,
    conditions,
    replicas: workload?.replicas ?? 0,
    readyReplicas: ready,
    selector: observation.selector,
  };
  if (resolution !== undefined) {
    status.resolvedTools = resolution.resolved.map((r) => ({
      name: r.name,
      version: r.version,
      agentTool: r.agentTool.metadata.name,
      protocol: r.agentTool.spec.protocol,
    }));
    if (resolution.missing.length > 0) status.missingTools = resolution.missing.map((m) => m.name);
  }
  return status;
}

/** One clause per resolved tool whose server did not answer its last probe. */
function describeUnavailable(tools: readonly ResolvedTool[]): string {
  return tools
    .map((r) => {
      const probe = r.agentTool.status?.conditions?.find((c) => c.type === "Available");
      return `${r.name} ${r.version} (AgentTool ${r.agentTool.metadata.name}) is unavailable: ${probe?.message ?? "its last probe failed"}; no available version matches`;
    })
    .join("; ");
}

/**
 * Conditions whose status or reason differs from before: the transitions worth an Event. A
 * ToolsResolved that stays False under the same reason counts too when its message changes
 * ("no AgentTool offers it" becoming "no version matches (offered: 1.3.0)"): the message is
 * what the user acts on, and it changes only when the tools on offer do. Other messages carry
 * counts and progress, which would make an Event of every step.
 */
export function transitions(previous: AgentTypeStatus | undefined, next: AgentTypeStatus): Condition[] {
  return (next.conditions ?? []).filter((condition) => {
    const before = previous?.conditions?.find((c) => c.type === condition.type);
    if (before === undefined) return condition.status !== "Unknown";
    if (before.status !== condition.status || before.reason !== condition.reason) return true;
    return (
      condition.type === "ToolsResolved" &&
      condition.status === "False" &&
      before.message !== condition.message
    );
  });
}

/**
 * Whether `next` differs from the status the API server holds. Compared as structures, not
 * as text: the server returns the keys of every map sorted, whatever order we wrote them in.
 * Fields set to undefined count as absent, as they are once sent.
 */
export function statusChanged(previous: AgentTypeStatus | undefined, next: AgentTypeStatus): boolean {
  const asSent = (status: AgentTypeStatus | undefined) => JSON.parse(JSON.stringify(status ?? {}));
  return !isDeepStrictEqual(asSent(previous), asSent(next));
}
