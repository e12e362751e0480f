import { describe, expect, it } from "vitest";
import { Cooldown } from "./cooldown.ts";

describe("Cooldown", () => {
  it("sets a target aside after consecutive failures, for the policy's time, saying why", () => {
    const cooldown = new Cooldown({ failures: 2, ms: 30_000 });
    cooldown.failed(0, "refused");
    expect(cooldown.isCoolingDown(1)).toBe(false);
    cooldown.failed(1, "timed out");
    expect(cooldown.isCoolingDown(2)).toBe(true);
    expect(cooldown.reason).toBe("timed out");
    expect(cooldown.isCoolingDown(30_001)).toBe(false);
  });

  it("forgets failures and the reason after a success", () => {
    const cooldown = new Cooldown({ failures: 2, ms: 30_000 });
    cooldown.failed(0, "refused");
    cooldown.succeeded();
    cooldown.failed(1, "refused");
    expect(cooldown.isCoolingDown(2)).toBe(false);
    cooldown.succeeded();
    expect(cooldown.reason).toBeUndefined();
  });

  it("sets a tool aside at its first failure when the policy says one", () => {
    const cooldown = new Cooldown({ failures: 1, ms: 30_000 });
    cooldown.failed(10, "hung");
    expect(cooldown.isCoolingDown(11)).toBe(true);
  });
});
