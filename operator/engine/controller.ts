// Runs a reconcile function over a work queue with a fixed number of workers, the way
// controller-runtime does: a failed key is retried with backoff unless its error is terminal.
// Each reconcile gets an AbortSignal (controller-runtime's ctx); stop() aborts them all.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { OperatorMetrics } from "./metrics.ts";
import type { WorkQueue } from "./workqueue.ts";

/**
 * An error retrying soon cannot fix (invalid user input, an object the API server rejects):
 * the key is retried only at the slow end of the backoff, or when the object changes.
 */
export class TerminalError extends Error {
  override name = "TerminalError";
}

export interface ReconcileResult {
  /** Reconcile the key again after this long, even if nothing changes. */
  requeueAfterMs?: number;
}

/**
 * Reconciles one key. `signal` aborts when the controller stops (SIGTERM, lost leadership):
 * pass it to every call that leaves the process, and stop when it aborts.
 */
export type Reconcile = (
  key: string,
  log: Logger,
  signal: AbortSignal,
) => Promise<ReconcileResult | undefined>;

export interface ControllerOptions {
  name: string;
  queue: WorkQueue;
  reconcile: Reconcile;
  workers: number;
  metrics: OperatorMetrics;
  logger: Logger;
}

export class Controller {
  private readonly options: ControllerOptions;
  private workers: Promise<void>[] = [];
  private readonly stopping = new AbortController();

  constructor(options: ControllerOptions) {
    this.options = options;
  }

  start(): void {
    for (let i = 0; i < this.options.workers; i++) this.workers.push(this.work());
  }

  /**
   * Stops handing out keys and aborts the reconciles in flight, at once (before the first
   * await, so a caller may rely on it without waiting); resolves when they have returned.
   */
  async stop(reason = "the controller is stopping"): Promise<void> {
    this.options.queue.shutdown();
    this.stopping.abort(new DOMException(reason, "AbortError"));
    await Promise.all(this.workers);
  }

  private async work(): Promise<void> {
    const { queue } = this.options;
    for (let key = await queue.get(); key !== undefined; key = await queue.get()) {
      await this.process(key);
      queue.done(key);
    }
  }

  private async process(key: string): Promise<void> {
    const { name, queue, reconcile, metrics, logger } = this.options;
    const log = logger.child({ controller: name, key, reconcileId: randomUUID() });
    // Its own signal, so that listeners a reconcile adds go with it rather than pile up on
    // the controller's.
    const signal = AbortSignal.any([this.stopping.signal]);
    const stopTimer = metrics.reconcileTime.startTimer({ controller: name });
    try {
      const result = await reconcile(key, log, signal);
      queue.forget(key);
      if (result?.requeueAfterMs !== undefined) {
        queue.addAfter(key, result.requeueAfterMs);
        metrics.reconcileTotal.inc({ controller: name, result: "requeue_after" });
      } else {
        metrics.reconcileTotal.inc({ controller: name, result: "success" });
      }
    } catch (error) {
      if (signal.aborted) {
        // Not a failure of the object: the queue is shut down and the key is not retried here.
        log.info({ reason: (signal.reason as Error).message }, "reconcile aborted");
        return;
      }
      metrics.reconcileTotal.inc({ controller: name, result: "error" });
      metrics.reconcileErrors.inc({ controller: name });
      if (error instanceof TerminalError) {
        const delay = queue.addSlowly(key);
        log.error(
          { err: error.message, retryInMs: delay },
          "reconcile failed; retrying slowly or when the object changes",
        );
      } else {
        const delay = queue.addRateLimited(key);
        log.warn({ err: (error as Error).message, retryInMs: delay }, "reconcile failed; retrying");
      }
    } finally {
      stopTimer();
    }
  }
}
