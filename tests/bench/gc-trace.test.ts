import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { describeGc, gcBetween, gcPauses } from "./gc-trace.ts";

// Keeps a growing array alive while it allocates short-lived objects: young-generation scavenges,
// and, with the old generation capped low, full mark-compacts.
const ALLOCATE =
  "const kept = []; for (let i = 0; i < 400000; i++) { kept.push({ i, s: 'x' + i }); JSON.stringify({ i }); }";

describe("gcPauses", () => {
  it("counts and sums what this Node printed with --trace-gc", async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--trace-gc", "--max-semi-space-size=1", "--max-old-space-size=64", "-e", ALLOCATE],
      { timeout: 60_000 },
    );
    const lines = stdout.split("\n");
    const gc = gcPauses(stdout);
    expect(gc.scavenges).toBe(lines.filter((l) => / ms: Scavenge /.test(l)).length);
    expect(gc.markCompacts).toBe(lines.filter((l) => / ms: Mark-Compact /.test(l)).length);
    expect(gc.scavenges).toBeGreaterThan(0);
    expect(gc.scavengeMs).toBeGreaterThan(0);
    expect(describeGc(gc)).toMatch(/^\d+ scavenges pausing \d+\.\d s, \d+ mark-compacts pausing \d+\.\d s$/);
  });

  it("reads the pause, not the sizes or the timestamp, and skips other lines", () => {
    const output = [
      '{"level":30,"msg":"reconciled"}',
      "[1:0x1]      207517 ms: Scavenge 77.4 (106.4) -> 74.7 (106.4) MB, pooled: 0 MB, 1.17 / 0.02 ms  (average mu = 0.974, current mu = 0.973) task; ",
      "[1:0x1]      207771 ms: Scavenge (interleaved) 77.8 (106.4) -> 75.1 (106.4) MB, pooled: 0 MB, 4.83 / 0.00 ms  (average mu = 0.974) allocation failure; ",
      "[1:0x1]      988 ms: Mark-Compact 63.9 (113.3) -> 53.2 (117.9) MB, pooled: 0 MB, 268.71 / 0.00 ms  (+ 0.0 ms in 0 steps since start of marking) allocation failure; GC in old space requested",
    ].join("\n");
    const gc = gcPauses(output);
    expect([gc.scavenges, gc.markCompacts]).toEqual([2, 1]);
    expect(gc.scavengeMs).toBeCloseTo(6, 6);
    expect(gc.markCompactMs).toBeCloseTo(268.71, 6);
    const since = gcBetween({ scavenges: 1, scavengeMs: 1.17, markCompacts: 0, markCompactMs: 0 }, gc);
    expect([since.scavenges, since.markCompacts]).toEqual([1, 1]);
    expect(since.scavengeMs).toBeCloseTo(4.83, 6);
  });
});
