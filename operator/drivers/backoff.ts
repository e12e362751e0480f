// Jittered exponential backoff for reconnecting to hosts: the work queue's capped doubling,
// with equal jitter so that many connections lost at once do not retry in lockstep.
import { backoffDelay } from "../engine/workqueue.ts";

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

/** Delay before attempt `attempt` (1-based) after failures; `random` in [0, 1). */
export function jitteredBackoff(attempt: number, policy: BackoffPolicy, random: number): number {
  const ceiling = backoffDelay(attempt, policy.initialMs, policy.maxMs);
  return Math.round(ceiling / 2 + (ceiling / 2) * Math.min(Math.max(random, 0), 1));
}
