// Sets aside a provider or tool server that keeps failing, for a while, so requests stop
// waiting on it; then it is tried again. One mechanism for providers and tools. Time is
// passed in, so the arithmetic is tested without waiting.

export interface CooldownPolicy {
  /** Consecutive failures after which the target is set aside. */
  failures: number;
  /** How long it is set aside. */
  ms: number;
}

export class Cooldown {
  readonly #policy: CooldownPolicy;
  #failures = 0;
  #until = 0;
  #reason: string | undefined;

  constructor(policy: CooldownPolicy) {
    this.#policy = policy;
  }

  isCoolingDown(now: number): boolean {
    return now < this.#until;
  }

  /** What the last failure was, until a success; says why the target is set aside. */
  get reason(): string | undefined {
    return this.#reason;
  }

  failed(now: number, reason: string): void {
    this.#reason = reason;
    this.#failures += 1;
    if (this.#failures >= this.#policy.failures) {
      this.#until = now + this.#policy.ms;
      this.#failures = 0;
    }
  }

  succeeded(): void {
    this.#failures = 0;
    this.#until = 0;
    this.#reason = undefined;
  }
}
