import { describe, expect, it } from "vitest";
import { backoffMs, providerOrder } from "./router.ts";

const policy = { maxAttempts: 5, initialBackoffMs: 100, maxBackoffMs: 1000 };

describe("backoffMs", () => {
  it("doubles per retry, is capped, and jitters within the upper half", () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(n, policy, 1))).toEqual([100, 200, 400, 800, 1000]);
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(n, policy, 0))).toEqual([50, 100, 200, 400, 500]);
  });
});

describe("providerOrder", () => {
  it("skips cooled-down providers, but tries them all when every one is cooling", () => {
    expect(providerOrder(["a", "b", "c"], (p) => p === "a")).toEqual(["b", "c"]);
    expect(providerOrder(["a", "b"], () => true)).toEqual(["a", "b"]);
  });
});
