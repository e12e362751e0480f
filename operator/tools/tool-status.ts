// The AgentTool status the prober writes: the Available condition from the last probe. Pure.
// lastProbeTime moves only with the condition, so that a tool that keeps answering costs no
// write per probe.
import { isDeepStrictEqual } from "node:util";
import type { AgentTool } from "../../api/agenttool.ts";
import type { ProbeResult } from "./probe-tool.ts";

type Status = NonNullable<AgentTool["status"]>;

const generationOf = (tool: AgentTool): number =>
  typeof tool.metadata.generation === "number" ? tool.metadata.generation : 0;

export function toolStatus(tool: AgentTool, probe: ProbeResult, now: Date): Status {
  const previous = tool.status?.conditions?.find((c) => c.type === "Available");
  const generation = generationOf(tool);
  const status = probe.available ? "True" : "False";
  const same =
    previous !== undefined &&
    previous.status === status &&
    previous.reason === probe.reason &&
    previous.message === probe.message &&
    previous.observedGeneration === generation;
  if (same && tool.status !== undefined) return tool.status;
  return {
    observedGeneration: generation,
    lastProbeTime: now.toISOString(),
    conditions: [
      {
        type: "Available",
        status,
        reason: probe.reason,
        message: probe.message,
        observedGeneration: generation,
        lastTransitionTime:
          previous !== undefined && previous.status === status
            ? previous.lastTransitionTime
            : now.toISOString(),
      },
    ],
  };
}

export function toolStatusChanged(tool: AgentTool, next: Status): boolean {
  return !isDeepStrictEqual(JSON.parse(JSON.stringify(tool.status ?? {})), JSON.parse(JSON.stringify(next)));
}

/** What the last probe said: True, False, or Unknown before the first probe of this generation. */
export function availability(tool: AgentTool): "True" | "False" | "Unknown" {
  const condition = tool.status?.conditions?.find((c) => c.type === "Available");
  if (condition === undefined) return "Unknown";
  if (condition.observedGeneration !== undefined && condition.observedGeneration !== generationOf(tool)) {
    return "Unknown";
  }
  return condition.status === "True" ? "True" : condition.status === "False" ? "False" : "Unknown";
}
