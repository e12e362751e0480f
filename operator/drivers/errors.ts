// The errors every driver throws: one base class with a code a caller can switch on and a
// `retryable` flag, and one subclass per case the reconciler must tell apart.

export type DriverErrorCode =
  | "NotFound"
  | "AlreadyExists"
  | "CreationFailed"
  | "ResourceLimit"
  | "Network"
  | "Timeout"
  | "Authentication"
  | "Authorization"
  | "HostKeyMismatch"
  | "UnsupportedBackendVersion";

export interface DriverErrorOptions {
  /** Overrides the code's default: whether the same call may succeed later unchanged. */
  retryable?: boolean;
  cause?: unknown;
}

export class DriverError extends Error {
  readonly code: DriverErrorCode;
  readonly retryable: boolean;

  constructor(code: DriverErrorCode, message: string, retryable: boolean, options: DriverErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = `${code}Error`;
    this.code = code;
    this.retryable = options.retryable ?? retryable;
  }
}

/** The object asked for does not exist on the host. */
export class NotFoundError extends DriverError {
  constructor(what: string, options?: DriverErrorOptions) {
    super("NotFound", `${what} not found`, false, options);
  }
}

export class AlreadyExistsError extends DriverError {
  constructor(what: string, options?: DriverErrorOptions) {
    super("AlreadyExists", `${what} already exists`, false, options);
  }
}

/** The backend refused or failed to create something; `retryable` says whether trying again can help. */
export class CreationFailedError extends DriverError {
  constructor(message: string, options?: DriverErrorOptions) {
    super("CreationFailed", message, false, options);
  }
}

/** The host is out of something (memory, disk, channels): it may free up. */
export class ResourceLimitError extends DriverError {
  constructor(message: string, options?: DriverErrorOptions) {
    super("ResourceLimit", message, true, options);
  }
}

/** The host or its backend could not be reached, or the connection broke. */
export class NetworkError extends DriverError {
  constructor(message: string, options?: DriverErrorOptions) {
    super("Network", message, true, options);
  }
}

/** A call ran past its deadline. */
export class TimeoutError extends DriverError {
  constructor(what: string, timeoutMs: number, options?: DriverErrorOptions) {
    super("Timeout", `${what} did not finish within ${timeoutMs} ms`, true, options);
  }
}

/** The host refused our credentials: an admin must authorize the key. */
export class AuthenticationError extends DriverError {
  constructor(message: string, options?: DriverErrorOptions) {
    super("Authentication", message, false, options);
  }
}

/** Logged in, but not allowed to do this (file permissions, socket access). */
export class AuthorizationError extends DriverError {
  constructor(message: string, options?: DriverErrorOptions) {
    super("Authorization", message, false, options);
  }
}

/** The host presented another key than the pinned one: never connect, name both. */
export class HostKeyMismatchError extends DriverError {
  readonly host: string;
  readonly expected: string;
  readonly presented: string;

  constructor(host: string, expected: string, presented: string) {
    super(
      "HostKeyMismatch",
      `host key of ${host} does not match the pinned key: expected ${expected}, presented ${presented}`,
      false,
    );
    this.host = host;
    this.expected = expected;
    this.presented = presented;
  }
}

export class UnsupportedBackendVersionError extends DriverError {
  readonly backend: string;
  readonly version: string;

  constructor(backend: string, version: string, supported: string, options?: DriverErrorOptions) {
    super(
      "UnsupportedBackendVersion",
      `${backend} ${version} is not supported (need ${supported})`,
      false,
      options,
    );
    this.backend = backend;
    this.version = version;
  }
}

export function isDriverError(err: unknown): err is DriverError {
  return err instanceof DriverError;
}
