import { describe, expect, it } from "vitest";
import { type Emitted, EmittedEvents, eventKey } from "./events.ts";

const content = {
  involvedObject: {
    apiVersion: "agenttype.dev/v1alpha1",
    kind: "AgentType",
    name: "a",
    namespace: "ns",
    uid: "u1",
  },
  type: "Normal" as const,
  reason: "Created",
  message: "created Deployment a",
  source: { component: "agenttype-operator" },
};
const emitted = (name: string, lastMs: number): Emitted => ({
  name,
  namespace: "ns",
  firstTimestamp: "2026-01-01T00:00:00Z",
  count: 1,
  lastMs,
});

describe("eventKey", () => {
  it("is the same for the same object, type, reason, message and source", () => {
    const resourceVersionChanged = {
      ...content,
      involvedObject: { ...content.involvedObject, resourceVersion: "42" },
    };
    expect(eventKey(resourceVersionChanged)).toBe(eventKey(content));
  });

  it("differs when any of them differs", () => {
    const variants = [
      { ...content, involvedObject: { ...content.involvedObject, uid: "u2" } },
      { ...content, involvedObject: { ...content.involvedObject, name: "b" } },
      { ...content, involvedObject: { ...content.involvedObject, namespace: "other" } },
      { ...content, involvedObject: { ...content.involvedObject, kind: "AgentTool" } },
      { ...content, type: "Warning" as const },
      { ...content, reason: "Updated" },
      { ...content, message: "created Deployment b" },
      { ...content, source: { component: "someone-else" } },
    ];
    const keys = new Set([content, ...variants].map(eventKey));
    expect(keys.size).toBe(variants.length + 1);
  });
});

describe("EmittedEvents", () => {
  it("finds a repeat within the window, and none after it", () => {
    const cache = new EmittedEvents(10, 1000);
    cache.remember("k", emitted("e1", 5000));
    expect(cache.repeatOf("k", 6000)?.name).toBe("e1");
    expect(cache.repeatOf("other", 6000)).toBeUndefined();
    expect(cache.repeatOf("k", 6001)).toBeUndefined();
    // Expired entries go: a later repeat starts a new Event.
    expect(cache.size).toBe(0);
  });

  it("measures the window from the last emission, so a steady repeat stays one Event", () => {
    const cache = new EmittedEvents(10, 1000);
    cache.remember("k", emitted("e1", 0));
    for (let t = 900; t <= 9000; t += 900) {
      const earlier = cache.repeatOf("k", t);
      expect(earlier?.name).toBe("e1");
      if (earlier !== undefined) cache.remember("k", { ...earlier, count: earlier.count + 1, lastMs: t });
    }
    expect(cache.repeatOf("k", 9000)?.count).toBe(11);
  });

  it("keeps at most its capacity, dropping the least recently emitted", () => {
    const cache = new EmittedEvents(2, 60_000);
    cache.remember("a", emitted("ea", 0));
    cache.remember("b", emitted("eb", 1));
    cache.remember("a", emitted("ea", 2)); // a emitted again: b is now the oldest
    cache.remember("c", emitted("ec", 3));
    expect(cache.size).toBe(2);
    expect(cache.repeatOf("b", 4)).toBeUndefined();
    expect(cache.repeatOf("a", 4)?.name).toBe("ea");
    expect(cache.repeatOf("c", 4)?.name).toBe("ec");
  });
});
