// Routes one agent request over the ordered providers: budgets first, then per provider
// retries with jittered backoff, a per-attempt timeout, fallback on retryable failures and a
// cool-down for providers that keep failing. A stream is committed at its first event; after
// that a failure ends the stream instead of being retried, so the agent never sees text twice.
import { Cooldown } from "../cooldown.ts";
import { deadline } from "../deadline.ts";
import type { Metrics } from "../metrics.ts";
import {
  type ChatEvent,
  type ChatRequest,
  type ChatResult,
  type EmbedRequest,
  type EmbedResult,
  estimateTokens,
  type PassThroughApi,
  type Unhonoured,
} from "./chat.ts";
import {
  classifyTransportError,
  isRetryable,
  ProviderError,
  RateLimitedError,
  RefusedError,
  StreamInterruptedError,
} from "./errors.ts";
import type { LlmProvider } from "./provider.ts";
import { ProviderStates } from "./provider-state.ts";
import type { RateLimiter } from "./ratelimit.ts";

export interface RetryPolicy {
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
}

/** llm.cooldown of the config. */
export interface ProviderCooldown {
  /** Consecutive failed requests after which a provider is skipped. */
  failures: number;
  seconds: number;
}

export interface RoutedProvider {
  provider: LlmProvider;
  /** Where the provider is, for /status: its endpoint, or its region. */
  where: string;
  timeoutMs: number;
  limiter?: RateLimiter;
}

export interface RouterOptions {
  providers: RoutedProvider[];
  retries: RetryPolicy;
  cooldown: ProviderCooldown;
  limiter?: RateLimiter;
  metrics: Metrics;
  now?: () => number;
  random?: () => number;
}

export interface Answer<T> {
  provider: LlmProvider;
  value: T;
}

/** Backoff before retry number `retry` (1-based): exponential, capped, with equal jitter. */
export function backoffMs(
  retry: number,
  policy: Pick<RetryPolicy, "initialBackoffMs" | "maxBackoffMs">,
  random: number,
): number {
  const ceiling = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** (retry - 1));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}

/** Providers in the order to try: cooled-down ones are skipped unless all are cooled down. */
export function providerOrder<P>(providers: readonly P[], isCooledDown: (p: P) => boolean): P[] {
  const healthy = providers.filter((p) => !isCooledDown(p));
  return healthy.length > 0 ? healthy : [...providers];
}

interface Attempt<T> {
  routed: RoutedProvider;
  value: T;
  signal: AbortSignal;
  estimate: number;
  startedAt: number;
  /** Stops the attempt's timer and detaches it from the agent's signal; `abort` ends unfinished work. */
  finish(abort: boolean): void;
}

type Operation = "chat" | "embeddings";

export class Router {
  readonly #options: RouterOptions;
  readonly #cooldowns = new Map<string, Cooldown>();
  /** What the calls so far say of each provider: readiness and /status read it. */
  readonly states: ProviderStates;
  readonly #now: () => number;
  readonly #random: () => number;

  constructor(options: RouterOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    const policy = { failures: options.cooldown.failures, ms: options.cooldown.seconds * 1000 };
    for (const p of options.providers) this.#cooldowns.set(p.provider.name, new Cooldown(policy));
    this.states = new ProviderStates(
      options.providers.map(({ provider, where }) => ({
        name: provider.name,
        type: provider.type,
        where,
        model: provider.model,
      })),
    );
  }

  get providers(): readonly LlmProvider[] {
    return this.#options.providers.map((p) => p.provider);
  }

