// A token bucket: `perSecond` tokens added continuously up to `burst`. Time is passed in, so
// the logic is pure and tests need no clock.

export class TokenBucket {
  readonly #perSecond: number;
  readonly #burst: number;
  #tokens: number;
  #at: number;

  constructor(perSecond: number, burst: number, now: number) {
    if (!(perSecond > 0) || !(burst >= 1))
      throw new Error(`invalid token bucket ${perSecond}/s, burst ${burst}`);
    this.#perSecond = perSecond;
    this.#burst = burst;
    this.#tokens = burst;
    this.#at = now;
  }

  #refill(now: number): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) / 1000) * this.#perSecond);
    this.#at = now;
  }

  /** Takes a token if one is free; refuses (false) rather than wait. */
  tryTake(now: number): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Takes a token, going into debt if none is free; returns the milliseconds until it is paid. */
  take(now: number): number {
    this.#refill(now);
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.#perSecond) * 1000);
  }
}
