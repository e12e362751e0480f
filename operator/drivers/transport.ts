// What a driver needs from the way it reaches a host: run a command, move files, open the
// host's Unix sockets. The SSH connection (ssh/connection.ts) provides it for hosts, and a
// connection through a host for the guests on it.
import type { Duplex, Readable, Writable } from "node:stream";
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

/** A terminal's size in character cells. */
export interface TerminalSize {
  rows: number;
  cols: number;
}

export interface SessionOptions {
  /** Run the command on a pseudo-terminal of this size (its stderr then comes on stdout). */
  terminal?: TerminalSize;
}

/**
 * A command running on the host with its streams open (an attach, an interactive exec): what
 * is written to `stdin` reaches it, `stdout` and `stderr` carry what it writes.
 */
export interface CommandSession {
  stdin: Writable;
  stdout: Readable;
  /** Empty when the command runs on a terminal. */
  stderr: Readable;
  /** Tells the command's terminal its new size (no effect without a terminal). */
  resize(size: TerminalSize): void;
  /** Settles when the command has ended and its output is read: its exit status, null on a signal. */
  readonly ended: Promise<{ exitCode: number | null; signal?: string }>;
  /** Ends the session: the command loses its terminal (SIGHUP) and its input. */
  close(): void;
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
  /**
   * Starts a command with its streams open. The call bounds the opening; once open the session
   * lasts until the command ends, `close()`, or the call's signal aborts.
   */
  openSession(command: string, options: SessionOptions, call: Call): Promise<CommandSession>;
  /** A byte stream to a Unix socket on the host; ends when either side closes. */
  openUnixSocket(path: string, call: Call): Promise<Duplex>;
}

/** Quotes one argument for a POSIX shell. */
export function shellQuote(arg: string): string {
  // Not a leading '=': zsh expands `=word` to the path of the command `word`.
  if (arg !== "" && /^[A-Za-z0-9_@%+:,./-][A-Za-z0-9_@%+=:,./-]*$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** A command line from an argument vector. */
export function shellCommand(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}
