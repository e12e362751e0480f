// An AgentHost's status from one probe: Reachable with reason and message, the versions the
// host reported and what is placed on it. Pure.
import { isDeepStrictEqual } from "node:util";
import type { AgentHost } from "../../../api/agenthost.ts";
import { setCondition } from "../agenttype/status.ts";

type HostStatus = NonNullable<AgentHost["status"]>;

export interface HostFacts {
  versions: Record<string, string>;
  /** CPUs and memory bytes the host has. */
  cpus?: number;
  memoryBytes?: number;
  /** Agent replicas (groups) the operator runs on the host now. */
  agents: number;
}

export type Probe =
  | { reachable: true; facts: HostFacts }
  | { reachable: false; reason: string; message: string };

function gibibytes(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)}Gi`;
}

/** One line for `kubectl describe`: what the host runs and has. */
export function reachableMessage(facts: HostFacts, driver: string): string {
  const v = facts.versions;
  const runtime = v.containerd === undefined ? driver : `containerd ${v.containerd}`;
  const system = [v.os, v.kernel === undefined ? undefined : `kernel ${v.kernel}`].filter(Boolean).join(", ");
  const size = [
    facts.cpus === undefined ? undefined : `${facts.cpus} CPUs`,
    facts.memoryBytes === undefined ? undefined : `${gibibytes(facts.memoryBytes)} memory`,
  ]
    .filter(Boolean)
    .join(", ");
  return `${runtime} answers${system ? ` on ${system}` : ""}${size ? `; ${size}` : ""}; ${facts.agents} agent replicas placed`;
}

export function hostStatus(
  host: AgentHost,
  probe: Probe,
  clientPublicKey: string | undefined,
  now: Date,
): HostStatus {
  const previous = host.status ?? {};
  const generation = Number(host.metadata.generation ?? 0);
  const condition = probe.reachable
    ? {
        type: "Reachable",
        status: "True" as const,
        reason: "Connected",
        message: reachableMessage(probe.facts, host.spec.driver),
      }
    : { type: "Reachable", status: "False" as const, reason: probe.reason, message: probe.message };
  return {
    observedGeneration: generation,
    conditions: setCondition(
      previous.conditions ?? [],
      { ...condition, observedGeneration: generation },
      now,
    ),
    // What the host last reported stays while it cannot be reached: it is still the best knowledge.
    ...(probe.reachable
      ? { versions: probe.facts.versions, allocation: { agents: probe.facts.agents } }
      : {
          ...(previous.versions === undefined ? {} : { versions: previous.versions }),
          ...(previous.allocation === undefined ? {} : { allocation: previous.allocation }),
        }),
    ...(clientPublicKey === undefined ? {} : { clientPublicKey }),
  };
}

/** Compared as structures, as the API server returns them (keys sorted, undefined absent). */
export function hostStatusChanged(previous: HostStatus | undefined, next: HostStatus): boolean {
  const asSent = (s: HostStatus | undefined) => JSON.parse(JSON.stringify(s ?? {}));
  return !isDeepStrictEqual(asSent(previous), asSent(next));
}

/** Parses `uname -r`, /etc/os-release and /proc/meminfo, nproc output of the probe command. Pure. */
export function parseHostFacts(
  text: string,
): Omit<HostFacts, "versions" | "agents"> & { kernel?: string; os?: string } {
  const value = (key: string) => text.match(new RegExp(`^${key}=(.*)$`, "m"))?.[1]?.trim();
  const cpus = Number(value("cpus"));
  const memoryKb = Number(value("memory_kb"));
  const os = value("os")?.replace(/^"|"$/g, "");
  const kernel = value("kernel");
  return {
    ...(Number.isInteger(cpus) && cpus > 0 ? { cpus } : {}),
    ...(Number.isFinite(memoryKb) && memoryKb > 0 ? { memoryBytes: memoryKb * 1024 } : {}),
    ...(kernel ? { kernel } : {}),
    ...(os ? { os } : {}),
  };
}

/** The command whose output parseHostFacts reads: POSIX sh and coreutils only. */
export const HOST_FACTS_COMMAND =
  'echo "kernel=$(uname -r)"; (. /etc/os-release 2>/dev/null && echo "os=$PRETTY_NAME"); ' +
  'echo "cpus=$(nproc)"; awk \'/^MemTotal:/ {print "memory_kb=" $2}\' /proc/meminfo';
