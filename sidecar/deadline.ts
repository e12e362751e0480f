// One way to bound a call that crosses a process boundary (a provider, a tool server): a
// signal that aborts at the deadline, with an error saying so, or when the caller gives up,
// with the caller's reason, whichever comes first.

export interface Deadline {
  /** Aborts at the deadline (reason: the expiry error) or with the caller's signal. */
  readonly signal: AbortSignal;
  /** Stops the timer and lets go of the caller's signal; `abort` also ends work still running. */
  finish(abort?: boolean): void;
}

export function deadline(ms: number, expiry: () => Error, caller?: AbortSignal): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(expiry()), ms);
  const onCallerAbort = () => controller.abort(caller?.reason);
  if (caller?.aborted === true) onCallerAbort();
  else caller?.addEventListener("abort", onCallerAbort, { once: true });
  return {
    signal: controller.signal,
    finish(abort = false) {
      clearTimeout(timer);
      caller?.removeEventListener("abort", onCallerAbort);
      if (abort) controller.abort(new Error("the call was ended"));
    },
  };
}

/** Settles as the promise does, or rejects with the signal's reason once it aborts: for work that takes no signal. */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
