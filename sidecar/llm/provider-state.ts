// What the sidecar knows of each LLM provider from the outcomes of the agent's real calls:
// answering, or failing and how (unreachable, timing out, refusing the credentials, lacking the
// model, failing inside). Readiness (/readyz) and the operator's view (/status) come from it.
// Pure: the router reports outcomes, time is passed in.
import type { ProviderHealth } from "../../api/sidecarstatus.ts";
import type { ErrorClass, ProviderError } from "./errors.ts";
import type { ModelLifecycle } from "./ollama-models.ts";

const FAILING: ReadonlySet<ProviderHealth> = new Set([
  "unreachable",
  "timeout",
  "unauthorized",
  "model-missing",
  "unavailable",
]);

export function isFailing(health: ProviderHealth): boolean {
  return FAILING.has(health);
}

/**
 * The provider's health after a failed call of this class, or undefined when the failure says
 * nothing about the provider: a request it rejected (invalid, unsupported) still proves it
 * answers, and an agent that left proves nothing.
 */
export function healthAfter(errorClass: ErrorClass): ProviderHealth | undefined {
  switch (errorClass) {
    case "connection":
      return "unreachable";
    case "timeout":
      return "timeout";
    case "auth":
      return "unauthorized";
    case "not_found":
      return "model-missing";
    case "unavailable":
      return "unavailable";
    case "throttled":
      return "throttled";
    default:
      return undefined;
  }
}

/** A provider as /status names it. */
export interface ProviderIdentity {
  name: string;
  type: string;
  /** Where it is: the endpoint, or the region of a Bedrock provider without one. */
  where: string;
  model: string;
}

export interface ProviderReport extends ProviderIdentity {
  state: ProviderHealth;
  /** When the state last changed, ISO 8601; absent while unknown. */
  since?: string;
  /** Failed calls since the last answer. */
  consecutiveFailures: number;
  /** The last failure, kept after a recovery so a flapping provider can be told apart. */
  lastError?: { errorClass: ErrorClass; message: string; at: string };
  /** For a provider with a model lifecycle (ollama): where its model stands. */
  modelLifecycle?: ModelLifecycle;
}

/** Longest error message kept: an upstream's HTML error page says nothing more past this. */
const MESSAGE_MAX_CHARS = 500;

export class ProviderStates {
  readonly #reports: Map<string, ProviderReport>;

  constructor(providers: readonly ProviderIdentity[]) {
    this.#reports = new Map(
      providers.map((p) => [p.name, { ...p, state: "unknown" as ProviderHealth, consecutiveFailures: 0 }]),
    );
  }

  succeeded(name: string, now: number): void {
    const report = this.#report(name);
    report.consecutiveFailures = 0;
    this.#set(report, "ok", now);
  }

  failed(error: ProviderError, now: number): void {
    const health = healthAfter(error.errorClass);
    if (health === undefined) return;
    const report = this.#report(error.provider);
    const message = error.message;
    report.lastError = {
      errorClass: error.errorClass,
      message: message.length > MESSAGE_MAX_CHARS ? `${message.slice(0, MESSAGE_MAX_CHARS)}…` : message,
      at: new Date(now).toISOString(),
    };
    if (health !== "throttled") report.consecutiveFailures += 1;
    this.#set(report, health, now);
  }

  /** A provider's model lifecycle moved on (checking, pulling, ready, failed). */
  modelChanged(name: string, lifecycle: ModelLifecycle, now: number): void {
    const report = this.#report(name);
    report.modelLifecycle = { ...lifecycle };
    // A model that was missing when the agent called is there now: the calls' verdict is stale.
    if (lifecycle.phase === "ready" && report.state === "model-missing") {
      report.consecutiveFailures = 0;
      this.#set(report, "unknown", now);
    }
  }

  /**
   * The providers whose model holds readiness: being checked or pulled, or refused by the
   * server. A server that cannot be reached is an outage like any other (docs/adr/0007): it
   * does not hold readiness; the calls' verdict on the provider does.
   */
  modelsHoldingReadiness(): ProviderReport[] {
    const holds = (phase: string) => phase !== "ready" && phase !== "unreachable";
    return this.reports().filter((r) => r.modelLifecycle !== undefined && holds(r.modelLifecycle.phase));
  }

  /** True when there are providers and every one is failing: no request can be served. */
  get allFailing(): boolean {
    const reports = [...this.#reports.values()];
    return reports.length > 0 && reports.every((r) => isFailing(r.state));
  }

  /** Copies of the reports, in the configured order (the fallback order). */
  reports(): ProviderReport[] {
    return [...this.#reports.values()].map((r) => ({
      ...r,
      ...(r.lastError === undefined ? {} : { lastError: { ...r.lastError } }),
      ...(r.modelLifecycle === undefined ? {} : { modelLifecycle: { ...r.modelLifecycle } }),
    }));
  }

  #set(report: ProviderReport, state: ProviderHealth, now: number): void {
    if (report.state === state) return;
    report.state = state;
    report.since = new Date(now).toISOString();
  }

  #report(name: string): ProviderReport {
    const report = this.#reports.get(name);
    if (report === undefined) throw new Error(`no state kept for provider ${name}`);
    return report;
  }
}
