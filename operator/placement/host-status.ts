// The status of an AgentType running on a host, with the same conditions as for pods (Ready,
// Progressing, Degraded, ToolsResolved) plus the host and state of each replica. Pure.
import type { AgentTypeStatus } from "../../api/agenttype.ts";
import { setCondition } from "../controllers/agenttype/status.ts";
import type { GroupMachine } from "../drivers/driver.ts";
import type { ToolResolution } from "../tools/resolve-tools.ts";

export type ReplicaState = "running" | "starting" | "restarting" | "exited" | "pending" | "suspended";

export interface HostReplica {
  replica: number;
  state: ReplicaState;
  /** True when it runs what the spec asks for now. */
  current: boolean;
  restarts: number;
  /** Its guest (runtime kvm), as the driver lists it. */
  machine?: GroupMachine;
}

/** CPU time and RSS of a guest change all the time: status takes them at most this often. */
export const GUEST_USAGE_REFRESH_MS = 60_000;

type StatusGuest = NonNullable<NonNullable<AgentTypeStatus["hostReplicas"]>[number]["guest"]>;

/**
 * A replica's guest for status: state and size as they are; CPU time and RSS as they are when
 * the last reading of the same guest is a minute old, else that reading, so that a steady agent
 * costs no status write. Pure.
 */
export function statusGuest(
  machine: GroupMachine,
  previous: StatusGuest | undefined,
  now: Date,
): StatusGuest {
  const { name, state, vcpus, memoryMiB, cpuSeconds, rssMiB } = machine;
  const base = {
    name,
    state,
    ...(vcpus === undefined ? {} : { vcpus }),
    ...(memoryMiB === undefined ? {} : { memoryMiB }),
  };
  if (cpuSeconds === undefined && rssMiB === undefined) return base;
  const at = previous?.usageAt === undefined ? Number.NaN : Date.parse(previous.usageAt);
  if (previous?.name === name && now.getTime() - at < GUEST_USAGE_REFRESH_MS)
    return {
      ...base,
      ...(previous.cpuSeconds === undefined ? {} : { cpuSeconds: previous.cpuSeconds }),
      ...(previous.rssMiB === undefined ? {} : { rssMiB: previous.rssMiB }),
      usageAt: previous.usageAt,
    };
  return {
    ...base,
    ...(cpuSeconds === undefined ? {} : { cpuSeconds: Math.round(cpuSeconds) }),
    ...(rssMiB === undefined ? {} : { rssMiB }),
    usageAt: now.toISOString(),
  };
}

export interface HostObservation {
  generation: number;
  selector: string;
  host: string;
  desiredReplicas: number;
  replicas: readonly HostReplica[];
  resolution?: ToolResolution;
  /** A tool problem that stops the agent from starting (ToolsResolved=False). */
  toolProblem?: { reason: string; message: string };
  /** Something a user or admin must fix (Degraded=True, Ready=False). */
  problem?: { reason: string; message: string };
  /** A failure retried soon (Progressing=True). */
  retrying?: { reason: string; message: string };
  /** Replicas left unplaced for lack of capacity: Ready=False HostFull. */
  hostFull?: { placed: number; limit: string };
  /**
   * Where the host can suspend (runtime kvm): "suspended" when spec.suspend holds the replicas
   * saved (Suspended=True, Ready=False Suspended), "running" otherwise (Suspended=False).
   */
  suspend?: "suspended" | "running";
}

