import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.ts";

describe("loadConfig", () => {
  it("has defaults a cluster install can run with", () => {
    const config = loadConfig([], {});
    expect(config).toMatchObject({
      namespaces: [],
      workers: 4,
      leaderElection: true,
      port: 8080,
      logLevel: "info",
    });
  });

  it("takes flags over environment variables", () => {
    const config = loadConfig(["--workers", "8", "--namespaces", "a, b"], {
      WORKERS: "2",
      WATCH_NAMESPACES: "c",
    });
    expect(config.workers).toBe(8);
    expect(config.namespaces).toEqual(["a", "b"]);
    expect(loadConfig([], { WORKERS: "2" }).workers).toBe(2);
  });

  it("names the flag and its variable when a value is bad", () => {
    expect(() => loadConfig(["--workers", "0"], {})).toThrow(/--workers \(WORKERS\): .*>=1/);
    expect(() => loadConfig([], { WATCH_NAMESPACES: "Team_A" })).toThrow(/--namespaces \(WATCH_NAMESPACES\)/);
    expect(() => loadConfig(["--no-such-flag", "1"], {})).toThrow(/no-such-flag/);
  });
});
