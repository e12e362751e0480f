// One multiplexed SSH connection per host (the ControlMaster idea): every exec, file transfer
// and forwarded socket of every caller is a channel on it. The host key is pinned; keepalives
// notice a dead peer; a lost connection is re-opened on the next call, attempts spaced by
// jittered backoff; channels are bounded below sshd's MaxSessions.
import { randomBytes } from "node:crypto";
import { type Duplex, PassThrough } from "node:stream";
import type ssh2 from "ssh2";
import type { BackoffPolicy } from "../backoff.ts";
import { bounded, type Call, sleep, within } from "../call.ts";
import { type DriverError, HostKeyMismatchError, NetworkError } from "../errors.ts";
import { ssh2Package } from "../on-demand.ts";
import type {
  CommandResult,
  CommandSession,
  ExecOptions,
  FileToWrite,
  HostTransport,
  ReadFileOptions,
  SessionOptions,
  WriteFileOptions,
} from "../transport.ts";
import { shellQuote } from "../transport.ts";
import { ChannelLimit } from "./channel-limit.ts";
import { fingerprint, hostKeyAlgorithms, parsePublicKey } from "./host-key.ts";
import { nextAttemptAt, reconnectStep } from "./reconnect.ts";
import { connectError, sftpError } from "./ssh-errors.ts";

type Client = InstanceType<typeof ssh2.Client>;
type ClientChannel = Parameters<Parameters<Client["exec"]>[1]>[1];
type SFTPWrapper = Parameters<Parameters<Client["sftp"]>[0]>[1];

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  /** The client's private key, OpenSSH or PEM text. */
  privateKey: string;
  /** The pinned host key, one OpenSSH public key line. */
  hostKey: string;
  /**
   * Opens the byte stream SSH runs over, instead of TCP to host:port: a KVM guest reached
   * through its host's connection (kvm/guest-link.ts).
   */
  connectStream?: (call: Call) => Promise<Duplex>;
}

export interface SshOptions {
  /** Seconds between keepalives, and how many may go unanswered before the connection is dropped. */
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  /** Most time for TCP connect, key exchange and login. */
  readyTimeoutMs: number;
  /** Most channels open at once; keep it below the host's MaxSessions (10 by default). */
  maxChannels: number;
  reconnect: BackoffPolicy;
  random: () => number;
}

export const DEFAULT_SSH_OPTIONS: SshOptions = {
  keepaliveIntervalMs: 5_000,
  keepaliveCountMax: 3,
  readyTimeoutMs: 10_000,
  maxChannels: 8,
  reconnect: { initialMs: 500, maxMs: 30_000 },
  random: Math.random,
};

const DEFAULT_MAX_OUTPUT = 1024 * 1024;

export class SshConnection implements HostTransport {
  readonly target: string;
  readonly hostKeyFingerprint: string;
  readonly #config: SshTarget;
  readonly #options: SshOptions;
  readonly #pinned: ReturnType<typeof parsePublicKey>;
  readonly #channels: ChannelLimit;
  #client: Client | undefined;
  #connecting: Promise<Client> | undefined;
  #failures = 0;
  #nextAttemptAt = 0;
  #lastError: DriverError | undefined;
  #closed = false;
  /** Aborted by close(): ends a handshake or a stream being opened for one. */
  readonly #closing = new AbortController();
  /** Connections opened so far (1 after the first connect); tests and metrics read it. */
  connects = 0;

