import { describe, expect, it } from "vitest";
import { deadline, untilAborted } from "./deadline.ts";

class Expired extends Error {}

describe("deadline", () => {
  it("aborts with the expiry error when the time is up", async () => {
    const bound = deadline(20, () => new Expired("no answer within 0.02s"));
    await new Promise((resolve) => bound.signal.addEventListener("abort", resolve));
    expect(bound.signal.reason).toBeInstanceOf(Expired);
  });

  it("aborts with the caller's reason when the caller gives up first", () => {
    const caller = new AbortController();
    const bound = deadline(60_000, () => new Expired("late"), caller.signal);
    caller.abort(new Error("the agent closed the connection"));
    expect(bound.signal.reason).toEqual(new Error("the agent closed the connection"));
    bound.finish();
  });

  it("starts aborted when the caller already gave up", () => {
    const caller = new AbortController();
    caller.abort(new Error("gone"));
    const bound = deadline(60_000, () => new Expired("late"), caller.signal);
    expect(bound.signal.aborted).toBe(true);
    bound.finish();
  });

  it("never fires once finished, and aborts remaining work only when asked", async () => {
    const kept = deadline(10, () => new Expired("late"));
    kept.finish();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(kept.signal.aborted).toBe(false);
    const ended = deadline(60_000, () => new Expired("late"));
    ended.finish(true);
    expect(ended.signal.aborted).toBe(true);
    expect(ended.signal.reason).not.toBeInstanceOf(Expired);
  });
});

describe("untilAborted", () => {
  it("settles as the promise does, or rejects with the signal's reason", async () => {
    const open = new AbortController();
    await expect(untilAborted(Promise.resolve(7), open.signal)).resolves.toBe(7);
    const bound = deadline(10, () => new Expired("late"));
    await expect(untilAborted(new Promise(() => undefined), bound.signal)).rejects.toBeInstanceOf(Expired);
  });
});
