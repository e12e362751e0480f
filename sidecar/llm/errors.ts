// What went wrong with a provider call, and whether trying again (or another provider) can
// help: the routing decisions all hinge on this classification.

export type ErrorClass =
  | "throttled"
  | "unavailable"
  | "timeout"
  | "connection"
  | "invalid_request"
  | "auth"
  | "not_found"
  | "unsupported"
  | "cancelled";

const RETRYABLE: ReadonlySet<ErrorClass> = new Set(["throttled", "unavailable", "timeout", "connection"]);

export function isRetryable(errorClass: ErrorClass): boolean {
  return RETRYABLE.has(errorClass);
}

/** A failed call to one provider; the message names the provider and what it said. */
export class ProviderError extends Error {
  readonly provider: string;
  readonly errorClass: ErrorClass;
  /** HTTP status the provider answered with, when it answered at all. */
  readonly status: number | undefined;

  constructor(provider: string, errorClass: ErrorClass, message: string, status?: number) {
    super(message);
    this.name = "ProviderError";
    this.provider = provider;
    this.errorClass = errorClass;
    this.status = status;
  }
}

/** No configured provider can honour a field of the request as the agent meant it; nothing was sent. */
export class RefusedError extends Error {
  /** The field as the agent's API names it, for example response_format or options.num_ctx. */
  readonly field: string;

  constructor(field: string, message: string) {
    super(message);
    this.name = "RefusedError";
    this.field = field;
  }
}

/** The agent's request may not proceed now; it may after retryAfterMs. */
export class RateLimitedError extends Error {
  readonly retryAfterMs: number;
  readonly scope: string;

  constructor(scope: string, retryAfterMs: number, message: string) {
    super(message);
    this.name = "RateLimitedError";
    this.scope = scope;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The agent already received part of the answer when the provider failed. */
export class StreamInterruptedError extends Error {
  override readonly cause: ProviderError;

  constructor(cause: ProviderError) {
    super(
      `provider "${cause.provider}" failed after the answer had started (${cause.errorClass}): ${cause.message}; the partial answer was not retried, to avoid duplicated text`,
    );
    this.name = "StreamInterruptedError";
    this.cause = cause;
  }
}

export function classifyHttpStatus(status: number): ErrorClass {
  if (status === 429) return "throttled";
  if (status === 408 || status === 504) return "timeout";
  if (status >= 500) return "unavailable";
  if (status === 401 || status === 403) return "auth";
  if (status === 404) return "not_found";
  return "invalid_request";
}

// Exception names of the Bedrock runtime API (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html).
const BEDROCK_EXCEPTIONS: Readonly<Record<string, ErrorClass>> = {
  ThrottlingException: "throttled",
  ServiceQuotaExceededException: "throttled",
  ServiceUnavailableException: "unavailable",
  ModelNotReadyException: "unavailable",
  InternalServerException: "unavailable",
  ModelStreamErrorException: "unavailable",
  ModelErrorException: "unavailable",
  ModelTimeoutException: "timeout",
  ValidationException: "invalid_request",
  AccessDeniedException: "auth",
  UnrecognizedClientException: "auth",
  ExpiredTokenException: "auth",
  InvalidSignatureException: "auth",
  ResourceNotFoundException: "not_found",
};

export function classifyBedrockException(name: string, status: number | undefined): ErrorClass {
  return BEDROCK_EXCEPTIONS[name] ?? (status === undefined ? "unavailable" : classifyHttpStatus(status));
}

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "UND_ERR_SOCKET",
]);

/** Classifies an error thrown by a socket or an SDK before any HTTP status is known. */
export function classifyTransportError(error: unknown): ErrorClass | undefined {
  const e = error as { code?: unknown; name?: unknown; cause?: unknown } | null;
  if (e === null || typeof e !== "object") return undefined;
  if (e.name === "AbortError" || e.name === "TimeoutError") return "timeout";
  if (typeof e.code === "string" && CONNECTION_CODES.has(e.code)) return "connection";
  return e.cause === undefined ? undefined : classifyTransportError(e.cause);
}