export function hostAgentStatus(
  previous: AgentTypeStatus | undefined,
  o: HostObservation,
  now: Date,
): AgentTypeStatus {
  let conditions = previous?.conditions ?? [];
  const set = (type: string, status: "True" | "False", reason: string, message: string) => {
    conditions = setCondition(
      conditions,
      { type, status, reason, message, observedGeneration: o.generation },
      now,
    );
  };
  const ready = o.replicas.filter((r) => r.state === "running" && r.current).length;
  const placed = o.replicas.length;
  const target = o.hostFull === undefined ? o.desiredReplicas : o.hostFull.placed;

  if (o.toolProblem !== undefined) set("ToolsResolved", "False", o.toolProblem.reason, o.toolProblem.message);
  else if (o.resolution !== undefined) {
    const names = o.resolution.resolved.map((t) => `${t.name}@${t.version}`);
    set(
      "ToolsResolved",
      "True",
      "Resolved",
      names.length === 0
        ? "no tools requested"
        : `resolved ${names.join(", ")}; reachable from host ${o.host}`,
    );
  }

  if (o.suspend === "suspended" && o.problem === undefined) {
    const message = `spec.suspend is true: ${placed} replicas saved to disk on host ${o.host}, memory included; set it to false to resume them where they were`;
    set("Suspended", "True", "Suspended", message);
    set("Ready", "False", "Suspended", message);
    set("Degraded", "False", "AsExpected", "no problems");
  } else if (o.problem !== undefined) {
    set("Degraded", "True", o.problem.reason, o.problem.message);
    set("Ready", "False", o.problem.reason, o.problem.message);
  } else if (o.toolProblem !== undefined) {
    set("Degraded", "True", o.toolProblem.reason, o.toolProblem.message);
    set("Ready", "False", o.toolProblem.reason, o.toolProblem.message);
  } else {
    const exited = o.replicas.filter((r) => r.state === "exited" || r.state === "restarting");
    if (exited.length > 0)
      set(
        "Degraded",
        "True",
        "AgentRestarting",
        `replicas ${exited.map((r) => `${r.replica} (${r.restarts} restarts)`).join(", ")} exited and are restarted with backoff`,
      );
    else set("Degraded", "False", "AsExpected", "no problems");
    if (o.hostFull !== undefined)
      set(
        "Ready",
        "False",
        "HostFull",
        `host ${o.host} has room for ${o.hostFull.placed} of ${o.desiredReplicas} replicas (capacity ${o.hostFull.limit}); the placed replicas keep running`,
      );
    else if (ready >= o.desiredReplicas && placed === o.desiredReplicas)
      set(
        "Ready",
        "True",
        "AllReplicasReady",
        `${ready}/${o.desiredReplicas} replicas running on host ${o.host}`,
      );
    else
      set(
        "Ready",
        "False",
        "ReplicasNotReady",
        `${ready}/${o.desiredReplicas} replicas running on host ${o.host}`,
      );
  }

  if (o.suspend === "running")
    set("Suspended", "False", "Running", `spec.suspend is not set; replicas run on host ${o.host}`);
  if (o.suspend === "suspended" && o.problem === undefined)
    set("Progressing", "False", "Suspended", "spec.suspend is true");
  else if (o.retrying !== undefined) set("Progressing", "True", o.retrying.reason, o.retrying.message);
  else if (o.problem === undefined && o.toolProblem === undefined && (ready < target || placed !== target))
    set(
      "Progressing",
      "True",
      o.replicas.some((r) => !r.current) ? "RollingUpdate" : "ReplicasStarting",
      `${ready}/${target} replicas running the current spec on host ${o.host}`,
    );
  else set("Progressing", "False", "Complete", `${ready} replicas up to date on host ${o.host}`);

  const resolution = o.resolution;
  return {
    observedGeneration: o.generation,
    conditions,
    replicas: placed,
    readyReplicas: ready,
    selector: o.selector,
    ...(resolution === undefined
      ? {}
      : {
          resolvedTools: resolution.resolved.map((t) => ({
            name: t.name,
            version: t.version,
            agentTool: t.agentTool.metadata.name,
            protocol: t.agentTool.spec.protocol,
          })),
          ...(resolution.missing.length === 0 ? {} : { missingTools: resolution.missing.map((m) => m.name) }),
        }),
    hostReplicas: [...o.replicas]
      .sort((a, b) => a.replica - b.replica)
      .map((r) => {
        const previousGuest = previous?.hostReplicas?.find((p) => p.replica === r.replica)?.guest;
        return {
          replica: r.replica,
          host: o.host,
          state: r.state,
          restarts: r.restarts,
          ...(r.machine === undefined ? {} : { guest: statusGuest(r.machine, previousGuest, now) }),
        };
      }),
  };
}
