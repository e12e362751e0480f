// The bounds of one driver call: the caller's AbortSignal and an absolute deadline. Every call
// that crosses to a host takes one; `within` turns a time budget into one, `bounded` runs work
// under it and turns a passed deadline into a retryable TimeoutError.
import { TimeoutError } from "./errors.ts";

export interface Call {
  /** Aborted when the caller gives up (shutdown, lost leadership, a newer reconcile). */
  signal: AbortSignal;
  /** Epoch milliseconds after which the call fails with a TimeoutError. */
  deadline: number;
}

/** A call that may take `ms` from now, cancelled also when `signal` aborts. */
export function within(ms: number, signal: AbortSignal = new AbortController().signal): Call {
  return { signal, deadline: Date.now() + ms };
}

/** Milliseconds left before the deadline (never negative). */
export function remainingMs(call: Call, now = Date.now()): number {
  return Math.max(0, call.deadline - now);
}

/** A part of a call: the same signal, a deadline no later than the parent's. */
export function subCall(call: Call, ms: number): Call {
  return { signal: call.signal, deadline: Math.min(call.deadline, Date.now() + ms) };
}

/**
 * Runs `work` with a signal that aborts on the caller's abort or at the deadline. A caller's
 * abort rejects with the signal's reason; the deadline rejects with a TimeoutError naming `what`.
 */
export async function bounded<T>(
  call: Call,
  what: string,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  call.signal.throwIfAborted();
  const budget = remainingMs(call);
  if (budget === 0) throw new TimeoutError(what, 0);
  const timer = new AbortController();
  const timeout = new TimeoutError(what, budget);
  const handle = setTimeout(() => timer.abort(timeout), budget);
  const signal = AbortSignal.any([call.signal, timer.signal]);
  try {
    return await new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      work(signal).then(
        (value) => {
          signal.removeEventListener("abort", onAbort);
          resolve(value);
        },
        (err: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(signal.aborted ? signal.reason : err);
        },
      );
    });
  } finally {
    clearTimeout(handle);
  }
}

/** Waits `ms`, or rejects when the signal aborts first. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(handle);
      reject(signal.reason);
    };
    const handle = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
