// Whether a tool server may be called: one that failed or hung is set aside for a while, so
// later calls fail fast instead of each waiting out its timeout, then it is tried again.

/** How long a tool server that failed is left out before it is tried again. */
export const UNAVAILABLE_MS = 30_000;

export class ToolHealth {
  #unavailableUntil = 0;
  #reason: string | undefined;

  isAvailable(now: number): boolean {
    return now >= this.#unavailableUntil;
  }

  /** Why the server was set aside, while it is. */
  get reason(): string | undefined {
    return this.#reason;
  }

  failed(reason: string, now: number): void {
    this.#reason = reason;
    this.#unavailableUntil = now + UNAVAILABLE_MS;
  }

  succeeded(): void {
    this.#reason = undefined;
    this.#unavailableUntil = 0;
  }
}
