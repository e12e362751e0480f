// A work queue with controller-runtime's contract: a key waiting is never queued twice, a key
// being processed is never handed to a second worker (a change meanwhile re-queues it once
// the first worker is done), and retries back off per key under an overall rate limit.

import { TokenBucket } from "./token-bucket.ts";

export interface WorkQueueOptions {
  /** First retry delay of a failing key; doubles per failure. */
  baseDelayMs: number;
  /** Ceiling of a key's retry delay. */
  maxDelayMs: number;
  /** Overall retry budget: tokens per second and bucket size, shared by all keys. */
  retriesPerSecond: number;
  retryBurst: number;
  /** Called on every change of depth, add and retry; wired to metrics. */
  observer?: WorkQueueObserver;
  now?: () => number;
}

export interface WorkQueueObserver {
  depth(depth: number): void;
  added(): void;
  retried(): void;
  /** Seconds a key waited in the queue before a worker took it. */
  waited(seconds: number): void;
}

export const DEFAULT_WORKQUEUE_OPTIONS: WorkQueueOptions = {
  baseDelayMs: 5,
  maxDelayMs: 5 * 60_000,
  retriesPerSecond: 10,
  retryBurst: 100,
};

/** The delay of the n-th consecutive failure (n from 1): base * 2^(n-1), capped. */
export function backoffDelay(failures: number, baseDelayMs: number, maxDelayMs: number): number {
  return Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, failures - 1));
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly waiting = new Map<string, number>(); // key → when it was queued
  private readonly processing = new Set<string>();
  private readonly dirtyWhileProcessing = new Set<string>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  private readonly getters: ((key: string | undefined) => void)[] = [];
  private readonly options: WorkQueueOptions;
  private readonly now: () => number;
  private readonly retryBudget: TokenBucket;
  private shuttingDown = false;

  constructor(options: Partial<WorkQueueOptions> = {}) {
    this.options = { ...DEFAULT_WORKQUEUE_OPTIONS, ...options };
    this.now = options.now ?? Date.now;
    this.retryBudget = new TokenBucket(this.options.retriesPerSecond, this.options.retryBurst, this.now());
  }

  get length(): number {
    return this.queue.length;
  }

  /** Queues a key now, unless it is already waiting. */
  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      this.dirtyWhileProcessing.add(key);
      return;
    }
    if (this.waiting.has(key)) return;
    const delayed = this.delayed.get(key);
    if (delayed !== undefined) {
      clearTimeout(delayed.timer);
      this.delayed.delete(key);
    }
    this.options.observer?.added();
    const getter = this.getters.shift();
    if (getter !== undefined) {
      this.processing.add(key);
      this.options.observer?.waited(0);
      getter(key);
      return;
    }
    this.waiting.set(key, this.now());
    this.queue.push(key);
    this.options.observer?.depth(this.queue.length);
  }

  /** Queues a key after a delay; an earlier pending delay for it wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = this.now() + delayMs;
    const existing = this.delayed.get(key);
    if (existing !== undefined && existing.at <= at) return;
    if (existing !== undefined) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.delayed.set(key, { at, timer });
  }

  /** Re-queues a failed key after its backoff, or later if the overall retry budget is spent. */
  addRateLimited(key: string): number {
    const failures = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, failures);
    const delay = Math.max(
      backoffDelay(failures, this.options.baseDelayMs, this.options.maxDelayMs),
      this.retryBudget.take(this.now()),
    );
    this.options.observer?.retried();
    this.addAfter(key, delay);
    return delay;
  }

  /**
   * Re-queues a key whose failure retrying cannot fix soon, at the slow end of the backoff
   * (its ceiling): something outside the object may still change (RBAC, a webhook, the
   * operator). Clears its failure count, so a later transient failure backs off from the start.
   */
  addSlowly(key: string): number {
    this.failures.delete(key);
    this.options.observer?.retried();
    this.addAfter(key, this.options.maxDelayMs);
    return this.options.maxDelayMs;
  }

  /** Clears a key's failure count after it succeeded. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Waits for the next key; undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      const queuedAt = this.waiting.get(key) ?? this.now();
      this.waiting.delete(key);
      this.processing.add(key);
      this.options.observer?.depth(this.queue.length);
      this.options.observer?.waited((this.now() - queuedAt) / 1000);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** Marks a key processed; if it changed meanwhile it is queued again. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirtyWhileProcessing.delete(key)) this.add(key);
  }

  /** Stops handing out keys; waiting getters receive undefined. Pending keys are dropped. */
  shutdown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.queue.length = 0;
    this.waiting.clear();
    for (const getter of this.getters.splice(0)) getter(undefined);
  }
}
