import { describe, expect, it } from "vitest";
import { backoffDelay, WorkQueue } from "./workqueue.ts";

describe("WorkQueue", () => {
  it("queues a waiting key once however often it is added", async () => {
    const queue = new WorkQueue();
    queue.add("a");
    queue.add("b");
    queue.add("a");
    expect(queue.length).toBe(2);
    expect(await queue.get()).toBe("a");
    expect(await queue.get()).toBe("b");
  });

  it("never hands a key being processed to a second worker, and re-queues it once after", async () => {
    const queue = new WorkQueue();
    queue.add("a");
    const first = await queue.get();
    queue.add("a");
    queue.add("a");
    expect(queue.length).toBe(0);
    let second: string | undefined;
    void queue.get().then((key) => (second = key));
    await Promise.resolve();
    expect(second).toBeUndefined();
    queue.done(first as string);
    await Promise.resolve();
    expect(second).toBe("a");
    queue.done("a");
    expect(queue.length).toBe(0);
  });

  it("hands a key straight to a worker already waiting", async () => {
    const queue = new WorkQueue();
    const next = queue.get();
    queue.add("x");
    expect(await next).toBe("x");
  });

  it("backs a failing key off exponentially up to the ceiling, and forgets on success", () => {
    expect([1, 2, 3, 4].map((n) => backoffDelay(n, 5, 1000))).toEqual([5, 10, 20, 40]);
    expect(backoffDelay(30, 5, 300_000)).toBe(300_000);
    const queue = new WorkQueue({ baseDelayMs: 5, maxDelayMs: 1000 });
    expect([1, 2, 3].map(() => queue.addRateLimited("k"))).toEqual([5, 10, 20]);
    queue.forget("k");
    expect(queue.failuresOf("k")).toBe(0);
    expect(queue.addRateLimited("k")).toBe(5);
    queue.shutdown();
  });

  it("delays retries once the overall retry budget is spent", () => {
    let now = 0;
    const queue = new WorkQueue({ baseDelayMs: 1, retriesPerSecond: 10, retryBurst: 2, now: () => now });
    expect(queue.addRateLimited("a")).toBe(1);
    expect(queue.addRateLimited("b")).toBe(1);
    expect(queue.addRateLimited("c")).toBe(100);
    now += 1000;
    expect(queue.addRateLimited("d")).toBe(1);
    queue.shutdown();
  });

  it("runs a delayed key after its delay, keeping the earlier of two delays", async () => {
    const queue = new WorkQueue();
    queue.addAfter("a", 200);
    queue.addAfter("a", 20);
    const started = Date.now();
    expect(await queue.get()).toBe("a");
    expect(Date.now() - started).toBeLessThan(150);
  });

  it("releases waiting workers on shutdown", async () => {
    const queue = new WorkQueue();
    const waiting = queue.get();
    queue.shutdown();
    expect(await waiting).toBeUndefined();
    queue.add("late");
    expect(queue.length).toBe(0);
  });

  it("reports depth, adds, retries and wait time", async () => {
    const seen = { depth: [] as number[], added: 0, retried: 0, waited: [] as number[] };
    const queue = new WorkQueue({
      observer: {
        depth: (d) => seen.depth.push(d),
        added: () => seen.added++,
        retried: () => seen.retried++,
        waited: (s) => seen.waited.push(s),
      },
    });
    queue.add("a");
    queue.add("b");
    await queue.get();
    queue.addRateLimited("a");
    expect(seen).toMatchObject({ depth: [1, 2, 1], added: 2, retried: 1 });
    expect(seen.waited).toHaveLength(1);
    queue.shutdown();
  });
});
