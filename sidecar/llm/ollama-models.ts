// The model lifecycle of an Ollama provider (its `pull` policy): before the sidecar reports
// ready, the model must be on the Ollama server; it is looked up in /api/tags and, when
// missing (or always, with pull: Always), fetched through /api/pull, whose NDJSON progress
// becomes the provider's lifecycle as /readyz, /status, the metrics and the log show it.
// A failed check or pull is tried again with backoff until the services are replaced.
import { setTimeout as sleep } from "node:timers/promises";
import type { PullPolicy } from "../../api/agenttype.ts";
import type { ModelPhase } from "../../api/sidecarstatus.ts";
import { deadline } from "../deadline.ts";
import { lines, readText, send, target } from "../http-client.ts";
import { backoffMs, type RetryPolicy } from "./router.ts";

type Backoff = Pick<RetryPolicy, "initialBackoffMs" | "maxBackoffMs">;

/** Where a provider's model stands. */
export interface ModelLifecycle {
  phase: ModelPhase;
  pull: PullPolicy;
  /** What is happening or what went wrong, for a person: "pulling dde5aa3fc5ff: 45 % of 2.0 GB". */
  message: string;
  /** Bytes of the layer being pulled, as Ollama reports them. */
  completedBytes?: number;
  totalBytes?: number;
  /** When the phase last changed, ISO 8601. */
  since: string;
  /** Failed checks and pulls since the model was last ready. */
  failures: number;
  /** When a failed or unreachable model is looked for again, ISO 8601. */
  retryAt?: string;
}

/** One NDJSON line of /api/pull. */
export interface PullProgress {
  status?: string;
  digest?: string;
  total?: number;
  completed?: number;
  error?: string;
}

/** Ollama reads `llama3.2` as `llama3.2:latest`. */
export function fullModelName(model: string): string {
  return model.includes(":") ? model : `${model}:latest`;
}

/** Whether /api/tags lists the model, under its full name or as written. */
export function listsModel(tags: readonly string[], model: string): boolean {
  const wanted = fullModelName(model);
  return tags.some((name) => fullModelName(name) === wanted);
}

/** "2.0 GB": Ollama's own units (powers of 1000), one decimal. */
export function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The lifecycle message of one progress line: its status, with the share done when it has bytes. */
export function describeProgress(progress: PullProgress): string {
  const status = progress.status ?? "pulling";
  if (progress.total === undefined || progress.total <= 0) return status;
  const completed = progress.completed ?? 0;
  const percent = Math.floor((completed / progress.total) * 100);
  return `${status}: ${percent} % of ${formatBytes(progress.total)}`;
}

/**
 * Whether a change of lifecycle deserves a log line: a new phase, a new step of the pull, or
 * another tenth of a layer; not every progress line of a multi-gigabyte download.
 */
export function worthLogging(previous: ModelLifecycle | undefined, next: ModelLifecycle): boolean {
  if (previous === undefined || previous.phase !== next.phase) return true;
  if (next.phase !== "pulling") return previous.message !== next.message;
  const tenth = (l: ModelLifecycle) =>
    l.totalBytes === undefined || l.totalBytes <= 0
      ? -1
      : Math.floor(((l.completedBytes ?? 0) / l.totalBytes) * 10);
  const step = (l: ModelLifecycle) => l.message.replace(/: \d+ % of .*$/, "");
  return step(previous) !== step(next) || tenth(previous) !== tenth(next);
}

/** The `error` of an Ollama error body, or the body itself when it is not one. */
function ollamaError(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (typeof parsed.error === "string") return parsed.error;
  } catch {
    // not JSON: the text says it
  }
  return text.trim().slice(0, 300);
}

/**
 * The Ollama server could not be reached (refused, reset, no answer in time): a provider outage,
 * which does not hold readiness (docs/adr/0007), unlike an answer that the model is not there.
 */
export class ServerUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ServerUnreachableError";
  }
}

/** Runs one exchange with the server; a failure of the transport becomes a ServerUnreachableError. */
async function reaching<T>(exchange: () => Promise<T>): Promise<T> {
  try {
    return await exchange();
  } catch (error) {
    throw new ServerUnreachableError((error as Error).message);
  }
}

