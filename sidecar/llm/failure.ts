// What the agent is told when its LLM request fails: an HTTP status its client library
// understands (429 and 5xx make the openai and ollama clients retry; 4xx does not) and a
// message saying what to do. Upstream texts in it are stripped of every credential the
// sidecar holds, and upstream headers never reach it.
import type { FastifyReply } from "fastify";
import type { Redactor } from "../redact.ts";
import { ProviderError, RateLimitedError, RefusedError, StreamInterruptedError } from "./errors.ts";

export interface Failure {
  status: number;
  /** OpenAI's error type, for the OpenAI-compatible API. */
  type: "invalid_request_error" | "rate_limit_error" | "api_error";
  code: string;
  message: string;
  /** The request field at fault, when one is. */
  param?: string;
  retryAfterSeconds?: number;
}

/** Seconds an agent is told to wait when every provider throttled it. */
const THROTTLED_RETRY_AFTER_S = 1;

/** Longest message the agent is told; upstream texts (an HTML error page, say) can be long. */
const MESSAGE_MAX_CHARS = 2000;

export function describeFailure(error: unknown, redact: Redactor): Failure {
  const failure = classify(error);
  // Credentials go first: a cut made before could split one past recognition.
  const message = redact.text(failure.message);
  return {
    ...failure,
    message: message.length > MESSAGE_MAX_CHARS ? `${message.slice(0, MESSAGE_MAX_CHARS)}…` : message,
  };
}

function classify(error: unknown): Failure {
  if (error instanceof RateLimitedError) {
    return {
      status: 429,
      type: "rate_limit_error",
      code: "rate_limit_exceeded",
      message: error.message,
      retryAfterSeconds: Math.max(1, Math.ceil(error.retryAfterMs / 1000)),
    };
  }
  if (error instanceof RefusedError) {
    return {
      status: 400,
      type: "invalid_request_error",
      code: "unsupported_parameter",
      message: error.message,
      param: error.field,
    };
  }
  if (error instanceof StreamInterruptedError) {
    return { status: 502, type: "api_error", code: "stream_interrupted", message: error.message };
  }
  if (!(error instanceof ProviderError)) {
    return {
      status: 500,
      type: "api_error",
      code: "internal_error",
      message: `sidecar error: ${String(error)}`,
    };
  }
  switch (error.errorClass) {
    case "invalid_request":
      return { status: 400, type: "invalid_request_error", code: "invalid_request", message: error.message };
    case "unsupported":
      return { status: 501, type: "invalid_request_error", code: "unsupported", message: error.message };
    case "throttled":
      return {
        status: 429,
        type: "rate_limit_error",
        code: "provider_throttled",
        message: `every provider is throttling; last: ${error.message}`,
        retryAfterSeconds: THROTTLED_RETRY_AFTER_S,
      };
    case "auth":
      return {
        status: 502,
        type: "api_error",
        code: "provider_auth",
        message: `${error.message} — the provider refused the sidecar's credentials; check the credentials Secret of provider "${error.provider}"`,
      };
    case "not_found":
      return {
        status: 502,
        type: "api_error",
        code: "provider_not_found",
        message: `${error.message} — check the model and endpoint of provider "${error.provider}"`,
      };
    case "timeout":
      return { status: 504, type: "api_error", code: "provider_timeout", message: error.message };
    case "cancelled":
      return { status: 499, type: "api_error", code: "cancelled", message: error.message };
    default:
      return { status: 503, type: "api_error", code: "providers_unavailable", message: error.message };
  }
}

/**
 * Answers a failed request in the shape of the agent's protocol, with Retry-After when waiting
 * helps, and logs it (the message names provider and cause; prompts are never part of it).
 */
export function sendFailure(
  reply: FastifyReply,
  error: unknown,
  shape: (failure: Failure) => object,
  redact: Redactor,
): FastifyReply {
  const failure = describeFailure(error, redact);
  const entry = { status: failure.status, code: failure.code };
  if (failure.status >= 500) reply.log.warn(entry, failure.message);
  else reply.log.info(entry, failure.message);
  if (failure.retryAfterSeconds !== undefined) reply.header("retry-after", String(failure.retryAfterSeconds));
  return reply.code(failure.status).send(shape(failure));
}
