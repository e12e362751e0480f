import { describe, expect, it } from "vitest";
import { deadline, formatMs, isTimeoutReason } from "./deadline.ts";

const aborted = (signal: AbortSignal) =>
  new Promise<unknown>((resolve) => signal.addEventListener("abort", () => resolve(signal.reason)));

describe("deadline", () => {
  it("aborts with a TimeoutError when the time is up, and says it expired", async () => {
    const started = performance.now();
    const limit = deadline(30);
    const reason = await aborted(limit.signal);
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
    expect(isTimeoutReason(reason)).toBe(true);
    expect((reason as Error).message).toBe("no answer within 30 ms");
    expect(limit.expired).toBe(true);
  });

  it("follows the caller: a cancellation is not a timeout", async () => {
    const caller = new AbortController();
    const limit = deadline(10_000, caller.signal);
    const cancel = new Error("stopping");
    caller.abort(cancel);
    expect(limit.signal.aborted).toBe(true);
    expect(limit.signal.reason).toBe(cancel);
    expect(limit.expired).toBe(false);
    limit.clear();
  });

  it("counts the caller's own timeout as one", async () => {
    const limit = deadline(10_000, AbortSignal.timeout(10));
    expect(isTimeoutReason(await aborted(limit.signal))).toBe(true);
    expect(limit.expired).toBe(true);
    limit.clear();
  });

  it("cleared, it never fires; the caller can still abort", async () => {
    const caller = new AbortController();
    const limit = deadline(20, caller.signal);
    limit.clear();
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(limit.signal.aborted).toBe(false);
    caller.abort();
    expect(limit.signal.aborted).toBe(true);
    expect(limit.expired).toBe(false);
  });

  it("is already expired when no time is left, and never fires early for the longest delays", () => {
    expect(deadline(0).signal.aborted).toBe(true);
    expect(deadline(-5).expired).toBe(true);
    // Beyond setTimeout's range Node would fire at once; such a deadline means "none".
    const limit = deadline(Number.POSITIVE_INFINITY);
    expect(limit.signal.aborted).toBe(false);
    limit.clear();
  });

  it("formats durations for error messages", () => {
    expect(formatMs(250)).toBe("250 ms");
    expect(formatMs(2000)).toBe("2 s");
    expect(formatMs(1500)).toBe("1.5 s");
  });
});
