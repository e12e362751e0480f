// What a driver needs from the way it reaches a host: run a command, move files, open the
// host's Unix sockets. The SSH connection (ssh/connection.ts) provides it for hosts, and a
// connection through a host for the guests on it.
import type { Duplex } from "node:stream";
import type { Call } from "./call.ts";

export interface ExecOptions {
  /** Bytes written to the command's standard input, then closed. */
  stdin?: string | Buffer;
  /** Called with each chunk as it arrives (streaming); the result still holds the whole output. */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Most bytes of each stream kept in the result (default 1 MiB); the rest is dropped. */
  maxOutputBytes?: number;
}

export interface CommandResult {
  /** Exit status; null when the command died of a signal. */
  exitCode: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

export interface WriteFileOptions {
  mode?: number;
  uid?: number;
  gid?: number;
}

export interface FileToWrite {
  path: string;
  data: string | Buffer;
  options: WriteFileOptions;
}

export interface ReadFileOptions {
  /** Read only the last `tailBytes` bytes of the file. */
  tailBytes?: number;
}

export interface HostTransport {
  /** A label for messages: user@host:port. */
  readonly target: string;
  /** Runs a shell command line on the host. */
  exec(command: string, options: ExecOptions, call: Call): Promise<CommandResult>;
  /** Writes a whole file, atomically (a temporary file renamed into place). */
  writeFile(path: string, data: string | Buffer, options: WriteFileOptions, call: Call): Promise<void>;
  /**
   * Writes several whole files in order, each atomically, over one session: a file is in place
   * before the next is begun, so the last can mark the others complete.
   */
  writeFiles(files: readonly FileToWrite[], call: Call): Promise<void>;
  readFile(path: string, options: ReadFileOptions, call: Call): Promise<Buffer>;
  /** A byte stream to a Unix socket on the host; ends when either side closes. */
  openUnixSocket(path: string, call: Call): Promise<Duplex>;
}

/** Quotes one argument for a POSIX shell. */
export function shellQuote(arg: string): string {
  if (arg !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** A command line from an argument vector. */
export function shellCommand(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}
