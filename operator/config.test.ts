import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { helpText, loadConfig, wantsHelp } from "./config.ts";

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

  it("reads --metrics-from-pods as key=value labels and refuses anything else by name", () => {
    expect(loadConfig([], {}).metricsFromPods).toEqual({});
    expect(
      loadConfig(["--metrics-from-pods", "app.kubernetes.io/name=prometheus, team=ops"], {}).metricsFromPods,
    ).toEqual({ "app.kubernetes.io/name": "prometheus", team: "ops" });
    expect(() => loadConfig([], { METRICS_FROM_PODS: "prometheus" })).toThrow(
      /--metrics-from-pods \(METRICS_FROM_PODS\): .*expected key=value/,
    );
    expect(() => loadConfig(["--metrics-from-pods", "app=bad value"], {})).toThrow(/--metrics-from-pods/);
  });

  it("bounds every API request by --request-timeout-seconds, 30 s unless set", () => {
    expect(loadConfig([], {}).requestTimeoutSeconds).toBe(30);
    expect(loadConfig([], { REQUEST_TIMEOUT_SECONDS: "5" }).requestTimeoutSeconds).toBe(5);
    expect(() => loadConfig(["--request-timeout-seconds", "0"], {})).toThrow(
      /--request-timeout-seconds \(REQUEST_TIMEOUT_SECONDS\): .*>=1/,
    );
  });
});

describe("--help", () => {
  it("lists every flag with its environment variable and default, and exits 0", () => {
    const main = join(import.meta.dirname, "main.ts");
    const run = spawnSync(process.execPath, [main, "--help"], { encoding: "utf8", timeout: 30_000, env: {} });
    expect(run.status, run.stderr).toBe(0);
    const config = loadConfig([], {});
    for (const name of Object.keys(config)) {
      const flag = `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      const line = run.stdout.split("\n").find((l) => l.trimStart().startsWith(`${flag} `));
      expect(line, `${flag} in --help`).toBeDefined();
      // flag, environment variable, default, then a description
      expect(line?.trim().split(/\s{2,}/).length, line).toBe(4);
    }
    expect(run.stdout).toMatch(/--workers\s+WORKERS\s+4\s+\S/);
    expect(run.stdout).toMatch(/--namespaces\s+WATCH_NAMESPACES\s+""\s+.*every namespace/);
    // the same text as helpText(), but for the identity default (hostname-pid of each process)
    expect(helpText().split("\n").length).toBe(run.stdout.split("\n").length);
  });

  it("is asked for by --help or -h anywhere on the command line", () => {
    expect(wantsHelp(["--workers", "2", "-h"])).toBe(true);
    expect(wantsHelp(["--help"])).toBe(true);
    expect(wantsHelp(["--workers", "2"])).toBe(false);
  });
});
