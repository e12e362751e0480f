// Token buckets for the requests/min and tokens/min budgets of the agent and of each provider.
// Time is passed in, so the arithmetic is tested without waiting.

export class TokenBucket {
  readonly capacity: number;
  readonly #perMs: number;
  #level: number;
  #updatedAt: number;

  constructor(perMinute: number, now: number) {
    this.capacity = perMinute;
    this.#perMs = perMinute / 60_000;
    this.#level = perMinute;
    this.#updatedAt = now;
  }

  #refill(now: number): void {
    this.#level = Math.min(this.capacity, this.#level + (now - this.#updatedAt) * this.#perMs);
    this.#updatedAt = now;
  }

  /** Milliseconds until `amount` is available; 0 when it is available now. */
  waitFor(amount: number, now: number): number {
    this.#refill(now);
    // A request larger than the whole bucket waits for a full bucket rather than forever.
    const needed = Math.min(amount, this.capacity);
    return needed <= this.#level ? 0 : Math.ceil((needed - this.#level) / this.#perMs);
  }

  take(amount: number, now: number): void {
    this.#refill(now);
    this.#level -= Math.min(amount, this.capacity);
  }

  /** Corrects an earlier estimate once the real amount is known; the level may go negative. */
  adjust(delta: number, now: number): void {
    this.#refill(now);
    this.#level = Math.min(this.capacity, this.#level - delta);
  }
}

export interface RateLimit {
  requestsPerMinute?: number;
  tokensPerMinute?: number;
}

/** A requests bucket and a tokens bucket taken from together or not at all. */
export class RateLimiter {
  readonly #requests: TokenBucket | undefined;
  readonly #tokens: TokenBucket | undefined;

  constructor(limit: RateLimit, now: number) {
    this.#requests =
      limit.requestsPerMinute === undefined ? undefined : new TokenBucket(limit.requestsPerMinute, now);
    this.#tokens =
      limit.tokensPerMinute === undefined ? undefined : new TokenBucket(limit.tokensPerMinute, now);
  }

  /** Takes one request and `tokens` estimated tokens, or returns how many ms to wait (nothing taken). */
  tryAcquire(tokens: number, now: number): number {
    const wait = Math.max(this.#requests?.waitFor(1, now) ?? 0, this.#tokens?.waitFor(tokens, now) ?? 0);
    if (wait > 0) return wait;
    this.#requests?.take(1, now);
    this.#tokens?.take(tokens, now);
    return 0;
  }

  /** Replaces the estimate with the tokens the provider reported. */
  correct(estimated: number, actual: number, now: number): void {
    this.#tokens?.adjust(actual - estimated, now);
  }
}
