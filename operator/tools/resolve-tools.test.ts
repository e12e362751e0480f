import { describe, expect, it } from "vitest";
import { type AgentTool, agentTool } from "../../api/agenttool.ts";
import { loadSample } from "../../tests/fixtures/manifests.ts";
import { describeMissing, resolveTools } from "./resolve-tools.ts";

function tool(name: string, version: string, extra: Record<string, unknown> = {}): AgentTool {
  const manifest = loadSample("agenttool_web-search-mcp.yaml");
  manifest.metadata.name = `${name}-${version.replaceAll(".", "-")}`;
  manifest.spec = { ...manifest.spec, name, version, ...extra };
  return agentTool.parse(manifest);
}

describe("resolveTools", () => {
  const offered = [
    tool("web-search", "1.2.0"),
    tool("web-search", "1.4.1"),
    tool("web-search", "2.0.0"),
    tool("calc", "1.0.0"),
  ];

  it("chooses the highest version in the range", () => {
    const { resolved, missing } = resolveTools(
      "a",
      [{ name: "web-search", version: "^1.2.0", required: true }],
      offered,
    );
    expect(resolved.map((r) => [r.name, r.version, r.agentTool.metadata.name])).toEqual([
      ["web-search", "1.4.1", "web-search-1-4-1"],
    ]);
    expect(missing).toEqual([]);
  });

  it("names the tool by metadata.name when spec.name is unset", () => {
    const calculator = agentTool.parse(loadSample("agenttool_calculator-http.yaml"));
    const { resolved } = resolveTools(
      "researcher",
      [{ name: "calculator", version: "*", required: true }],
      [calculator],
    );
    expect(resolved[0]?.version).toBe("2.1.0");
  });

  it("says why a tool is missing", () => {
    const { missing } = resolveTools(
      "a",
      [
        { name: "web-search", version: ">=3.0.0", required: true },
        { name: "maps", version: "*", required: false },
        { name: "secret", version: "*", required: true },
      ],
      [...offered, tool("secret", "1.0.0", { access: { agents: ["b"] } })],
    );
    expect(describeMissing(missing)).toBe(
      "web-search@>=3.0.0: no version matches (offered: 1.2.0, 1.4.1, 2.0.0); maps@*: no AgentTool offers it; secret@*: its AgentTools do not allow this agent (spec.access.agents)",
    );
    expect(missing.map((m) => m.required)).toEqual([true, false, true]);
  });

  it("says when a range matches no version at all", () => {
    const { missing } = resolveTools(
      "a",
      [{ name: "calc", version: ">=2.0.0 <1.0.0", required: true }],
      offered,
    );
    expect(missing[0]?.reason).toBe("the range matches no version at all (offered: 1.0.0)");
  });

  it("says how to ask for a prerelease, which a plain range skips", () => {
    const beta = [tool("calc", "2.0.0-beta.1")];
    const request = (version: string) => [{ name: "calc", version, required: true }];
    expect(resolveTools("a", request(">=1.0.0"), beta).missing[0]?.reason).toBe(
      "no version matches (offered: 2.0.0-beta.1); a prerelease such as 2.0.0-beta.1 matches only a range that names a prerelease of the same major.minor.patch, such as ^2.0.0-beta.1",
    );
    expect(resolveTools("a", request("^2.0.0-beta.1"), beta).resolved[0]?.version).toBe("2.0.0-beta.1");
  });

  it("honours the access list", () => {
    const restricted = [tool("calc", "1.0.0", { access: { agents: ["a"] } })];
    expect(
      resolveTools("a", [{ name: "calc", version: "*", required: true }], restricted).resolved,
    ).toHaveLength(1);
    expect(
      resolveTools("b", [{ name: "calc", version: "*", required: true }], restricted).resolved,
    ).toHaveLength(0);
  });
});
