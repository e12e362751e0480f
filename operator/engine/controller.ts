// Runs a reconcile function over a work queue with a fixed number of workers, the way
// controller-runtime does: a failed key is retried with backoff unless its error is terminal,
// and stop() lets in-flight reconciles finish.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { OperatorMetrics } from "./metrics.ts";
import type { WorkQueue } from "./workqueue.ts";

/** An error retrying cannot fix (for example invalid user input); the key is not re-queued. */
export class TerminalError extends Error {
  override name = "TerminalError";
}

export interface ReconcileResult {
  /** Reconcile the key again after this long, even if nothing changes. */
  requeueAfterMs?: number;
}

export type Reconcile = (key: string, log: Logger) => Promise<ReconcileResult | undefined>;

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

  constructor(options: ControllerOptions) {
    this.options = options;
  }

  start(): void {
    for (let i = 0; i < this.options.workers; i++) this.workers.push(this.work());
  }

  /** Stops handing out keys and waits for the reconciles in flight. */
  async stop(): Promise<void> {
    this.options.queue.shutdown();
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
    const stopTimer = metrics.reconcileTime.startTimer({ controller: name });
    try {
      const result = await reconcile(key, log);
      queue.forget(key);
      if (result?.requeueAfterMs !== undefined) {
        queue.addAfter(key, result.requeueAfterMs);
        metrics.reconcileTotal.inc({ controller: name, result: "requeue_after" });
      } else {
        metrics.reconcileTotal.inc({ controller: name, result: "success" });
      }
    } catch (error) {
      metrics.reconcileTotal.inc({ controller: name, result: "error" });
      metrics.reconcileErrors.inc({ controller: name });
      if (error instanceof TerminalError) {
        queue.forget(key);
        log.error({ err: error.message }, "reconcile failed; not retrying until the object changes");
      } else {
        const delay = queue.addRateLimited(key);
        log.warn({ err: (error as Error).message, retryInMs: delay }, "reconcile failed; retrying");
      }
    } finally {
      stopTimer();
    }
  }
}
