// What a CRI (gRPC) failure means for a caller: which DriverError it becomes. Pure.
import {
  AlreadyExistsError,
  AuthenticationError,
  AuthorizationError,
  CreationFailedError,
  type DriverError,
  isDriverError,
  NetworkError,
  NotFoundError,
  ResourceLimitError,
  TimeoutError,
  UnsupportedBackendVersionError,
} from "../errors.ts";

// gRPC status codes (grpc/doc/statuscodes.md).
export const GrpcStatus = {
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

interface GrpcError {
  code?: number;
  details?: string;
  message?: string;
}

/** A failed CRI call `what` (for example "CreateContainer agent") as a DriverError. */
export function criError(err: unknown, what: string, timeoutMs: number): DriverError {
  if (isDriverError(err)) return err;
  const e = (err ?? {}) as GrpcError;
  const detail = e.details || e.message || String(err);
  const message = `${what}: ${detail}`;
  switch (e.code) {
    case GrpcStatus.NOT_FOUND:
      return new NotFoundError(what, { cause: err });
    case GrpcStatus.ALREADY_EXISTS:
      return new AlreadyExistsError(what, { cause: err });
    case GrpcStatus.DEADLINE_EXCEEDED:
      return new TimeoutError(what, timeoutMs, { cause: err });
    case GrpcStatus.UNAVAILABLE:
      return new NetworkError(`containerd is unreachable (${message})`, { cause: err });
    case GrpcStatus.UNAUTHENTICATED:
      return new AuthenticationError(message, { cause: err });
    case GrpcStatus.PERMISSION_DENIED:
      return new AuthorizationError(message, { cause: err });
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return new ResourceLimitError(message, { cause: err });
    case GrpcStatus.UNIMPLEMENTED:
      return new UnsupportedBackendVersionError(
        "containerd CRI",
        "without runtime.v1",
        "CRI runtime.v1 (containerd >= 1.6)",
        { cause: err },
      );
  }
  // containerd answers some conditions with UNKNOWN and a text: recognise the stable ones.
  if (/\bnot found\b/i.test(detail)) return new NotFoundError(what, { cause: err });
  if (/is reserved for|already exists/i.test(detail))
    return new AlreadyExistsError(`${what} (${detail})`, { cause: err });
  if (/no space left on device|cannot allocate memory/i.test(detail))
    return new ResourceLimitError(message, { cause: err });
  return new CreationFailedError(message, { cause: err });
}
