import { describe, expect, it } from "vitest";
import { ProviderError } from "./errors.ts";
import { healthAfter, ProviderStates } from "./provider-state.ts";

const identity = (name: string) => ({ name, type: "ollama", where: `http://${name}:11434`, model: "m" });
const t0 = Date.parse("2026-01-01T00:00:00Z");

describe("healthAfter", () => {
  it("names how a provider fails, and leaves out failures that say nothing about it", () => {
    expect(healthAfter("connection")).toBe("unreachable");
    expect(healthAfter("timeout")).toBe("timeout");
    expect(healthAfter("auth")).toBe("unauthorized");
    expect(healthAfter("not_found")).toBe("model-missing");
    expect(healthAfter("unavailable")).toBe("unavailable");
    expect(healthAfter("throttled")).toBe("throttled");
    expect(healthAfter("invalid_request")).toBeUndefined();
    expect(healthAfter("unsupported")).toBeUndefined();
    expect(healthAfter("cancelled")).toBeUndefined();
  });
});

describe("ProviderStates", () => {
  it("starts unknown, which is not failing", () => {
    const states = new ProviderStates([identity("a")]);
    expect(states.allFailing).toBe(false);
    expect(states.reports()).toEqual([{ ...identity("a"), state: "unknown", consecutiveFailures: 0 }]);
  });

  it("is all failing only when every provider fails; a throttling provider still answers", () => {
    const states = new ProviderStates([identity("a"), identity("b")]);
    states.failed(new ProviderError("a", "connection", "connect ECONNREFUSED"), t0);
    expect(states.allFailing).toBe(false);
    states.failed(new ProviderError("b", "throttled", "slow down"), t0);
    expect(states.allFailing).toBe(false);
    states.failed(new ProviderError("b", "auth", "401 unauthorized"), t0 + 1000);
    expect(states.allFailing).toBe(true);
    states.succeeded("a", t0 + 2000);
    expect(states.allFailing).toBe(false);
  });

  it("keeps the last error, counts failures since the last answer, and moves `since` only on a change", () => {
    const states = new ProviderStates([identity("a")]);
    states.failed(new ProviderError("a", "timeout", "no answer within 1s"), t0);
    states.failed(new ProviderError("a", "timeout", "no answer within 1s again"), t0 + 5000);
    let [a] = states.reports();
    expect(a).toMatchObject({
      state: "timeout",
      since: "2026-01-01T00:00:00.000Z",
      consecutiveFailures: 2,
      lastError: {
        errorClass: "timeout",
        message: "no answer within 1s again",
        at: "2026-01-01T00:00:05.000Z",
      },
    });
    states.succeeded("a", t0 + 9000);
    [a] = states.reports();
    expect(a).toMatchObject({ state: "ok", since: "2026-01-01T00:00:09.000Z", consecutiveFailures: 0 });
    expect(a?.lastError?.errorClass).toBe("timeout");
  });

  it("ignores a rejected request, and clips a long upstream text", () => {
    const states = new ProviderStates([identity("a")]);
    states.failed(new ProviderError("a", "invalid_request", "bad option"), t0);
    expect(states.reports()[0]?.state).toBe("unknown");
    states.failed(new ProviderError("a", "unavailable", `<html>${"x".repeat(5000)}</html>`), t0);
    expect(states.reports()[0]?.lastError?.message.length).toBeLessThanOrEqual(501);
  });

  it("hands out copies: a reader cannot change the states", () => {
    const states = new ProviderStates([identity("a")]);
    states.failed(new ProviderError("a", "auth", "denied"), t0);
    const [copy] = states.reports();
    if (copy?.lastError !== undefined) copy.lastError.message = "changed";
    expect(states.reports()[0]?.lastError?.message).toBe("denied");
  });
});
