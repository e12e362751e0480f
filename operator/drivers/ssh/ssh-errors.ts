// What an ssh2 failure means for a caller: which DriverError it becomes. Pure.
import {
  AuthenticationError,
  AuthorizationError,
  CreationFailedError,
  type DriverError,
  isDriverError,
  NetworkError,
  NotFoundError,
  TimeoutError,
} from "../errors.ts";

interface Ssh2Error {
  message?: string;
  level?: string;
  code?: string | number;
}

// Socket errors that say the host or its sshd is not there (yet): worth retrying.
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/** A connection-level failure (connect, handshake, login) of `target` as a DriverError. */
export function connectError(err: unknown, target: string, readyTimeoutMs: number): DriverError {
  if (isDriverError(err)) return err;
  const e = (err ?? {}) as Ssh2Error;
  const message = e.message ?? String(err);
  if (e.level === "client-authentication")
    return new AuthenticationError(
      `${target} refused the operator's key (${message}): add its public key to authorized_keys`,
      { cause: err },
    );
  if (e.level === "client-timeout")
    return new TimeoutError(`SSH handshake with ${target}`, readyTimeoutMs, { cause: err });
  if (e.level === "client-dns")
    return new NetworkError(`cannot resolve ${target}: ${message}`, { cause: err });
  if (typeof e.code === "string" && NETWORK_CODES.has(e.code))
    return new NetworkError(`cannot reach ${target}: ${e.code}`, { cause: err });
  return new NetworkError(`SSH connection to ${target} failed: ${message}`, { cause: err });
}

// SFTP status codes (draft-ietf-secsh-filexfer-02 section 7).
const SFTP_NO_SUCH_FILE = 2;
const SFTP_PERMISSION_DENIED = 3;

/** An SFTP failure on `path` as a DriverError. */
export function sftpError(err: unknown, target: string, path: string): DriverError {
  if (isDriverError(err)) return err;
  const e = (err ?? {}) as Ssh2Error;
  if (e.code === SFTP_NO_SUCH_FILE) return new NotFoundError(`${path} on ${target}`, { cause: err });
  if (e.code === SFTP_PERMISSION_DENIED)
    return new AuthorizationError(`permission denied on ${path} on ${target}`, { cause: err });
  const message = `SFTP on ${target} failed for ${path}: ${e.message ?? String(err)}`;
  // A status code is the server's answer (disk full, bad path); none means the channel broke.
  if (typeof e.code === "number") return new CreationFailedError(message, { cause: err });
  return new NetworkError(message, { cause: err });
}
