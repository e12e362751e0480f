// Tool health in resolution and status: pure parts of the prober and the preference for tools
// that answer. The probe itself is tested against real servers in tests/integration/tool-health.
import { describe, expect, it } from "vitest";
import { type AgentTool, agentTool } from "../../api/agenttool.ts";
import { loadSample } from "../../tests/fixtures/manifests.ts";
import { initializeAnswered, liveHttpStatus } from "./probe-tool.ts";
import { describePassedOver, resolveTools } from "./resolve-tools.ts";
import { availability, toolStatus, toolStatusChanged } from "./tool-status.ts";

const t0 = new Date("2026-01-01T00:00:00Z");
const t1 = new Date("2026-01-01T00:01:00Z");

function tool(version: string, available?: boolean): AgentTool {
  const manifest = loadSample("agenttool_web-search-mcp.yaml");
  manifest.metadata = { name: `search-${version.replaceAll(".", "-")}`, namespace: "ns", generation: 1 };
  manifest.spec = { ...manifest.spec, name: "search", version };
  const parsed = agentTool.parse(manifest);
  if (available === undefined) return parsed;
  return {
    ...parsed,
    status: toolStatus(
      parsed,
      available
        ? { available: true, reason: "Initialized", message: "answered initialize" }
        : { available: false, reason: "Unreachable", message: "connect ECONNREFUSED 127.0.0.1:9" },
      t0,
    ),
  };
}

const request = [{ name: "search", version: "^1.0.0", required: true }];

describe("resolveTools with tool health", () => {
  it("keeps the working version when a newer one does not answer, and says so", () => {
    const resolution = resolveTools("a", request, [tool("1.0.0", true), tool("1.1.0", false)]);
    expect(resolution.resolved.map((r) => r.version)).toEqual(["1.0.0"]);
    expect(resolution.passedOver).toEqual([
      {
        name: "search",
        version: "1.1.0",
        agentTool: "search-1-1-0",
        reason: "unavailable: connect ECONNREFUSED 127.0.0.1:9",
      },
    ]);
    expect(describePassedOver(resolution.passedOver ?? [], resolution.resolved)).toBe(
      "search 1.1.0 (AgentTool search-1-1-0) unavailable: connect ECONNREFUSED 127.0.0.1:9; using 1.0.0",
    );
  });

  it("takes the newer version once it answers, and prefers answered over not yet probed", () => {
    expect(resolveTools("a", request, [tool("1.0.0", true), tool("1.1.0", true)]).resolved[0]?.version).toBe(
      "1.1.0",
    );
    const unprobed = resolveTools("a", request, [tool("1.0.0", true), tool("1.1.0")]);
    expect(unprobed.resolved[0]?.version).toBe("1.0.0");
    expect(unprobed.passedOver?.[0]?.reason).toBe("not probed yet");
  });

  it("uses the highest version when none answers: better than nothing, and reported", () => {
    const resolution = resolveTools("a", request, [tool("1.0.0", false), tool("1.1.0", false)]);
    expect(resolution.resolved[0]?.version).toBe("1.1.0");
    expect(resolution.passedOver).toBeUndefined();
  });
});

describe("toolStatus", () => {
  it("moves lastProbeTime and lastTransitionTime only when the condition changes", () => {
    const up = tool("1.0.0", true);
    const again = toolStatus(
      up,
      { available: true, reason: "Initialized", message: "answered initialize" },
      t1,
    );
    expect(toolStatusChanged(up, again)).toBe(false);
    const down = toolStatus(up, { available: false, reason: "Timeout", message: "no answer within 5 s" }, t1);
    expect(toolStatusChanged(up, down)).toBe(true);
    expect(down.lastProbeTime).toBe(t1.toISOString());
    expect(down.conditions?.[0]).toMatchObject({ type: "Available", status: "False", reason: "Timeout" });
    expect(down.conditions?.[0]?.lastTransitionTime).toBe(t1.toISOString());
  });

  it("reads a condition of an older generation as not probed", () => {
    const up = tool("1.0.0", true);
    expect(availability(up)).toBe("True");
    expect(availability({ ...up, metadata: { ...up.metadata, generation: 2 } })).toBe("Unknown");
    expect(availability(tool("1.0.0"))).toBe("Unknown");
  });
});

describe("probe answers", () => {
  it("counts a refused request as a live HTTP endpoint, a 404 or 5xx not", () => {
    expect([200, 204, 400, 401, 405, 422].every(liveHttpStatus)).toBe(true);
    expect([404, 500, 502, 503].some(liveHttpStatus)).toBe(false);
  });

  it("recognises an initialize result as JSON and as a server-sent event", () => {
    const result = '{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{}}}';
    expect(initializeAnswered("application/json", result)).toBe(true);
    expect(initializeAnswered("text/event-stream", `event: message\ndata: ${result}\n\n`)).toBe(true);
    expect(initializeAnswered("application/json", '{"jsonrpc":"2.0","id":1,"error":{"code":-32601}}')).toBe(
      false,
    );
    expect(initializeAnswered("text/html", "<html>")).toBe(false);
  });
});
