// The one place where a driver failure becomes what a reconciler writes: a condition reason and
// message, whether the Event is a Warning, and when to look again. Pure.
import { InvalidConfigError } from "./config.ts";
import { type DriverErrorCode, HostKeyMismatchError, isDriverError } from "./errors.ts";

export interface ErrorCondition {
  /** CamelCase condition reason, for example `HostKeyMismatch`. */
  reason: string;
  message: string;
  retryable: boolean;
  /**
   * When to reconcile again without a change of the object. Non-retryable failures still come
   * back, slowly: an admin fixes them on the host (authorizes the key, frees disk), not in the spec.
   */
  requeueAfterMs: number;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;

const byCode: Record<DriverErrorCode, { reason: string; requeueAfterMs: number }> = {
  NotFound: { reason: "NotFound", requeueAfterMs: 10 * SECOND },
  AlreadyExists: { reason: "AlreadyExists", requeueAfterMs: 10 * SECOND },
  CreationFailed: { reason: "CreationFailed", requeueAfterMs: 30 * SECOND },
  ResourceLimit: { reason: "ResourceLimit", requeueAfterMs: 30 * SECOND },
  Network: { reason: "HostUnreachable", requeueAfterMs: 10 * SECOND },
  Timeout: { reason: "Timeout", requeueAfterMs: 10 * SECOND },
  Authentication: { reason: "AuthenticationFailed", requeueAfterMs: MINUTE },
  Authorization: { reason: "Forbidden", requeueAfterMs: MINUTE },
  HostKeyMismatch: { reason: "HostKeyMismatch", requeueAfterMs: 5 * MINUTE },
  UnsupportedBackendVersion: { reason: "UnsupportedVersion", requeueAfterMs: 5 * MINUTE },
};

// Condition messages are bounded in the API (32 KiB); keep them readable in `kubectl describe`.
const MAX_MESSAGE = 1024;

function clip(message: string): string {
  return message.length <= MAX_MESSAGE ? message : `${message.slice(0, MAX_MESSAGE - 1)}…`;
}

export function errorCondition(err: unknown): ErrorCondition {
  if (isDriverError(err)) {
    const { reason, requeueAfterMs } = byCode[err.code];
    const message =
      err instanceof HostKeyMismatchError
        ? `host ${err.host} presented key ${err.presented}, but ${err.expected} is pinned; refusing to connect`
        : err.message;
    return {
      reason,
      message: clip(message),
      retryable: err.retryable,
      requeueAfterMs: err.retryable ? Math.min(requeueAfterMs, 30 * SECOND) : requeueAfterMs,
    };
  }
  if (err instanceof InvalidConfigError)
    return {
      reason: "InvalidConfig",
      message: clip(err.message),
      retryable: false,
      requeueAfterMs: 5 * MINUTE,
    };
  // Anything else is a bug or an unforeseen failure: say so, and try again at a modest pace.
  const message = err instanceof Error ? err.message : String(err);
  return { reason: "DriverFailed", message: clip(message), retryable: true, requeueAfterMs: 30 * SECOND };
}
