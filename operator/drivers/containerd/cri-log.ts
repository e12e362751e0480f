// Container logs as containerd's CRI writes them: one line per record,
// `<RFC3339Nano time> <stdout|stderr> <P|F> <text>`, where P marks a partial line continued by
// the next record of the same stream. Pure.
import type { LogLine, LogOptions } from "../driver.ts";

const RECORD = /^(\S+) (stdout|stderr) ([PF])(?: (.*))?$/;

/**
 * Parses CRI log text into lines in time order, joining partial records; unparseable records
 * are skipped.
 */
export function parseCriLog(text: string): LogLine[] {
  const lines: LogLine[] = [];
  const partial: Record<"stdout" | "stderr", { time: Date; text: string } | undefined> = {
    stdout: undefined,
    stderr: undefined,
  };
  for (const record of text.split("\n")) {
    const m = RECORD.exec(record);
    if (!m) continue;
    const time = new Date(m[1] as string);
    if (Number.isNaN(time.getTime())) continue;
    const stream = m[2] as "stdout" | "stderr";
    const piece = m[4] ?? "";
    const open = partial[stream];
    if (m[3] === "P") {
      partial[stream] = open ? { time: open.time, text: open.text + piece } : { time, text: piece };
      continue;
    }
    partial[stream] = undefined;
    lines.push(open ? { time: open.time, stream, text: open.text + piece } : { time, stream, text: piece });
  }
  // stdout and stderr are copied into the file by two writers: order the lines by time (stable).
  return lines.sort((a, b) => a.time.getTime() - b.time.getTime());
}

/** The lines at or after `since`, then the last `tail` of them. */
export function selectLogLines(lines: readonly LogLine[], options: LogOptions): LogLine[] {
  const since = options.since?.getTime();
  const recent = since === undefined ? [...lines] : lines.filter((l) => l.time.getTime() >= since);
  return options.tail === undefined ? recent : recent.slice(Math.max(0, recent.length - options.tail));
}
