// When a call that finds no open connection may try to open one: attempts after failures are
// spaced by jittered backoff, and a call whose deadline ends before the next allowed attempt
// fails at once with the last attempt's error instead of waiting in vain. Pure.
import { type BackoffPolicy, jitteredBackoff } from "../backoff.ts";

export type ReconnectStep = { action: "connect" } | { action: "wait"; ms: number } | { action: "fail" };

export function reconnectStep(
  now: number,
  nextAttemptAt: number,
  deadline: number,
  hasLastError: boolean,
): ReconnectStep {
  const wait = nextAttemptAt - now;
  if (wait <= 0) return { action: "connect" };
  if (hasLastError && now + wait >= deadline) return { action: "fail" };
  return { action: "wait", ms: wait };
}

/** When the next attempt may start after `failures` consecutive failed ones. */
export function nextAttemptAt(now: number, failures: number, policy: BackoffPolicy, random: number): number {
  return now + jitteredBackoff(failures, policy, random);
}
