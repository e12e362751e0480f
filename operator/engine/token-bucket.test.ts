import { describe, expect, it } from "vitest";
import { TokenBucket } from "./token-bucket.ts";

describe("TokenBucket", () => {
  it("gives the burst at once, then refills at its rate, never above the burst", () => {
    const bucket = new TokenBucket(2, 3, 0);
    expect([0, 0, 0, 0].map(() => bucket.tryTake(0))).toEqual([true, true, true, false]);
    expect(bucket.tryTake(499)).toBe(false);
    expect(bucket.tryTake(500)).toBe(true);
    expect([1, 2, 3, 4].map(() => bucket.tryTake(60_000))).toEqual([true, true, true, false]);
  });

  it("refuses nonsense settings by name", () => {
    expect(() => new TokenBucket(0, 1, 0)).toThrow("invalid token bucket 0/s");
  });
});

describe("TokenBucket.take", () => {
  it("goes into debt when empty and says how long until the debt is paid", () => {
    const bucket = new TokenBucket(10, 2, 0);
    expect([bucket.take(0), bucket.take(0)]).toEqual([0, 0]);
    expect(bucket.take(0)).toBe(100);
    expect(bucket.take(0)).toBe(200);
    expect(bucket.take(1000)).toBe(0);
  });
});
