// Resolves an AgentType's tool requests (name + semver range) against the AgentTools of its
// namespace: the highest version that matches and that the agent may use wins. Pure.
import { maxSatisfying } from "semver";
import type { AgentTool } from "../../api/agenttool.ts";
import type { AgentTypeSpec } from "../../api/agenttype.ts";

export interface ResolvedTool {
  name: string;
  version: string;
  agentTool: AgentTool;
}

export interface MissingTool {
  name: string;
  range: string;
  required: boolean;
  /** Why nothing matched, in words a user can act on. */
  reason: string;
}

export interface ToolResolution {
  resolved: ResolvedTool[];
  missing: MissingTool[];
}

/** The name agents ask for: spec.name, or metadata.name when unset. */
export function toolName(tool: AgentTool): string {
  return tool.spec.name ?? tool.metadata.name;
}

function mayUse(tool: AgentTool, agentName: string): boolean {
  const agents = tool.spec.access?.agents;
  return agents === undefined || agents.includes(agentName);
}

export function resolveTools(
  agentName: string,
  requests: AgentTypeSpec["tools"],
  available: readonly AgentTool[],
): ToolResolution {
  const resolution: ToolResolution = { resolved: [], missing: [] };
  for (const request of requests ?? []) {
    const named = available.filter((tool) => toolName(tool) === request.name);
    // Sorted so that two AgentTools offering the same version resolve the same way every time.
    const allowed = named
      .filter((tool) => mayUse(tool, agentName))
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const best = maxSatisfying(
      allowed.map((tool) => tool.spec.version),
      request.version,
    );
    const chosen = best === null ? undefined : allowed.find((tool) => tool.spec.version === best);
    if (chosen !== undefined) {
      resolution.resolved.push({ name: request.name, version: chosen.spec.version, agentTool: chosen });
      continue;
    }
    let reason: string;
    if (named.length === 0) reason = "no AgentTool offers it";
    else if (allowed.length === 0) reason = "its AgentTools do not allow this agent (spec.access.agents)";
    else reason = `no version matches (offered: ${allowed.map((t) => t.spec.version).join(", ")})`;
    resolution.missing.push({
      name: request.name,
      range: request.version,
      required: request.required,
      reason,
    });
  }
  return resolution;
}

/** One line per missing tool, for condition messages and events. */
export function describeMissing(missing: readonly MissingTool[]): string {
  return missing.map((m) => `${m.name}@${m.range}: ${m.reason}`).join("; ");
}
