// The one deadline helper of the operator's calls to other processes: a signal that aborts when
// the caller cancels or when time is up, whichever comes first, and that tells the two apart,
// so that a timeout can be reported (and retried) as one while a cancellation stays one.

export interface Deadline {
  /** Aborts when the caller's signal aborts or the time is up. */
  readonly signal: AbortSignal;
  /** True once the time is up, ours or the caller's own (an `AbortSignal.timeout`). */
  readonly expired: boolean;
  /** Stops the clock (for example once a watch has its answer): the signal then follows the caller's alone. */
  clear(): void;
}

/** setTimeout fires at once for delays beyond this (2^31 - 1 ms, about 24.8 days). */
const LONGEST_TIMER_MS = 2 ** 31 - 1;

export function isTimeoutReason(reason: unknown): boolean {
  return reason instanceof DOMException && reason.name === "TimeoutError";
}

export function deadline(ms: number, caller?: AbortSignal): Deadline {
  const clock = new AbortController();
  const timeUp = () => clock.abort(new DOMException(`no answer within ${formatMs(ms)}`, "TimeoutError"));
  let timer: NodeJS.Timeout | undefined;
  if (ms <= 0) timeUp();
  else if (ms <= LONGEST_TIMER_MS) timer = setTimeout(timeUp, ms);
  const signal = caller === undefined ? clock.signal : AbortSignal.any([clock.signal, caller]);
  return {
    signal,
    get expired() {
      return clock.signal.aborted || (caller?.aborted === true && isTimeoutReason(caller.reason));
    },
    clear: () => clearTimeout(timer),
  };
}

/** "250 ms", "2 s", "1.5 s": how long a deadline was, for error messages. */
export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${Number((ms / 1000).toFixed(1))} s`;
}
