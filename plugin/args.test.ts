import { describe, expect, it } from "vitest";
import { parseArgs, parseDurationMs, UsageError } from "./args.ts";

describe("parseArgs", () => {
  it("takes kubectl's flags before or after the command, with = or a space", () => {
    const inv = parseArgs([
      "-n",
      "team-a",
      "logs",
      "coder",
      "--replica=2",
      "-c",
      "sidecar",
      "-f",
      "--since",
      "5m",
      "--tail=20",
      "--context=kind",
    ]);
    expect(inv).toMatchObject({
      command: "logs",
      name: "coder",
      namespace: "team-a",
      context: "kind",
      replica: 2,
      container: "sidecar",
      follow: true,
      sinceSeconds: 300,
      tail: 20,
    });
  });

  it("keeps everything after -- as exec's command, flags included", () => {
    const inv = parseArgs(["exec", "coder", "-it", "--", "sh", "-c", "echo hi --tail"]);
    expect(inv.execCommand).toEqual(["sh", "-c", "echo hi --tail"]);
    expect([inv.stdin, inv.tty]).toEqual([true, true]);
  });

  it("defaults to replica 0's agent container, 30 s per request, and help without a command", () => {
    expect(parseArgs([])).toMatchObject({ command: "help" });
    const inv = parseArgs(["attach", "coder"]);
    expect([inv.replica, inv.container, inv.requestTimeoutMs]).toEqual([undefined, "agent", 30_000]);
  });

  it.each([
    [["logs"], "logs needs the AgentType's NAME"],
    [["exec", "coder"], "exec needs a command after --"],
    [["list", "-f"], "flag -f does not apply to list"],
    [["logs", "a", "--follow=yes"], "flag --follow takes no value"],
    [["list", "-o", "table"], "--output must be one of json, yaml, wide"],
    [["describe", "a", "-o", "wide"], "describe has no wide output"],
    [["logs", "a", "-c", "init"], "--container must be agent or sidecar"],
    [["logs", "a", "--replica", "-1"], "--replica must be a whole number"],
    [["logs", "a", "--since", "5 minutes"], "--since must be a duration"],
    [["logs", "a", "b"], 'unexpected argument "b"'],
    [["frobnicate"], 'unknown command "frobnicate"'],
    [["list", "--as=bob"], "unknown flag --as"],
    [["list", "-A", "-n", "x"], "exclude each other"],
    [["completion", "fish"], "completion needs a shell: bash or zsh"],
    [["list", "-n"], "flag -n needs a value"],
  ])("refuses %j: %s", (argv, message) => {
    expect(() => parseArgs(argv)).toThrow(UsageError);
    expect(() => parseArgs(argv)).toThrow(message);
  });
});

describe("parseDurationMs", () => {
  it.each([
    ["30s", 30_000],
    ["1h30m", 5_400_000],
    ["250ms", 250],
    ["1.5s", 1500],
    ["90", 90_000],
  ])("reads %s", (text, ms) => expect(parseDurationMs("--since", text)).toBe(ms));

  it.each(["", "5d", "s", "1h 30m", "-5s"])("refuses %j", (text) =>
    expect(() => parseDurationMs("--since", text)).toThrow("--since must be a duration"),
  );
});
