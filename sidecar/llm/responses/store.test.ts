import { describe, expect, it } from "vitest";
import type { ChatMessage } from "../chat.ts";
import { ResponseStore } from "./store.ts";

const said = (text: string): ChatMessage[] => [{ role: "user", content: text }];
const bytesOf = (messages: ChatMessage[]) => Buffer.byteLength(JSON.stringify(messages));

describe("ResponseStore", () => {
  it("forgets the least recently used response past its entry bound", () => {
    const store = new ResponseStore({ maxEntries: 2, maxBytes: 1_000_000 });
    store.put("a", said("a"));
    store.put("b", said("b"));
    expect(store.get("a")).toEqual(said("a"));
    store.put("c", said("c"));
    expect(store.get("b")).toBeUndefined();
    expect(store.get("a")).toEqual(said("a"));
    expect(store.get("c")).toEqual(said("c"));
    expect(store.size).toBe(2);
  });

  it("forgets the oldest past its byte bound, and keeps the count of bytes exact", () => {
    const one = bytesOf(said("x".repeat(100)));
    const store = new ResponseStore({ maxEntries: 100, maxBytes: one * 2 });
    store.put("a", said("x".repeat(100)));
    store.put("b", said("y".repeat(100)));
    expect(store.bytes).toBe(one * 2);
    store.put("c", said("z".repeat(100)));
    expect(store.get("a")).toBeUndefined();
    expect(store.bytes).toBe(one * 2);
    store.put("b", said("short"));
    expect(store.bytes).toBe(one + bytesOf(said("short")));
    expect(store.delete("b")).toBe(true);
    expect(store.bytes).toBe(one);
  });

  it("gives each continuation its own copy, so extending one leaves the stored one as it was", () => {
    const store = new ResponseStore({ maxEntries: 10, maxBytes: 10_000 });
    store.put("a", said("a"));
    store.get("a")?.push({ role: "user", content: "more" });
    expect(store.get("a")).toEqual(said("a"));
  });

  it("refuses a conversation larger than the whole store, keeping the others", () => {
    const store = new ResponseStore({ maxEntries: 10, maxBytes: 200 });
    expect(store.put("small", said("s"))).toBe(true);
    expect(store.put("huge", said("h".repeat(500)))).toBe(false);
    expect(store.get("huge")).toBeUndefined();
    expect(store.get("small")).toEqual(said("s"));
  });
});
