import { describe, expect, it } from "vitest";
import { badManifests, buildBadManifest, loadSample, sampleFiles } from "../tests/fixtures/manifests.ts";
import { agentType } from "./agenttype.ts";
import { formatFieldErrors, parseAs } from "./field-errors.ts";
import { validateManifest } from "./validate.ts";

describe("samples", () => {
  it("config/samples has a manifest of every kind", () => {
    const kindsSeen = new Set(sampleFiles().map((f) => loadSample(f).kind));
    expect([...kindsSeen].sort()).toEqual(["AgentHost", "AgentTool", "AgentType"]);
  });

  it.each(sampleFiles())("%s validates", (file) => {
    const result = validateManifest(loadSample(file));
    expect(result.ok ? "" : formatFieldErrors(result.errors)).toBe("");
  });
});

describe("bad manifests", () => {
  it("the table has at least 25 cases", () => {
    expect(badManifests.length).toBeGreaterThanOrEqual(25);
  });

  it.each(badManifests.map((b) => [b.name, b] as const))("%s is rejected naming the field", (_name, bad) => {
    const result = validateManifest(buildBadManifest(bad));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => e.path)).toContain(bad.path);
    for (const error of result.errors) expect(error.message).not.toBe("");
  });
});

describe("validateManifest", () => {
  it("names apiVersion and kind when they are not ours", () => {
    const wrongGroup = validateManifest({
      ...loadSample("agenttype_python-summarizer.yaml"),
      apiVersion: "v1",
    });
    expect(wrongGroup).toEqual({
      ok: false,
      errors: [{ path: "apiVersion", message: "must be agenttype.dev/v1alpha1" }],
    });
    const wrongKind = validateManifest({ ...loadSample("agenttype_python-summarizer.yaml"), kind: "Agent" });
    expect(wrongKind.ok === false && wrongKind.errors[0]?.path).toBe("kind");
  });

  it("reports every problem at once, not only the first", () => {
    const manifest = loadSample("agenttype_node-researcher.yaml");
    manifest.spec.replicas = -1;
    delete manifest.spec.llm.providers[1].region;
    manifest.spec.tools[0].version = "latest";
    const result = validateManifest(manifest);
    expect(result.ok === false && result.errors.map((e) => e.path).sort()).toEqual([
      "spec.llm.providers[1].region",
      "spec.replicas",
      "spec.tools[0].version",
    ]);
  });

  it("fills the documented defaults", () => {
    const result = parseAs(agentType, loadSample("agenttype_python-summarizer.yaml"));
    if (!result.ok) throw new Error(formatFieldErrors(result.errors));
    const spec = result.value.spec;
    expect(spec.replicas).toBe(1);
    expect(spec.memory).toEqual({ type: "ephemeral", retainPolicy: "Delete" });
    expect(spec.runtime).toEqual({ type: "kubernetes" });
    expect(spec.sidecar).toEqual({ port: 4000, metricsPort: 9090 });
    expect(spec.llm?.retries).toEqual({ maxAttempts: 3, initialBackoffMs: 200, maxBackoffMs: 5000 });
    expect(spec.llm?.timeoutSeconds).toBe(120);
    expect(spec.tools?.[0]).toEqual({ name: "web-search", version: "~1.2", required: true });
  });

  it("accepts quantities written as YAML numbers", () => {
    const manifest = loadSample("agenttype_sandboxed-coder.yaml");
    expect(manifest.spec.resources.limits.cpu).toBe(2);
    expect(validateManifest(manifest).ok).toBe(true);
  });
});
