import { describe, expect, it } from "vitest";
import { StringTable } from "./string-table.ts";

describe("StringTable", () => {
  it("answers an equal value with the copy it holds, one entry per distinct string", () => {
    const table = new StringTable(10);
    expect(table.intern("Ready")).toBe("Ready");
    expect(table.intern(["Re", "ady"].join(""))).toBe("Ready");
    expect(table.size).toBe(1);
  });

  it("starts afresh once full, so it never holds more than its capacity", () => {
    const table = new StringTable(3);
    for (const s of ["a", "b", "c", "d", "e"]) table.intern(s);
    expect(table.size).toBeLessThanOrEqual(3);
    expect(table.intern("e")).toBe("e");
  });

  it("leaves an object as it was, in value, and keeps unique and long values out of the table", () => {
    const table = new StringTable(100);
    const text = JSON.stringify({
      metadata: { name: "a", namespace: "ns", uid: "u-1", resourceVersion: "42", labels: { app: "x" } },
      status: {
        conditions: [{ type: "Ready", status: "True", lastTransitionTime: "2026-11-28T06:00:00Z" }],
      },
      spec: {
        command: ["python", "-m", "agent"],
        prompt: "p".repeat(300),
        replicas: 2,
        paused: false,
        nothing: null,
      },
    });
    const interned = table.internAll(JSON.parse(text));
    expect(interned).toEqual(JSON.parse(text));
    // The short values outside uid, resourceVersion and lastTransitionTime, and nothing else.
    expect(table.size).toBe(8);
    for (const shared of ["a", "ns", "x", "Ready", "True", "python", "-m", "agent"]) table.intern(shared);
    expect(table.size).toBe(8);
  });
});
