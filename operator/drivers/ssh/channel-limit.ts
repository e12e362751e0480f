// Bounds the channels open at once on one SSH connection below sshd's MaxSessions (10 by
// default): past it sshd refuses new channels, so callers wait here, first come first served,
// each no longer than its own deadline.
import { type Call, remainingMs } from "../call.ts";
import { ResourceLimitError } from "../errors.ts";

interface Waiter {
  grant: () => void;
}

export class ChannelLimit {
  readonly max: number;
  #inUse = 0;
  readonly #waiters: Waiter[] = [];

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1)
      throw new Error(`channel limit must be a positive integer, not ${max}`);
    this.max = max;
  }

  get inUse(): number {
    return this.#inUse;
  }

  /** Resolves with a release function once a channel may be opened. */
  acquire(call: Call, what: string): Promise<() => void> {
    call.signal.throwIfAborted();
    if (this.#inUse < this.max) {
      this.#inUse++;
      return Promise.resolve(this.#releaser());
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          cleanup();
          resolve(this.#releaser());
        },
      };
      const drop = (reason: unknown) => {
        cleanup();
        const index = this.#waiters.indexOf(waiter);
        if (index >= 0) this.#waiters.splice(index, 1);
        reject(reason);
      };
      const onAbort = () => drop(call.signal.reason);
      const timer = setTimeout(
        () =>
          drop(
            new ResourceLimitError(`${what}: all ${this.max} SSH channels stayed busy until the deadline`),
          ),
        remainingMs(call),
      );
      const cleanup = () => {
        clearTimeout(timer);
        call.signal.removeEventListener("abort", onAbort);
      };
      call.signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      // The permit passes straight to the next waiter: inUse stays the same.
      if (next) next.grant();
      else this.#inUse--;
    };
  }
}
