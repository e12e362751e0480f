// Reads a sidecar's GET /status on its pod's address and metrics port, under the bounds of
// docs/adr/0007: only for an AgentType whose sidecar reports trouble, one pod, at most once
// per READ_INTERVAL_MS per AgentType, within READ_TIMEOUT_MS, under one process-wide budget.
import { request } from "undici";
import { formatFieldErrors, parseAs } from "../../../api/field-errors.ts";
import { SIDECAR_STATUS_PATH, type SidecarStatus, sidecarStatus } from "../../../api/sidecarstatus.ts";
import { TokenBucket } from "../../engine/token-bucket.ts";
import { deadline, formatMs } from "../../kube/deadline.ts";
import type { PodView } from "./pods-status.ts";
import {
  type ProvidersObservation,
  READ_TIMEOUT_MS,
  ReadMemo,
  type SidecarRead,
  troubledSidecar,
} from "./providers-status.ts";

/** A sidecar's status is a few providers: anything longer is not one. */
const MAX_STATUS_BYTES = 64 * 1024;
/** Reads per second for the whole operator, and how many may go at once after a quiet time. */
export const READS_PER_SECOND = 10;
export const READ_BURST = 20;

export function statusUrl(ip: string, port: number): string {
  return `http://${ip.includes(":") ? `[${ip}]` : ip}:${port}${SIDECAR_STATUS_PATH}`;
}

/** One read; throws an Error saying what went wrong, or the caller's abort reason. */
export async function readSidecarStatus(
  url: string,
  signal: AbortSignal,
  timeoutMs = READ_TIMEOUT_MS,
): Promise<SidecarStatus> {
  const limit = deadline(timeoutMs, signal);
  try {
    const answer = await request(url, {
      method: "GET",
      signal: limit.signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      headers: { accept: "application/json" },
    });
    let body = "";
    for await (const chunk of answer.body) {
      body += chunk;
      if (body.length > MAX_STATUS_BYTES) {
        answer.body.destroy();
        throw new Error(`${url} answered more than ${MAX_STATUS_BYTES} bytes`);
      }
    }
    if (answer.statusCode !== 200) throw new Error(`${url} answered HTTP ${answer.statusCode}`);
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      throw new Error(`${url} answered something that is not JSON`);
    }
    const parsed = parseAs(sidecarStatus, json);
    if (!parsed.ok) {
      throw new Error(
        `${url} answered a status this operator does not understand: ${formatFieldErrors(parsed.errors).replaceAll("\n", "; ")}`,
      );
    }
    return parsed.value;
  } catch (error) {
    if (signal.aborted && !limit.expired) throw signal.reason;
    if (limit.expired) throw new Error(`${url}: no answer within ${formatMs(timeoutMs)}`);
    const { message, cause } = error as Error & { cause?: Error };
    throw new Error(`${message}${cause?.message ? ` (${cause.message})` : ""}`);
  } finally {
    limit.clear();
  }
}

export interface ProvidersReaderOptions {
  read?: typeof readSidecarStatus;
  perSecond?: number;
  burst?: number;
  now?: () => number;
}

/** The reconciler's view of providers: decides whether to read, reads, and remembers. */
export class ProvidersReader {
  readonly #memo = new ReadMemo();
  readonly #budget: TokenBucket;
  readonly #read: typeof readSidecarStatus;
  readonly #now: () => number;

  constructor(options: ProvidersReaderOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#read = options.read ?? readSidecarStatus;
    this.#budget = new TokenBucket(
      options.perSecond ?? READS_PER_SECOND,
      options.burst ?? READ_BURST,
      this.#now(),
    );
  }

  /**
   * What to report for AgentType `key` with these pods; undefined when a read is due but the
   * budget defers it and nothing was read before (the condition then stays as it is).
   */
  async observe(
    key: string,
    pods: readonly PodView[],
    metricsPort: number,
    signal: AbortSignal,
  ): Promise<ProvidersObservation | undefined> {
    const troubled = troubledSidecar(pods);
    if (troubled === undefined) {
      this.#memo.forget(key);
      return { sidecarsReady: true };
    }
    const now = this.#now();
    const fresh = this.#memo.fresh(key, now);
    if (fresh !== undefined) return { sidecarsReady: false, read: fresh };
    if (!this.#budget.tryTake(now)) {
      const last = this.#memo.last(key);
      return last === undefined ? undefined : { sidecarsReady: false, read: last };
    }
    let read: SidecarRead;
    try {
      const status = await this.#read(statusUrl(troubled.ip, metricsPort), signal);
      read = { pod: troubled.pod, at: now, status };
    } catch (error) {
      if (signal.aborted) throw error;
      read = { pod: troubled.pod, at: now, error: (error as Error).message };
    }
    this.#memo.remember(key, read);
    return { sidecarsReady: false, read };
  }

  /** The AgentType is gone. */
  forget(key: string): void {
    this.#memo.forget(key);
  }

  /** AgentTypes with a read remembered: those whose sidecars report trouble. */
  get remembered(): number {
    return this.#memo.size;
  }
}