  constructor(target: SshTarget, options: Partial<SshOptions> = {}) {
    this.#config = target;
    this.#options = { ...DEFAULT_SSH_OPTIONS, ...options };
    this.target = `${target.username}@${target.host}:${target.port}`;
    this.#pinned = parsePublicKey(target.hostKey);
    this.hostKeyFingerprint = fingerprint(this.#pinned.blob);
    this.#channels = new ChannelLimit(this.#options.maxChannels);
  }

  get connected(): boolean {
    return this.#client !== undefined;
  }

  get channelsInUse(): number {
    return this.#channels.inUse;
  }

  /** The open connection, or a new one; concurrent callers share one attempt. */
  async connection(call: Call): Promise<Client> {
    if (this.#closed) throw new NetworkError(`connection to ${this.target} is closed`);
    if (this.#client) return this.#client;
    if (!this.#connecting) {
      const step = reconnectStep(
        Date.now(),
        this.#nextAttemptAt,
        call.deadline,
        this.#lastError !== undefined,
      );
      if (step.action === "fail" && this.#lastError) throw this.#lastError;
      if (step.action === "wait") {
        await sleep(step.ms, call.signal);
        if (this.#client) return this.#client;
      }
      this.#connecting ??= this.#connect().finally(() => {
        this.#connecting = undefined;
      });
    }
    const attempt = this.#connecting;
    return bounded(call, `SSH connect to ${this.target}`, () => attempt);
  }

  #connect(): Promise<Client> {
    return new Promise((resolve, reject) => {
      const client = new (ssh2Package().Client)();
      let presented: Buffer | undefined;
      let settled = false;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        this.#closing.signal.removeEventListener("abort", onClose);
        const error =
          presented !== undefined && !presented.equals(this.#pinned.blob)
            ? new HostKeyMismatchError(this.target, this.hostKeyFingerprint, fingerprint(presented))
            : connectError(err, this.target, this.#options.readyTimeoutMs);
        this.#failures++;
        this.#lastError = error;
        this.#nextAttemptAt = nextAttemptAt(
          Date.now(),
          this.#failures,
          this.#options.reconnect,
          this.#options.random(),
        );
        client.end();
        reject(error);
      };
      // Closed while connecting (its caller gave up): the handshake ends now, not at its timeout.
      const onClose = () => {
        // end() alone leaves open a socket that has not finished its handshake.
        client.destroy();
        fail(new NetworkError(`connection to ${this.target} is closed`));
      };
      this.#closing.signal.addEventListener("abort", onClose, { once: true });
      client.on("ready", () => {
        if (settled) return client.end();
        settled = true;
        this.#closing.signal.removeEventListener("abort", onClose);
        this.#failures = 0;
        this.#nextAttemptAt = 0;
        this.#lastError = undefined;
        this.#client = client;
        this.connects++;
        resolve(client);
      });
      client.on("error", fail);
      client.on("close", () => {
        if (this.#client === client) this.#client = undefined;
        fail(new NetworkError(`${this.target} closed the connection`));
      });
      const handshake = (sock: Duplex | undefined) =>
        client.connect({
          ...(sock === undefined ? {} : { sock }),
          host: this.#config.host,
          port: this.#config.port,
          username: this.#config.username,
          privateKey: this.#config.privateKey,
          // ssh2 accepts any host key unless told otherwise: only the pinned key's bytes pass.
          hostVerifier: (key: Buffer) => {
            presented = Buffer.from(key);
            return presented.equals(this.#pinned.blob);
          },
          algorithms: { serverHostKey: hostKeyAlgorithms(this.#pinned.type) as never },
          keepaliveInterval: this.#options.keepaliveIntervalMs,
          keepaliveCountMax: this.#options.keepaliveCountMax,
          readyTimeout: this.#options.readyTimeoutMs,
        });
      const open = this.#config.connectStream;
      if (open === undefined) handshake(undefined);
      else open(within(this.#options.readyTimeoutMs, this.#closing.signal)).then(handshake, fail);
    });
  }

  /**
   * Opens a channel with `open` under the channel bound; `release` must be called when it closes.
   * A channel the host opens after the call gave up on it is closed with `discard` at once: left
   * open it would hold one of the host's sessions (sshd's MaxSessions) with nobody to end it.
   */
  async #channel<T>(
    call: Call,
    what: string,
    open: (client: Client, cb: (err: Error | undefined, value: T) => void) => void,
    discard: (value: T) => void,
  ) {
    const client = await this.connection(call);
    const release = await this.#channels.acquire(call, what);
    let abandoned = false;
    try {
      const value = await bounded(
        call,
        what,
        () =>
          new Promise<T>((resolve, reject) => {
            open(client, (err, v) => {
              if (err)
                return reject(new NetworkError(`${what} on ${this.target}: ${err.message}`, { cause: err }));
              if (abandoned) return discard(v);
              resolve(v);
            });
          }),
      );
      return { value, release };
    } catch (err) {
      abandoned = true;
      release();
      throw err;
    }
  }

  async exec(command: string, options: ExecOptions, call: Call): Promise<CommandResult> {
    const what = `exec ${JSON.stringify(command.length > 80 ? `${command.slice(0, 77)}...` : command)}`;
    const { value: channel, release } = await this.#channel<ClientChannel>(
      call,
      what,
      (c, cb) => c.exec(withPidReport(command), cb as never),
      (late) => late.close(),
    );
    // The permit goes back when the channel is closed on both sides, not before.
    channel.once("close", release);
    const max = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
    const pid = new PidReport();
    const done = new Promise<CommandResult>((resolve, reject) => {
      const out = new Collector(max);
      const err = new Collector(max);
      let exit: { code: number | null; signal?: string } | undefined;
      channel.on("data", (chunk: Buffer) => {
        out.add(chunk);
        options.onStdout?.(chunk);
      });
      channel.stderr.on("data", (raw: Buffer) => {
        const chunk = pid.strip(raw);
        if (chunk.length === 0) return;
        err.add(chunk);
        options.onStderr?.(chunk);
      });
      channel.on("exit", (code: number | null, signalName?: string) => {
        exit = signalName ? { code: null, signal: signalName } : { code };
      });
      channel.on("close", () => {
        if (!exit)
          return reject(
            new NetworkError(`${what}: ${this.target} closed the channel without an exit status`),
          );
        resolve({
          exitCode: exit.code,
          ...(exit.signal ? { signal: exit.signal } : {}),
          stdout: out.text(),
          stderr: err.text(),
        });
      });
      if (options.stdin !== undefined) channel.end(options.stdin);
      else channel.end();
    });
    try {
      return await bounded(call, `${what} on ${this.target}`, () => done);
    } catch (err) {
      // Past the deadline or cancelled: the command must not outlive the call.
      done.catch(() => {});
      channel.close();
      // sshd runs no "signal" request for root sessions (no privilege separation there), and a
      // closed channel does not stop a command that writes nothing: kill its process group.
      if (pid.value !== undefined)
        this.exec(`kill -KILL -- -${pid.value} 2>/dev/null`, {}, within(10_000)).catch(() => {});
      throw err;
    }
  }

  async openSession(command: string, options: SessionOptions, call: Call): Promise<CommandSession> {
    const what = `session ${JSON.stringify(command.length > 80 ? `${command.slice(0, 77)}...` : command)}`;
    const terminal = options.terminal;
    // Without a terminal, the pid report lets a close kill what the command started; with one,
    // sshd hangs the terminal up on close (SIGHUP), and the report would land on its screen.
    const { value: channel, release } = await this.#channel<ClientChannel>(
      call,
      what,
      (c, cb) =>
        terminal === undefined
          ? c.exec(withPidReport(command), cb as never)
          : c.exec(
              command,
              {
                pty: {
                  rows: terminal.rows,
                  cols: terminal.cols,
                  height: 0,
                  width: 0,
                  term: "xterm-256color",
                },
              },
              cb as never,
            ),
      (late) => late.close(),
    );
    channel.once("close", release);
    const pid = new PidReport();
    const stderr = new PassThrough();
    channel.stderr.on("data", (raw: Buffer) => {
      const chunk = terminal === undefined ? pid.strip(raw) : raw;
      if (chunk.length > 0) stderr.write(chunk);
    });
    let exit: { exitCode: number | null; signal?: string } | undefined;
    channel.on("exit", (code: number | null, signalName?: string) => {
      exit = signalName ? { exitCode: null, signal: signalName } : { exitCode: code };
    });
    const ended = new Promise<{ exitCode: number | null; signal?: string }>((resolve) =>
      channel.once("close", () => {
        stderr.end();
        call.signal.removeEventListener("abort", close);
        resolve(exit ?? { exitCode: null, signal: "HUP" });
      }),
    );
    const close = () => {
      if (exit === undefined && pid.value !== undefined)
        this.exec(`kill -KILL -- -${pid.value} 2>/dev/null`, {}, within(10_000)).catch(() => {});
      channel.close();
      // The channel closes once its output has been read to the end: what nobody reads is dropped.
      channel.resume();
      stderr.resume();
    };
    call.signal.addEventListener("abort", close, { once: true });
    return {
      stdin: channel,
      stdout: channel,
      stderr,
      resize: (size) => {
        if (terminal !== undefined) channel.setWindow(size.rows, size.cols, 0, 0);
      },
      ended,
      close,
    };
  }

  async #sftp<T>(call: Call, what: string, work: (sftp: SFTPWrapper) => Promise<T>): Promise<T> {
    const { value: sftp, release } = await this.#channel<SFTPWrapper>(
      call,
      `SFTP ${what}`,
      (c, cb) => c.sftp(cb as never),
      (late) => late.end(),
    );
    try {
      return await bounded(call, `SFTP ${what} on ${this.target}`, () => work(sftp));
    } finally {
      sftp.end();
      release();
    }
  }

  writeFile(path: string, data: string | Buffer, options: WriteFileOptions, call: Call): Promise<void> {
    return this.writeFiles([{ path, data, options }], call);
  }

  async writeFiles(files: readonly FileToWrite[], call: Call): Promise<void> {
    if (files.length === 0) return;
    const what = files.length === 1 ? `write ${files[0]?.path}` : `write ${files.length} files`;
    // One SFTP session for all: each session is a subsystem the host starts anew.
    await this.#sftp(call, what, async (sftp) => {
      const p = promisified(sftp);
      for (const { path, data, options } of files) {
        const temporary = `${path}.tmp-${randomBytes(6).toString("hex")}`;
        const mode = options.mode ?? 0o600;
        try {
          const handle = await p.open(temporary, "w", mode);
          try {
            const bytes = typeof data === "string" ? Buffer.from(data) : data;
            for (let offset = 0; offset < bytes.length; ) {
              const length = Math.min(32 * 1024, bytes.length - offset);
              await p.write(handle, bytes, offset, length, offset);
              offset += length;
            }
            // The umask applies to open's mode; set it explicitly.
            await p.fchmod(handle, mode);
            if (options.uid !== undefined || options.gid !== undefined)
              await p.fchown(handle, options.uid ?? 0, options.gid ?? 0);
          } finally {
            await p.close(handle);
          }
          await p.rename(temporary, path);
        } catch (err) {
          await p.unlink(temporary).catch(() => {});
          throw sftpError(err, this.target, path);
        }
      }
    });
  }

  async readFile(path: string, options: ReadFileOptions, call: Call): Promise<Buffer> {
    return this.#sftp(call, `read ${path}`, async (sftp) => {
      const p = promisified(sftp);
      try {
        const handle = await p.open(path, "r", 0);
        try {
          const { size } = await p.fstat(handle);
          const start = options.tailBytes === undefined ? 0 : Math.max(0, size - options.tailBytes);
          const buffer = Buffer.alloc(size - start);
          let filled = 0;
          while (filled < buffer.length) {
            const n = await p.read(
              handle,
              buffer,
              filled,
              Math.min(32 * 1024, buffer.length - filled),
              start + filled,
            );
            if (n === 0) break;
            filled += n;
          }
          return buffer.subarray(0, filled);
        } finally {
          await p.close(handle);
        }
      } catch (err) {
        throw sftpError(err, this.target, path);
      }
    });
  }

  async openUnixSocket(path: string, call: Call): Promise<Duplex> {
    const { value: stream, release } = await this.#channel<ClientChannel>(
      call,
      `open socket ${path}`,
      (c, cb) => c.openssh_forwardOutStreamLocal(path, cb as never),
      (late) => late.close(),
    );
    stream.once("close", release);
    return stream;
  }

  /** Closes the connection and refuses further calls. */
  close(): void {
    this.#closed = true;
    this.#closing.abort(new NetworkError(`connection to ${this.target} is closed`));
    this.#client?.end();
    this.#client = undefined;
  }

  /** Drops the current connection (the next call reconnects); for a changed key or spec. */
  reset(): void {
    this.#client?.end();
    this.#client = undefined;
  }
}

