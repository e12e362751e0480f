import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { eventually } from "../../tests/fixtures/eventually.ts";
import { Controller, type Reconcile, TerminalError } from "./controller.ts";
import { createMetrics } from "./metrics.ts";
import { WorkQueue } from "./workqueue.ts";

function controllerWith(reconcile: Reconcile, workers = 2, queue = new WorkQueue()) {
  const metrics = createMetrics();
  const controller = new Controller({
    name: "test",
    queue,
    reconcile,
    workers,
    metrics,
    logger: pino({ level: "silent" }),
  });
  const count = async (result: string) =>
    (await metrics.reconcileTotal.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
  return { queue, controller, count };
}

/** Resolves when `signal` aborts, rejecting with its reason, as a cancellable API call does. */
const untilAborted = (signal: AbortSignal) =>
  new Promise<never>((_resolve, reject) => signal.addEventListener("abort", () => reject(signal.reason)));

describe("Controller", () => {
  it("hands each reconcile a live signal of its own", async () => {
    const signals: AbortSignal[] = [];
    const { queue, controller, count } = controllerWith(async (_key, _log, signal) => {
      signals.push(signal);
      return undefined;
    });
    controller.start();
    queue.add("a");
    queue.add("b");
    await eventually("two successes", async () => (await count("success")) === 2, 2_000, 5);
    expect(signals).toHaveLength(2);
    expect(signals[0]).not.toBe(signals[1]);
    expect(signals.every((s) => !s.aborted)).toBe(true);
    await controller.stop();
    // Every signal derives from the controller's: stop() reaches each one.
    expect(signals.every((s) => s.aborted)).toBe(true);
  });

  it("stop() aborts the reconciles in flight at once, waits for them, and does not retry them", async () => {
    const reasons: unknown[] = [];
    const started: string[] = [];
    const { queue, controller, count } = controllerWith(async (key, _log, signal) => {
      started.push(key);
      try {
        return await untilAborted(signal);
      } catch (error) {
        reasons.push(error);
        throw error;
      }
    });
    controller.start();
    queue.add("a");
    queue.add("b");
    await eventually("two reconciles started", async () => started.length === 2, 2_000, 5);
    const stopping = controller.stop("lost the leader lease");
    // Aborted before stop() first awaits: a caller about to exit may rely on it.
    await Promise.resolve();
    expect(reasons).toHaveLength(2);
    await stopping;
    expect((reasons[0] as Error).name).toBe("AbortError");
    expect((reasons[0] as Error).message).toBe("lost the leader lease");
    expect(queue.failuresOf("a")).toBe(0);
    expect(await count("error")).toBe(0);
    // The queue is shut down: nothing more is reconciled.
    queue.add("c");
    expect(started).toEqual(["a", "b"]);
  });

  it("retries a failed reconcile that was not aborted", async () => {
    let calls = 0;
    const { queue, controller, count } = controllerWith(async () => {
      calls++;
      if (calls === 1) throw new Error("no answer within 2 s");
      return undefined;
    }, 1);
    controller.start();
    queue.add("a");
    await eventually("the retry succeeded", async () => (await count("success")) === 1, 2_000, 5);
    expect(await count("error")).toBe(1);
    expect(calls).toBe(2);
    await controller.stop();
  });

  it("retries a terminal failure at the slow end of the backoff, not at once", async () => {
    const at: number[] = [];
    const queue = new WorkQueue({ baseDelayMs: 1, maxDelayMs: 200 });
    const { controller, count } = controllerWith(
      async () => {
        at.push(Date.now());
        throw new TerminalError("the API server rejected the Deployment");
      },
      1,
      queue,
    );
    controller.start();
    queue.add("a");
    await eventually("retried once", async () => at.length === 2, 2_000, 5);
    expect((at[1] ?? 0) - (at[0] ?? 0)).toBeGreaterThanOrEqual(190);
    expect(await count("error")).toBe(2);
    expect(queue.failuresOf("a")).toBe(0);
    await controller.stop();
  });
});
