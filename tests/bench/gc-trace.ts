// What a Node process started with `--trace-gc` printed about its garbage collection, summed:
// how many young-generation scavenges and full mark-compacts, and how long each kind paused the
// process. bench-operator reads it from the operator's output, because the wall clock and even
// the CPU per AgentType move by a fifth with the machine, while the collector's work does not.
// Pure.

export interface GcPauses {
  scavenges: number;
  scavengeMs: number;
  markCompacts: number;
  markCompactMs: number;
}

// "[pid:0x...]   207517 ms: Scavenge 77.4 (106.4) -> 74.7 (106.4) MB, pooled: 0 MB, 1.17 / 0.02 ms ..."
// "... ms: Mark-Compact 63.9 (113.3) -> 53.2 (117.9) MB, pooled: 0 MB, 268.71 / 0.00 ms ..."
const LINE =
  /\d+ ms: (Scavenge|Mark-Compact)\b[^,]*?[\d.]+ \([\d.]+\) -> [\d.]+ \([\d.]+\) MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/;

export function gcPauses(output: string): GcPauses {
  const sum: GcPauses = { scavenges: 0, scavengeMs: 0, markCompacts: 0, markCompactMs: 0 };
  for (const line of output.split("\n")) {
    const match = LINE.exec(line);
    if (match === null) continue;
    const pause = Number(match[2]);
    if (match[1] === "Scavenge") {
      sum.scavenges++;
      sum.scavengeMs += pause;
    } else {
      sum.markCompacts++;
      sum.markCompactMs += pause;
    }
  }
  return sum;
}

/** What was collected between two readings of the same process's output. */
export function gcBetween(before: GcPauses, after: GcPauses): GcPauses {
  return {
    scavenges: after.scavenges - before.scavenges,
    scavengeMs: after.scavengeMs - before.scavengeMs,
    markCompacts: after.markCompacts - before.markCompacts,
    markCompactMs: after.markCompactMs - before.markCompactMs,
  };
}

export function describeGc(gc: GcPauses): string {
  return `${gc.scavenges} scavenges pausing ${(gc.scavengeMs / 1000).toFixed(1)} s, ${gc.markCompacts} mark-compacts pausing ${(gc.markCompactMs / 1000).toFixed(1)} s`;
}
