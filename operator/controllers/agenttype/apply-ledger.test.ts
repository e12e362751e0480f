import { describe, expect, it } from "vitest";
import { ApplyLedger } from "./apply-ledger.ts";

const OWNER = "ns/a";
const OBJECT = "deployments/a";
const cached = (resourceVersion: string, appliedDigest: string | undefined, uid = "u1") => ({
  metadata: { uid, resourceVersion },
  ...(appliedDigest === undefined ? {} : { appliedDigest }),
});
const answer = (resourceVersion: string, uid = "u1") => ({ metadata: { name: "a", uid, resourceVersion } });
const BUILT = { spec: { replicas: 1 } };

describe("ApplyLedger", () => {
  it("needs no entry for an object whose cached digest is what we want, after a restart too", () => {
    const ledger = new ApplyLedger();
    expect(ledger.needsApply(OWNER, OBJECT, "d1", cached("5", "d1"))).toBe(false);
    expect(ledger.needsApply(OWNER, OBJECT, "d2", cached("5", "d1"))).toBe(true);
    expect(ledger.needsApply(OWNER, OBJECT, "d1", undefined)).toBe(true);
  });

  it("skips an apply while the cache has not shown our last write of the same thing", () => {
    const ledger = new ApplyLedger();
    ledger.applied(OWNER, OBJECT, "d2", BUILT, answer("10"));
    // The cache still has the object as it was before our write, or not at all.
    expect(ledger.needsApply(OWNER, OBJECT, "d2", cached("9", "d1"))).toBe(false);
    expect(ledger.needsApply(OWNER, OBJECT, "d2", undefined)).toBe(false);
    // Wanting something else again is applied at once.
    expect(ledger.needsApply(OWNER, OBJECT, "d3", cached("9", "d1"))).toBe(true);
    // The cache shows our write, which is ours; the entry is of no more use and goes.
    expect(ledger.observed(OWNER, OBJECT, cached("10", "d2"), false)).toBe(true);
    expect(ledger.size).toBe(0);
    expect(ledger.needsApply(OWNER, OBJECT, "d2", cached("10", "d2"))).toBe(false);
  });

  it("hands out the answer to our write until the informer shows it, and that event as ours once", () => {
    const ledger = new ApplyLedger();
    const written = answer("10");
    ledger.applied(OWNER, OBJECT, "d2", BUILT, written);
    expect(ledger.unseenAnswer(OWNER, OBJECT)).toBe(written);
    // Only the very version of the answer is our write.
    expect(ledger.unseenWrite(OWNER, OBJECT, cached("9", "d1"))).toBeUndefined();
    expect(ledger.unseenWrite(OWNER, OBJECT, cached("10", "d2", "u2"))).toBeUndefined();
    expect(ledger.unseenWrite(OWNER, OBJECT, cached("10", "d2"))?.built).toBe(BUILT);
    // An older version (the state before our write) is not ours.
    expect(ledger.observed(OWNER, OBJECT, cached("9", "d1"), false)).toBe(false);
    expect(ledger.unseenAnswer(OWNER, OBJECT)).toBe(written);
    expect(ledger.observed(OWNER, OBJECT, cached("10", "d2"), false)).toBe(true);
    expect(ledger.unseenAnswer(OWNER, OBJECT)).toBeUndefined();
    // Shown again (a relist): not news to anyone, but not our fresh write either.
    expect(ledger.observed(OWNER, OBJECT, cached("10", "d2"), false)).toBe(false);
  });

  it("remembers an object the server stores differently, and re-applies it once someone changes it", () => {
    const ledger = new ApplyLedger();
    ledger.applied(OWNER, OBJECT, "want", BUILT, answer("10"));
    expect(ledger.unseenWrite(OWNER, OBJECT, cached("10", "stored"))?.desired).toBe("want");
    expect(ledger.observed(OWNER, OBJECT, cached("10", "stored"), false)).toBe(true);
    expect(ledger.size).toBe(1);
    expect(ledger.needsApply(OWNER, OBJECT, "want", cached("10", "stored"))).toBe(false);
    // Someone else's change of fields we do not own (a workload's status): still as we left it.
    expect(ledger.observed(OWNER, OBJECT, cached("11", "stored"), false)).toBe(false);
    expect(ledger.needsApply(OWNER, OBJECT, "want", cached("11", "stored"))).toBe(false);
    ledger.observed(OWNER, OBJECT, cached("12", "edited"), false);
    expect(ledger.needsApply(OWNER, OBJECT, "want", cached("12", "edited"))).toBe(true);
  });

  it("applies once more when the cache skipped the version of our answer and holds another digest", () => {
    const ledger = new ApplyLedger();
    ledger.applied(OWNER, OBJECT, "want", BUILT, answer("10"));
    // A relist showed a later version only: what the server stored of our write is unknown.
    expect(ledger.observed(OWNER, OBJECT, cached("12", "stored"), false)).toBe(false);
    expect(ledger.needsApply(OWNER, OBJECT, "want", cached("12", "stored"))).toBe(true);
  });

  it("forgets an object when it is deleted, so that it is created again", () => {
    const ledger = new ApplyLedger();
    ledger.applied(OWNER, OBJECT, "want", BUILT, answer("10"));
    ledger.observed(OWNER, OBJECT, cached("10", "stored"), false);
    expect(ledger.observed(OWNER, OBJECT, cached("10", "stored"), true)).toBe(false);
    expect(ledger.size).toBe(0);
    expect(ledger.needsApply(OWNER, OBJECT, "want", undefined)).toBe(true);
  });

  it("forgets an object deleted before the cache showed our write", () => {
    const ledger = new ApplyLedger();
    ledger.applied(OWNER, OBJECT, "d1", BUILT, answer("10"));
    expect(ledger.observed(OWNER, OBJECT, cached("11", "d1"), true)).toBe(false);
    expect(ledger.needsApply(OWNER, OBJECT, "d1", undefined)).toBe(true);
    expect(ledger.unseenAnswer(OWNER, OBJECT)).toBeUndefined();
  });

  it("ignores events about an older incarnation of the object", () => {
    const ledger = new ApplyLedger();
    ledger.applied(OWNER, OBJECT, "d1", BUILT, answer("20", "new"));
    expect(ledger.observed(OWNER, OBJECT, cached("12", "d0", "old"), true)).toBe(false);
    expect(ledger.needsApply(OWNER, OBJECT, "d1", undefined)).toBe(false);
  });

  it("forgets everything of an AgentType that is gone", () => {
    const ledger = new ApplyLedger();
    for (const object of ["deployments/a", "configmaps/a-sidecar", "services/a-metrics"]) {
      ledger.applied(OWNER, object, "want", BUILT, answer("10", object));
    }
    ledger.applied("ns/b", OBJECT, "want", BUILT, answer("10", "u2"));
    expect(ledger.size).toBe(4);
    ledger.forget(OWNER);
    expect(ledger.size).toBe(1);
  });

  describe("events that come while an apply is in flight", () => {
    const track = () => {
      const woken: string[] = [];
      return { ledger: new ApplyLedger((owner) => woken.push(owner)), woken };
    };

    it("holds back our own write shown before its answer, and wakes no one for it", () => {
      const { ledger, woken } = track();
      ledger.applying(OWNER, OBJECT);
      expect(ledger.observed(OWNER, OBJECT, cached("10", "d2"), false)).toBe(true);
      expect(ledger.applied(OWNER, OBJECT, "d2", BUILT, answer("10")).storedOtherwise).toBeUndefined();
      expect(woken).toEqual([]);
      expect(ledger.size).toBe(0);
      expect(ledger.needsApply(OWNER, OBJECT, "d2", cached("10", "d2"))).toBe(false);
    });

    it("says what the server stored of our write when it differs, and keeps the entry", () => {
      const { ledger, woken } = track();
      ledger.applying(OWNER, OBJECT);
      ledger.observed(OWNER, OBJECT, cached("10", "stored"), false);
      expect(ledger.applied(OWNER, OBJECT, "want", BUILT, answer("10")).storedOtherwise).toBe("stored");
      expect(woken).toEqual([]);
      expect(ledger.needsApply(OWNER, OBJECT, "want", cached("10", "stored"))).toBe(false);
      expect(ledger.unseenAnswer(OWNER, OBJECT)).toBeUndefined();
    });

    it("wakes the owner when the object changed after our write, before the answer came", () => {
      const { ledger, woken } = track();
      ledger.applying(OWNER, OBJECT);
      ledger.observed(OWNER, OBJECT, cached("10", "d2"), false);
      // The workload controller's status update, right after our write.
      ledger.observed(OWNER, OBJECT, cached("11", "d2"), false);
      ledger.applied(OWNER, OBJECT, "d2", BUILT, answer("10"));
      expect(woken).toEqual([OWNER]);
      expect(ledger.needsApply(OWNER, OBJECT, "d2", cached("11", "d2"))).toBe(false);
    });

    it("judges an older state as older: our write's own event, after the answer, is still ours", () => {
      const { ledger, woken } = track();
      ledger.applying(OWNER, OBJECT);
      ledger.observed(OWNER, OBJECT, cached("9", "d1"), false);
      ledger.applied(OWNER, OBJECT, "d2", BUILT, answer("10"));
      expect(woken).toEqual([]);
      expect(ledger.unseenAnswer(OWNER, OBJECT)?.metadata.resourceVersion).toBe("10");
      expect(ledger.observed(OWNER, OBJECT, cached("10", "d2"), false)).toBe(true);
    });

    it("wakes the owner when the object was deleted, or is another incarnation", () => {
      const deleted = track();
      deleted.ledger.applying(OWNER, OBJECT);
      deleted.ledger.observed(OWNER, OBJECT, cached("10", "d2"), false);
      deleted.ledger.observed(OWNER, OBJECT, cached("10", "d2"), true);
      deleted.ledger.applied(OWNER, OBJECT, "d2", BUILT, answer("10"));
      expect(deleted.woken).toEqual([OWNER]);
      const other = track();
      other.ledger.applying(OWNER, OBJECT);
      other.ledger.observed(OWNER, OBJECT, cached("12", "d2", "u2"), false);
      other.ledger.applied(OWNER, OBJECT, "d2", BUILT, answer("10"));
      expect(other.woken).toEqual([OWNER]);
    });

    it("holds nothing back once an apply failed: its events wake their owner again", () => {
      const { ledger } = track();
      ledger.applying(OWNER, OBJECT);
      ledger.applyFailed(OWNER, OBJECT);
      expect(ledger.observed(OWNER, OBJECT, cached("10", "d2"), false)).toBe(false);
    });
  });
});
