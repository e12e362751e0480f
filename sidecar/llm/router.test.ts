import { describe, expect, it } from "vitest";
import { backoffMs, ProviderHealth, providerOrder } from "./router.ts";

const policy = { maxAttempts: 5, initialBackoffMs: 100, maxBackoffMs: 1000 };

describe("backoffMs", () => {
  it("doubles per retry, is capped, and jitters within the upper half", () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(n, policy, 1))).toEqual([100, 200, 400, 800, 1000]);
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(n, policy, 0))).toEqual([50, 100, 200, 400, 500]);
  });
});

describe("ProviderHealth and providerOrder", () => {
  it("cools a provider down after consecutive failed requests, for the configured time", () => {
    const health = new ProviderHealth();
    const cooldown = { failures: 2, seconds: 30 };
    health.recordFailure(0, cooldown);
    expect(health.isCooledDown(1)).toBe(false);
    health.recordFailure(1, cooldown);
    expect(health.isCooledDown(2)).toBe(true);
    expect(health.isCooledDown(30_001)).toBe(false);
  });

  it("forgets failures after a success", () => {
    const health = new ProviderHealth();
    const cooldown = { failures: 2, seconds: 30 };
    health.recordFailure(0, cooldown);
    health.recordSuccess();
    health.recordFailure(1, cooldown);
    expect(health.isCooledDown(2)).toBe(false);
  });

  it("skips cooled-down providers, but tries them all when every one is cooling", () => {
    expect(providerOrder(["a", "b", "c"], (p) => p === "a")).toEqual(["b", "c"]);
    expect(providerOrder(["a", "b"], () => true)).toEqual(["a", "b"]);
  });
});
