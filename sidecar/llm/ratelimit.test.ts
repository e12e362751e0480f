import { describe, expect, it } from "vitest";
import { RateLimiter, TokenBucket } from "./ratelimit.ts";

describe("TokenBucket", () => {
  it("refills continuously at its per-minute rate up to its capacity", () => {
    const bucket = new TokenBucket(60, 0);
    bucket.take(60, 0);
    expect(bucket.waitFor(1, 0)).toBe(1000);
    expect(bucket.waitFor(1, 1000)).toBe(0);
    expect(bucket.waitFor(61, 3_600_000)).toBe(0);
  });

  it("makes a request larger than the bucket wait for a full bucket, not forever", () => {
    const bucket = new TokenBucket(100, 0);
    bucket.take(50, 0);
    expect(bucket.waitFor(500, 0)).toBe(30_000);
  });
});

describe("RateLimiter", () => {
  it("takes from both budgets or from neither", () => {
    const limiter = new RateLimiter({ requestsPerMinute: 10, tokensPerMinute: 100 }, 0);
    expect(limiter.tryAcquire(80, 0)).toBe(0);
    // Too many tokens: refused, and the request budget is not spent by the refusal.
    expect(limiter.tryAcquire(80, 0)).toBeGreaterThan(0);
    for (let i = 0; i < 9; i++) expect(limiter.tryAcquire(1, 0)).toBe(0);
    expect(limiter.tryAcquire(1, 0)).toBe(6000);
  });

  it("gives back what the estimate over-counted once the real usage is known", () => {
    const limiter = new RateLimiter({ tokensPerMinute: 1000 }, 0);
    expect(limiter.tryAcquire(900, 0)).toBe(0);
    expect(limiter.tryAcquire(900, 0)).toBeGreaterThan(0);
    limiter.correct(900, 20, 0);
    expect(limiter.tryAcquire(900, 0)).toBe(0);
  });

  it("charges what the estimate under-counted", () => {
    const limiter = new RateLimiter({ tokensPerMinute: 1000 }, 0);
    limiter.tryAcquire(10, 0);
    limiter.correct(10, 1000, 0);
    expect(limiter.tryAcquire(10, 0)).toBe(600);
  });
});
