// Resolves an AgentType's tool requests (name + semver range) against the AgentTools of its
// namespace: the highest version that matches, that the agent may use and that answered its
// last probe wins; a newer version that did not answer never replaces one that does. Pure.
import { minVersion, rcompare, satisfies } from "semver";
import type { AgentTool } from "../../api/agenttool.ts";
import type { AgentTypeSpec } from "../../api/agenttype.ts";
import { availability } from "./tool-status.ts";

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

/** A matching version newer than the one chosen, passed over because its server is not available. */
export interface PassedOverTool {
  name: string;
  version: string;
  agentTool: string;
  /** The Available condition's message, or why there is none yet. */
  reason: string;
}

export interface ToolResolution {
  resolved: ResolvedTool[];
  missing: MissingTool[];
  passedOver?: PassedOverTool[];
}

// Available first, then not yet probed, then known unavailable (better than nothing).
const PREFERENCE = { True: 0, Unknown: 1, False: 2 } as const;

/**
 * The name agents ask for: spec.name, or metadata.name when unset. Structural, so that an
 * AgentTool not yet validated (as an informer holds it) is named the same way.
 */
export function toolName(tool: { metadata: { name: string }; spec?: { name?: string | undefined } }): string {
  return tool.spec?.name ?? tool.metadata.name;
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
  const passedOver: PassedOverTool[] = [];
  for (const request of requests ?? []) {
    const named = available.filter((tool) => toolName(tool) === request.name);
    // Sorted so that two AgentTools offering the same version resolve the same way every time.
    const allowed = named
      .filter((tool) => mayUse(tool, agentName))
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const matching = allowed
      .filter((tool) => satisfies(tool.spec.version, request.version))
      .sort(
        (a, b) =>
          PREFERENCE[availability(a)] - PREFERENCE[availability(b)] ||
          rcompare(a.spec.version, b.spec.version),
      );
    const chosen = matching[0];
    if (chosen !== undefined) {
      resolution.resolved.push({ name: request.name, version: chosen.spec.version, agentTool: chosen });
      for (const newer of matching.filter((t) => rcompare(t.spec.version, chosen.spec.version) < 0)) {
        const condition = newer.status?.conditions?.find((c) => c.type === "Available");
        passedOver.push({
          name: request.name,
          version: newer.spec.version,
          agentTool: newer.metadata.name,
          reason:
            availability(newer) === "False"
              ? `unavailable: ${condition?.message ?? "its last probe failed"}`
              : "not probed yet",
        });
      }
      continue;
    }
    resolution.missing.push({
      name: request.name,
      range: request.version,
      required: request.required,
      reason: whyMissing(request.version, named, allowed),
    });
  }
  if (passedOver.length > 0) resolution.passedOver = passedOver;
  return resolution;
}

/** Why nothing matched, in words a user can act on: semver reads some ranges unexpectedly. */
function whyMissing(range: string, named: readonly AgentTool[], allowed: readonly AgentTool[]): string {
  if (named.length === 0) return "no AgentTool offers it";
  if (allowed.length === 0) return "its AgentTools do not allow this agent (spec.access.agents)";
  const offered = allowed.map((t) => t.spec.version);
  if (minVersion(range) === null)
    return `the range matches no version at all (offered: ${offered.join(", ")})`;
  const prerelease = offered.find((v) => satisfies(v, range, { includePrerelease: true }));
  if (prerelease !== undefined) {
    return `no version matches (offered: ${offered.join(", ")}); a prerelease such as ${prerelease} matches only a range that names a prerelease of the same major.minor.patch, such as ^${prerelease}`;
  }
  return `no version matches (offered: ${offered.join(", ")})`;
}

/** One line per newer version passed over, for condition messages and events. */
export function describePassedOver(
  passedOver: readonly PassedOverTool[],
  resolved: readonly ResolvedTool[],
): string {
  return passedOver
    .map((p) => {
      const used = resolved.find((r) => r.name === p.name)?.version;
      return `${p.name} ${p.version} (AgentTool ${p.agentTool}) ${p.reason}; using ${used}`;
    })
    .join("; ");
}

/** One line per missing tool, for condition messages and events. */
export function describeMissing(missing: readonly MissingTool[]): string {
  return missing.map((m) => `${m.name}@${m.range}: ${m.reason}`).join("; ");
}
