import { describe, expect, it } from "vitest";
import { ApplyLedger } from "./apply-ledger.ts";

const OWNER = "ns/a";
const OBJECT = "deployments/a";
const cached = (resourceVersion: string, appliedDigest: string | undefined, uid = "u1") => ({
  metadata: { uid, resourceVersion },
  ...(appliedDigest === undefined ? {} : { appliedDigest }),
});

describe("ApplyLedger", () => {
  it("needs no entry for an object whose cached digest is what we want, after a restart too", () => {
    const ledger = new ApplyLedger();
    expect(ledger.needsApply(OWNER, OBJECT, "d1", cached("5", "d1"))).toBe(false);
    expect(ledger.needsApply(OWNER, OBJECT, "d2", cached("5", "d1"))).toBe(true);
    expect(ledger.needsApply(OWNER, OBJECT, "d1", undefined)).toBe(true);
  });

  it("skips an apply while the cache has not shown our last write of the same thing", () => {
    const ledger = new ApplyLedger();
    ledger.applied(OWNER, OBJECT, "d2", { metadata: { uid: "u1", resourceVersion: "10" } }, "d2");
    // The cache still has the object as it was before our write, or not at all.
    expect(ledger.needsApply(OWNER, OBJECT, "d2", cached("9", "d1"))).toBe(false);
    expect(ledger.needsApply(OWNER, OBJECT, "d2", undefined)).toBe(false);
    // Wanting something else again is applied at once.
    expect(ledger.needsApply(OWNER, OBJECT, "d3", cached("9", "d1"))).toBe(true);
    // The cache shows our write: the entry is of no more use and goes.
    ledger.observed(OWNER, OBJECT, cached("10", "d2"), false);
    expect(ledger.size).toBe(0);
    expect(ledger.needsApply(OWNER, OBJECT, "d2", cached("10", "d2"))).toBe(false);
  });

  it("remembers an object the server stores differently, and re-applies it once someone changes it", () => {
    const ledger = new ApplyLedger();
    ledger.applied(OWNER, OBJECT, "want", { metadata: { uid: "u1", resourceVersion: "10" } }, "stored");
    ledger.observed(OWNER, OBJECT, cached("10", "stored"), false);
    expect(ledger.size).toBe(1);
    expect(ledger.needsApply(OWNER, OBJECT, "want", cached("10", "stored"))).toBe(false);
    ledger.observed(OWNER, OBJECT, cached("11", "edited"), false);
    expect(ledger.needsApply(OWNER, OBJECT, "want", cached("11", "edited"))).toBe(true);
  });

  it("forgets an object when it is deleted, so that it is created again", () => {
    const ledger = new ApplyLedger();
    ledger.applied(OWNER, OBJECT, "want", { metadata: { uid: "u1", resourceVersion: "10" } }, "stored");
    ledger.observed(OWNER, OBJECT, cached("10", "stored"), true);
    expect(ledger.size).toBe(0);
    expect(ledger.needsApply(OWNER, OBJECT, "want", undefined)).toBe(true);
  });

  it("forgets an object deleted before the cache showed our write", () => {
    const ledger = new ApplyLedger();
    ledger.applied(OWNER, OBJECT, "d1", { metadata: { uid: "u1", resourceVersion: "10" } }, "d1");
    ledger.observed(OWNER, OBJECT, cached("11", "d1"), true);
    expect(ledger.needsApply(OWNER, OBJECT, "d1", undefined)).toBe(true);
  });

  it("ignores events about an older incarnation of the object", () => {
    const ledger = new ApplyLedger();
    ledger.applied(OWNER, OBJECT, "d1", { metadata: { uid: "new", resourceVersion: "20" } }, "d1");
    ledger.observed(OWNER, OBJECT, cached("12", "d0", "old"), true);
    expect(ledger.needsApply(OWNER, OBJECT, "d1", undefined)).toBe(false);
  });

  it("forgets everything of an AgentType that is gone", () => {
    const ledger = new ApplyLedger();
    for (const object of ["deployments/a", "configmaps/a-sidecar", "services/a-metrics"]) {
      ledger.applied(OWNER, object, "want", { metadata: { uid: object, resourceVersion: "10" } }, "stored");
    }
    ledger.applied("ns/b", OBJECT, "want", { metadata: { uid: "u2", resourceVersion: "10" } }, "want");
    expect(ledger.size).toBe(4);
    ledger.forget(OWNER);
    expect(ledger.size).toBe(1);
  });
});
