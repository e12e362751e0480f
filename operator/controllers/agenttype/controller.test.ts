import { describe, expect, test } from "vitest";
import { sameToReconciler, trimOwned } from "./controller.ts";

const owner = {
  apiVersion: "agenttype.dev/v1alpha1",
  kind: "AgentType",
  name: "a",
  uid: "u1",
  controller: true,
};

function deployment(resourceVersion: string, status: Record<string, unknown>) {
  return trimOwned({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: "a",
      namespace: "ns",
      uid: "d1",
      resourceVersion,
      generation: 1,
      ownerReferences: [owner],
    },
    status: status as { observedGeneration?: number },
  });
}

describe("sameToReconciler", () => {
  test("a new resourceVersion alone, as a workload's condition update leaves the trimmed object, is no change", () => {
    // The conditions are trimmed away: the reconciler never reads them.
    const before = deployment("10", {
      observedGeneration: 1,
      replicas: 0,
      conditions: [{ type: "Available" }],
    });
    const after = deployment("11", {
      observedGeneration: 1,
      replicas: 0,
      conditions: [{ type: "Progressing" }],
    });
    expect(sameToReconciler(before, after)).toBe(true);
  });

  test("what the status computes from is a change", () => {
    expect(
      sameToReconciler(deployment("10", { replicas: 0 }), deployment("11", { observedGeneration: 1 })),
    ).toBe(false);
    expect(
      sameToReconciler(deployment("10", { readyReplicas: 0 }), deployment("11", { readyReplicas: 1 })),
    ).toBe(false);
  });

  test("a deletion in progress, another owner or another digest is a change", () => {
    const base = deployment("10", {});
    expect(
      sameToReconciler(base, {
        ...base,
        metadata: { ...base.metadata, deletionTimestamp: "2026-01-01T00:00:00Z" },
      }),
    ).toBe(false);
    expect(sameToReconciler(base, { ...base, metadata: { ...base.metadata, ownerReferences: [] } })).toBe(
      false,
    );
    expect(sameToReconciler(base, { ...base, appliedDigest: "other" })).toBe(false);
  });
});
