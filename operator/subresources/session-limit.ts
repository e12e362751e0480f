// The sessions (attach, exec -i/-t) open at once to each AgentHost through the aggregated API,
// bounded: each holds an SSH channel of the API's connection to the host for as long as it
// lasts, and the connection has a few (drivers/ssh/connection.ts maxChannels). Pure.
export class SessionLimit {
  readonly max: number;
  readonly #open = new Map<string, number>();

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1)
      throw new Error(`session limit must be a positive integer, not ${max}`);
    this.max = max;
  }

  /** Sessions open to `host` now. */
  open(host: string): number {
    return this.#open.get(host) ?? 0;
  }

  /** Takes a place for a session to `host`: its release, or undefined when all `max` are taken. */
  take(host: string): (() => void) | undefined {
    const open = this.open(host);
    if (open >= this.max) return undefined;
    this.#open.set(host, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.open(host) - 1;
      if (left > 0) this.#open.set(host, left);
      else this.#open.delete(host);
    };
  }
}
