// Following a log that can only be read again, not streamed: each read returns the lines at or
// after the last one written, and those already written at that very time are skipped (a log's
// times are not unique). Pure.
import type { LogLine } from "../drivers/driver.ts";

export interface FollowCursor {
  /** The time of the last line written; undefined before the first. */
  since?: Date;
  /** How many lines written so far carry exactly that time. */
  writtenAtSince: number;
}

export const START: FollowCursor = { writtenAtSince: 0 };

/** The lines of a fresh read not written yet, and the cursor after writing them. */
export function advance(
  cursor: FollowCursor,
  lines: readonly LogLine[],
): { fresh: LogLine[]; cursor: FollowCursor } {
  const at = cursor.since?.getTime();
  let skip = cursor.writtenAtSince;
  const fresh = lines.filter((line) => {
    if (at === undefined) return true;
    const t = line.time.getTime();
    if (t < at) return false;
    if (t === at && skip > 0) {
      skip--;
      return false;
    }
    return true;
  });
  const last = fresh.at(-1);
  if (last === undefined) return { fresh, cursor };
  const lastAt = last.time.getTime();
  let writtenAtSince = 0;
  for (let i = fresh.length - 1; i >= 0 && fresh[i]?.time.getTime() === lastAt; i--) writtenAtSince++;
  if (lastAt === at) writtenAtSince += cursor.writtenAtSince;
  return { fresh, cursor: { since: last.time, writtenAtSince } };
}