  async chat(request: ChatRequest, api: string, signal: AbortSignal): Promise<Answer<ChatResult>> {
    const attempt = await this.#tracked(api, () =>
      this.#route("chat", this.#able(request), estimateTokens(request), signal, (p, s) => p.chat(request, s)),
    );
    attempt.finish(false);
    this.#recordUsage("chat", attempt, attempt.value.usage.inputTokens, attempt.value.usage.outputTokens);
    return { provider: attempt.routed.provider, value: attempt.value };
  }

  async embed(request: EmbedRequest, api: string, signal: AbortSignal): Promise<Answer<EmbedResult>> {
    const estimate = Math.ceil(request.input.reduce((n, s) => n + s.length, 0) / 4);
    const able = this.#options.providers.filter((p) => p.provider.embed !== undefined);
    if (able.length === 0) {
      throw new ProviderError(
        "none",
        "unsupported",
        "no configured provider offers embeddings; add an ollama or openai provider with an embedding model to llm.providers",
      );
    }
    const attempt = await this.#tracked(api, () =>
      this.#route("embeddings", able, estimate, signal, (p, s) => {
        if (p.embed === undefined) throw new ProviderError(p.name, "unsupported", "offers no embeddings");
        return p.embed(request, s);
      }),
    );
    attempt.finish(false);
    this.#recordUsage("embeddings", attempt, attempt.value.inputTokens, 0);
    return { provider: attempt.routed.provider, value: attempt.value };
  }

  /**
   * Resolves once a provider produced its first event; failures before that are retried or
   * fall back, failures after it end the returned stream with a StreamInterruptedError.
   */
  async chatStream(
    request: ChatRequest,
    api: string,
    signal: AbortSignal,
  ): Promise<Answer<AsyncIterable<ChatEvent>>> {
    const { metrics } = this.#options;
    metrics.inFlight.inc();
    let attempt: Attempt<{ iterator: AsyncIterator<ChatEvent>; first: ChatEvent }>;
    try {
      const able = this.#able(request);
      attempt = await this.#route("chat", able, estimateTokens(request), signal, async (p, s) => {
        const iterator = p.chatStream(request, s)[Symbol.asyncIterator]();
        const first = await iterator.next();
        if (first.done === true)
          throw new ProviderError(p.name, "unavailable", "the provider sent an empty stream");
        return { iterator, first: first.value };
      });
    } catch (error) {
      metrics.inFlight.dec();
      metrics.requests.inc({ api, outcome: outcomeOf(error) });
      throw error;
    }
    const { provider } = attempt.routed;
    metrics.timeToFirstChunk.observe(
      { gen_ai_operation_name: "chat", provider: provider.name, gen_ai_request_model: provider.model },
      (this.#now() - attempt.startedAt) / 1000,
    );
    return { provider, value: this.#rest(attempt, api) };
  }

  async *#rest(
    attempt: Attempt<{ iterator: AsyncIterator<ChatEvent>; first: ChatEvent }>,
    api: string,
  ): AsyncGenerator<ChatEvent> {
    const { metrics } = this.#options;
    const { iterator } = attempt.value;
    let event = attempt.value.first;
    let outcome = "cancelled";
    try {
      while (true) {
        yield event;
        if (event.type === "done") {
          outcome = "ok";
          this.#recordUsage("chat", attempt, event.usage.inputTokens, event.usage.outputTokens);
          return;
        }
        let next: IteratorResult<ChatEvent>;
        try {
          next = await iterator.next();
          if (next.done === true) {
            throw new ProviderError(
              attempt.routed.provider.name,
              "unavailable",
              "the stream ended without its final event",
            );
          }
        } catch (error) {
          const failure = this.#asProviderError(attempt.routed, error, attempt.signal);
          if (failure.errorClass === "cancelled") throw failure;
          this.#attemptFailed(failure);
          outcome = "error";
          throw new StreamInterruptedError(failure);
        }
        event = next.value;
      }
    } finally {
      attempt.finish(outcome !== "ok");
      // Lets a provider stream left early (the agent went away) release its socket.
      if (outcome === "cancelled") void iterator.return?.();
      metrics.inFlight.dec();
      metrics.requests.inc({ api, outcome });
    }
  }

  async #tracked<T>(api: string, run: () => Promise<T>): Promise<T> {
    const { metrics } = this.#options;
    metrics.inFlight.inc();
    try {
      const value = await run();
      metrics.requests.inc({ api, outcome: "ok" });
      return value;
    } catch (error) {
      metrics.requests.inc({ api, outcome: outcomeOf(error) });
      throw error;
    } finally {
      metrics.inFlight.dec();
    }
  }

  #recordUsage(operation: Operation, attempt: Attempt<unknown>, input: number, output: number): void {
    const now = this.#now();
    this.#options.limiter?.correct(attempt.estimate, input + output, now);
    attempt.routed.limiter?.correct(attempt.estimate, input + output, now);
    const { provider } = attempt.routed;
    const labels = {
      gen_ai_operation_name: operation,
      provider: provider.name,
      gen_ai_request_model: provider.model,
    };
    const { metrics } = this.#options;
    metrics.operationDuration.observe(labels, (now - attempt.startedAt) / 1000);
    metrics.tokenUsage.observe({ ...labels, gen_ai_token_type: "input" }, input);
    if (operation === "chat") metrics.tokenUsage.observe({ ...labels, gen_ai_token_type: "output" }, output);
  }

  /**
   * The providers that can honour every field of the request; the others are skipped, so a
   * field is never dropped by a fallback. When none can, the request is refused, each
   * provider's reason named, before any budget is taken.
   */
  #able(request: ChatRequest): RoutedProvider[] {
    const { providers, metrics } = this.#options;
    const verdicts = providers.map((routed) => ({
      routed,
      unhonoured: this.#unhonoured(routed.provider, request),
    }));
    const able = verdicts.filter((v) => v.unhonoured === undefined).map((v) => v.routed);
    if (able.length > 0) {
      for (const v of verdicts) {
        if (v.unhonoured !== undefined)
          metrics.fallbacks.inc({ provider: v.routed.provider.name, reason: "cannot_honour" });
      }
      return able;
    }
    const named = verdicts.map(({ routed, unhonoured }) => ({
      field:
        unhonoured === undefined ? "request" : (request.fields[unhonoured.feature] ?? unhonoured.feature),
      provider: routed.provider,
      reason: unhonoured?.reason,
    }));
    const message = named
      .map((n) => `provider "${n.provider.name}" (${n.provider.type}) cannot honour ${n.field}: ${n.reason}`)
      .join("; ");
    throw new RefusedError(named[0]?.field ?? "request", message);
  }

  /** What a provider cannot honour: a field held back for pass-through, unless it takes the request as it came. */
  #unhonoured(provider: LlmProvider, request: ChatRequest): Unhonoured | undefined {
    const pass = request.passThrough;
    const held = pass?.heldBack?.[0];
    if (pass !== undefined && held !== undefined && provider.passesThrough?.includes(pass.api) !== true) {
      return {
        feature: "passThrough",
        reason: `${held} is not a field the sidecar maps; only a provider of the agent's own API takes it, as it came`,
      };
    }
    return provider.unhonoured(request);
  }

  /** True when some provider takes requests of this agent API as they came. */
  passesThrough(api: PassThroughApi): boolean {
    return this.#options.providers.some((p) => p.provider.passesThrough?.includes(api) === true);
  }

  async #route<T>(
    operation: Operation,
    able: RoutedProvider[],
    estimate: number,
    signal: AbortSignal,
    call: (provider: LlmProvider, signal: AbortSignal) => Promise<T>,
  ): Promise<Attempt<T>> {
    const { metrics } = this.#options;
    const startedAt = this.#now();
    const agentWait = this.#options.limiter?.tryAcquire(estimate, startedAt) ?? 0;
    if (agentWait > 0) {
      metrics.rateLimited.inc({ scope: "agent" });
      throw new RateLimitedError(
        "agent",
        agentWait,
        `the agent's LLM budget (llm.rateLimit) is used up; retry in ${Math.ceil(agentWait / 1000)}s`,
      );
    }
    let lastError: ProviderError | undefined;
    let shortestQuotaWait: number | undefined;
    const order = providerOrder(able, (p) => this.#cooldownOf(p).isCoolingDown(this.#now()));
    for (const p of able) {
      if (!order.includes(p)) metrics.fallbacks.inc({ provider: p.provider.name, reason: "cooled_down" });
    }
    // A request no provider answered used no tokens: its estimate goes back to the budgets.
    let answered = false;
    try {
      for (const routed of order) {
        const quotaWait = routed.limiter?.tryAcquire(estimate, this.#now()) ?? 0;
        if (quotaWait > 0) {
          shortestQuotaWait = Math.min(shortestQuotaWait ?? quotaWait, quotaWait);
          metrics.fallbacks.inc({ provider: routed.provider.name, reason: "rate_limited" });
          continue;
        }
        let outcome: Attempt<T> | ProviderError;
        try {
          outcome = await this.#attempts(routed, estimate, startedAt, signal, call);
        } catch (error) {
          routed.limiter?.correct(estimate, 0, this.#now());
          throw error;
        }
        if (!(outcome instanceof ProviderError)) {
          answered = true;
          return outcome;
        }
        routed.limiter?.correct(estimate, 0, this.#now());
        lastError = outcome;
        this.#cooldownOf(routed).failed(this.#now(), outcome.message);
        metrics.fallbacks.inc({ provider: routed.provider.name, reason: "failed" });
      }
    } finally {
      if (!answered) this.#options.limiter?.correct(estimate, 0, this.#now());
    }
    if (lastError !== undefined) throw lastError;
    metrics.rateLimited.inc({ scope: "providers" });
    const wait = shortestQuotaWait ?? 1000;
    throw new RateLimitedError(
      "providers",
      wait,
      `every provider's quota (llm.providers[].rateLimit) is used up for ${operation}; retry in ${Math.ceil(wait / 1000)}s`,
    );
  }

  /**
   * Tries one provider up to maxAttempts times; returns the last failure when every attempt
   * failed retryably. Non-retryable failures and the agent leaving are thrown.
   */
  async #attempts<T>(
    routed: RoutedProvider,
    estimate: number,
    startedAt: number,
    signal: AbortSignal,
    call: (provider: LlmProvider, signal: AbortSignal) => Promise<T>,
  ): Promise<Attempt<T> | ProviderError> {
    const { metrics, retries } = this.#options;
    const { provider } = routed;
    let lastFailure: ProviderError | undefined;
    for (let attemptNo = 1; attemptNo <= retries.maxAttempts; attemptNo++) {
      if (attemptNo > 1) {
        metrics.retries.inc({ provider: provider.name });
        await sleep(backoffMs(attemptNo - 1, retries, this.#random()), signal).catch(() => {
          throw new ProviderError(provider.name, "cancelled", "the agent closed the request");
        });
      }
      if (signal.aborted) throw new ProviderError(provider.name, "cancelled", "the agent closed the request");
      const attempt = deadline(
        routed.timeoutMs,
        () => new ProviderError(provider.name, "timeout", `no answer within ${routed.timeoutMs / 1000}s`),
        signal,
      );
      // A completed call is not aborted: that would close its keep-alive connection.
      const finish = (abort: boolean) => attempt.finish(abort);
      try {
        const value = await call(provider, attempt.signal);
        this.#cooldownOf(routed).succeeded();
        this.states.succeeded(provider.name, this.#now());
        return { routed, value, signal: attempt.signal, estimate, startedAt, finish };
      } catch (error) {
        const failure = this.#asProviderError(routed, error, attempt.signal);
        finish(true);
        if (failure.errorClass === "cancelled") throw failure;
        this.#attemptFailed(failure);
        if (!isRetryable(failure.errorClass)) throw failure;
        lastFailure = failure;
      }
    }
    // maxAttempts is at least 1, so a failure was recorded; the fallback only satisfies the types.
    return lastFailure ?? new ProviderError(provider.name, "unavailable", "no attempt was made");
  }

  /** Counts a failed attempt and keeps what it says of its provider. */
  #attemptFailed(failure: ProviderError): void {
    this.#options.metrics.errors.inc({ provider: failure.provider, error_type: failure.errorClass });
    this.states.failed(failure, this.#now());
  }

  #cooldownOf(routed: RoutedProvider): Cooldown {
    const cooldown = this.#cooldowns.get(routed.provider.name);
    if (cooldown === undefined) throw new Error(`no cool-down record for provider ${routed.provider.name}`);
    return cooldown;
  }

  /** Names the failure of an attempt; the attempt's abort reason tells a timeout from the agent leaving. */
  #asProviderError(routed: RoutedProvider, error: unknown, attemptSignal: AbortSignal): ProviderError {
    const name = routed.provider.name;
    if (attemptSignal.aborted && attemptSignal.reason instanceof ProviderError) return attemptSignal.reason;
    if (attemptSignal.aborted) return new ProviderError(name, "cancelled", "the agent closed the request");
    if (error instanceof ProviderError) return error;
    const transport = classifyTransportError(error);
    const message = error instanceof Error ? error.message : String(error);
    return new ProviderError(name, transport ?? "unavailable", `provider "${name}" failed: ${message}`);
  }
}

function outcomeOf(error: unknown): string {
  if (error instanceof RateLimitedError) return "rate_limited";
  if (error instanceof RefusedError) return "refused";
  if (error instanceof ProviderError && error.errorClass === "cancelled") return "cancelled";
  return "error";
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