const PID_MARKER = "agenttype-exec-pid ";

/** The command, first reporting on stderr the pid of the shell sshd started: its process group. */
export function withPidReport(command: string): string {
  return `printf '${PID_MARKER}%s\\n' "$$" >&2; eval ${shellQuote(command)}`;
}

/** Takes the pid report off the head of a stderr stream and passes the rest through. */
export class PidReport {
  value: number | undefined;
  #head: Buffer | undefined = Buffer.alloc(0);

  strip(chunk: Buffer): Buffer {
    if (this.#head === undefined) return chunk;
    const head = Buffer.concat([this.#head, chunk]);
    const newline = head.indexOf(10);
    if (newline < 0) {
      this.#head = head;
      return Buffer.alloc(0);
    }
    this.#head = undefined;
    const line = head.subarray(0, newline).toString();
    if (!line.startsWith(PID_MARKER)) return head;
    const value = Number(line.slice(PID_MARKER.length));
    if (Number.isInteger(value) && value > 1) this.value = value;
    return head.subarray(newline + 1);
  }
}

/** Keeps at most `max` bytes of a stream, as text. */
class Collector {
  readonly #chunks: Buffer[] = [];
  #size = 0;
  readonly #max: number;
  constructor(max: number) {
    this.#max = max;
  }
  add(chunk: Buffer): void {
    if (this.#size >= this.#max) return;
    const part = chunk.subarray(0, this.#max - this.#size);
    this.#chunks.push(part);
    this.#size += part.length;
  }
  text(): string {
    return Buffer.concat(this.#chunks).toString("utf8");
  }
}

// The SFTP calls used here, as promises; errors keep ssh2's SFTP status code for sftpError.
function promisified(sftp: SFTPWrapper) {
  const call = <T>(fn: (cb: (err: Error | null | undefined, value?: T) => void) => void) =>
    new Promise<T>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value as T))));
  return {
    open: (path: string, flags: "r" | "w", mode: number) =>
      call<Buffer>((cb) => sftp.open(path, flags, { mode }, cb as never)),
    write: (handle: Buffer, data: Buffer, offset: number, length: number, position: number) =>
      call<void>((cb) => sftp.write(handle, data, offset, length, position, cb as never)),
    read: (handle: Buffer, buffer: Buffer, offset: number, length: number, position: number) =>
      call<number>((cb) => sftp.read(handle, buffer, offset, length, position, cb as never)),
    fstat: (handle: Buffer) => call<{ size: number }>((cb) => sftp.fstat(handle, cb as never)),
    fchmod: (handle: Buffer, mode: number) => call<void>((cb) => sftp.fchmod(handle, mode, cb as never)),
    fchown: (handle: Buffer, uid: number, gid: number) =>
      call<void>((cb) => sftp.fchown(handle, uid, gid, cb as never)),
    close: (handle: Buffer) => call<void>((cb) => sftp.close(handle, cb as never)),
    // posix-rename@openssh.com replaces an existing file, as rename(2) does.
    rename: (from: string, to: string) => call<void>((cb) => sftp.ext_openssh_rename(from, to, cb as never)),
    unlink: (path: string) => call<void>((cb) => sftp.unlink(path, cb as never)),
  };
}