export interface OllamaServer {
  /** Base URL, without /api. */
  endpoint: string;
  headers: Record<string, string>;
}

/** The full names of the models the server holds (GET /api/tags). */
export async function listModels(server: OllamaServer, signal: AbortSignal): Promise<string[]> {
  const { response, text } = await reaching(async () => {
    const response = await send(target(`${server.endpoint}/api/tags`), {
      method: "GET",
      headers: server.headers,
      signal,
    });
    return { response, text: await readText(response, 16 * 1024 * 1024) };
  });
  if (response.statusCode !== 200) {
    throw new Error(`GET /api/tags answered ${response.statusCode}: ${ollamaError(text)}`);
  }
  const body = JSON.parse(text) as { models?: { name?: unknown; model?: unknown }[] };
  return (body.models ?? []).flatMap((m) => {
    const name = typeof m.name === "string" ? m.name : m.model;
    return typeof name === "string" ? [name] : [];
  });
}

/**
 * Pulls the model (POST /api/pull, streamed), yielding Ollama's progress lines; throws with
 * Ollama's words on an error status or an error line, and when no line came for `idleMs` (a
 * pull of gigabytes has no useful overall deadline, a stalled one has); a connection that
 * fails or breaks throws a ServerUnreachableError.
 */
export async function* pullModel(
  server: OllamaServer,
  model: string,
  idleMs: number,
  signal: AbortSignal,
): AsyncGenerator<PullProgress> {
  const idle = new AbortController();
  const stalled = () => idle.abort(new Error(`the pull of ${model} sent no progress for ${idleMs / 1000} s`));
  const timer = setTimeout(stalled, idleMs);
  const both = AbortSignal.any([signal, idle.signal]);
  try {
    const response = await reaching(() =>
      send(target(`${server.endpoint}/api/pull`), {
        method: "POST",
        headers: server.headers,
        body: JSON.stringify({ model, stream: true }),
        signal: both,
      }),
    );
    if (response.statusCode !== 200) {
      const text = await reaching(() => readText(response, 1024 * 1024));
      throw new Error(`POST /api/pull answered ${response.statusCode}: ${ollamaError(text)}`);
    }
    let success = false;
    const progressLines = lines(response);
    while (true) {
      const next = await reaching(() => progressLines.next());
      if (next.done === true) break;
      timer.refresh();
      const progress = JSON.parse(next.value) as PullProgress;
      if (progress.error !== undefined) throw new Error(progress.error);
      if (progress.status === "success") success = true;
      yield progress;
    }
    if (!success) throw new ServerUnreachableError("the connection ended before Ollama said success");
  } catch (error) {
    // The socket's own error says "aborted"; the reason says why.
    if (both.aborted) throw both.reason;
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

export interface ModelPreparation {
  /** The provider, for messages. */
  provider: string;
  server: OllamaServer;
  model: string;
  pull: PullPolicy;
  /** Deadline of one /api/tags. */
  checkTimeoutMs: number;
  /** Longest silence of a pull. */
  pullIdleMs: number;
  /** Backoff between failed attempts. */
  retry: Backoff;
  /** Called with every change of the lifecycle. */
  report(lifecycle: ModelLifecycle): void;
  now?: () => number;
  random?: () => number;
}

/** How long a model that could not be made ready waits before the next attempt. */
export const MODEL_RETRY: Backoff = { initialBackoffMs: 2_000, maxBackoffMs: 60_000 };
/** A pull whose server says nothing for this long is stalled (verifying a large blob takes minutes). */
export const PULL_IDLE_MS = 300_000;

/**
 * Makes the model ready: checks, pulls when the policy says so, and on failure tries again
 * with backoff, reporting each step. Resolves once the model is ready, or when `signal`
 * aborts (the services were replaced or closed).
 */
export async function prepareModel(options: ModelPreparation, signal: AbortSignal): Promise<void> {
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  let current: ModelLifecycle | undefined;
  let failures = 0;
  const report = (phase: ModelPhase, message: string, bytes: Partial<ModelLifecycle> = {}) => {
    if (phase === "ready") failures = 0;
    const since = current?.phase === phase ? current.since : new Date(now()).toISOString();
    current = { phase, pull: options.pull, message, ...bytes, since, failures };
    options.report({ ...current });
  };
  while (!signal.aborted) {
    try {
      await attempt(options, signal, report);
      return;
    } catch (error) {
      if (signal.aborted) return;
      failures += 1;
      const waitMs = backoffMs(failures, options.retry, random());
      const phase = error instanceof ServerUnreachableError ? "unreachable" : "failed";
      // The message stays the same from one attempt to the next while the cause does, so the
      // condition the operator makes of it does not change at every retry.
      report(phase, (error as Error).message, { retryAt: new Date(now() + waitMs).toISOString() });
      await sleep(waitMs, undefined, { signal }).catch(() => undefined);
    }
  }
}

/** The error with a fuller message, of the same kind: unreachable stays unreachable. */
function restated(error: unknown, message: string): Error {
  return error instanceof ServerUnreachableError ? new ServerUnreachableError(message) : new Error(message);
}

async function attempt(
  options: ModelPreparation,
  signal: AbortSignal,
  report: (phase: ModelPhase, message: string, bytes?: Partial<ModelLifecycle>) => void,
): Promise<void> {
  const { server, model, pull } = options;
  report("checking", `looking for ${model} in ${server.endpoint}/api/tags`);
  const check = deadline(
    options.checkTimeoutMs,
    () =>
      new Error(`GET ${server.endpoint}/api/tags did not answer within ${options.checkTimeoutMs / 1000} s`),
    signal,
  );
  let present: boolean;
  try {
    present = listsModel(await listModels(server, check.signal), model);
  } catch (error) {
    const cause = check.signal.aborted && !signal.aborted ? (check.signal.reason as Error) : (error as Error);
    throw restated(error, `cannot list the models of ${server.endpoint}: ${cause.message}`);
  } finally {
    check.finish();
  }
  if (present && pull !== "Always") {
    report("ready", `${model} is on ${server.endpoint}`);
    return;
  }
  if (pull === "Never") {
    throw new Error(
      `${model} is not on ${server.endpoint} and pull is Never: pull it there, or set pull to IfNotPresent`,
    );
  }
  report("pulling", `pulling ${model}`);
  const started = Date.now();
  let total = 0;
  try {
    for await (const progress of pullModel(server, model, options.pullIdleMs, signal)) {
      if (progress.total !== undefined) total = Math.max(total, progress.total);
      report("pulling", `pulling ${model}: ${describeProgress(progress)}`, {
        ...(progress.total === undefined ? {} : { totalBytes: progress.total }),
        ...(progress.total === undefined ? {} : { completedBytes: progress.completed ?? 0 }),
      });
    }
  } catch (error) {
    throw restated(error, `cannot pull ${model} into ${server.endpoint}: ${(error as Error).message}`);
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  report(
    "ready",
    `${model} pulled into ${server.endpoint} in ${seconds} s${total > 0 ? ` (${formatBytes(total)})` : ""}`,
  );
}

/** The model lifecycles of one set of services: started when they serve, stopped when replaced. */
export class ModelLifecycles {
  readonly #preparations: readonly Omit<ModelPreparation, "report">[];
  readonly #controller = new AbortController();

  constructor(preparations: readonly Omit<ModelPreparation, "report">[]) {
    this.#preparations = preparations;
  }

  /** Prepares every model at once; resolves when all are ready or the lifecycles were stopped. */
  async start(report: (provider: string, model: string, lifecycle: ModelLifecycle) => void): Promise<void> {
    await Promise.all(
      this.#preparations.map((p) =>
        prepareModel(
          { ...p, report: (lifecycle) => report(p.provider, p.model, lifecycle) },
          this.#controller.signal,
        ),
      ),
    );
  }

  /** Ends checks and pulls under way (their connections close) and the waits between attempts. */
  stop(): void {
    this.#controller.abort(new Error("the sidecar's services were replaced or closed"));
  }
}
