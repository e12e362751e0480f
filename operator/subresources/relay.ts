// A session on a host (attach, an interactive exec) relayed over the API server's channel
// protocol on a WebSocket: stdin 0, stdout 1, stderr 2, status 3, resize 4, and v5's close 255.
// A slow client holds the session's output back, not the operator's memory.
import type { WebSocket } from "ws";
import type { CommandSession, TerminalSize } from "../drivers/transport.ts";

/** What a relayed session came to, for the audit line. */
export interface Relayed {
  bytesIn: number;
  bytesOut: number;
  exitCode?: number;
  failure?: string;
}

/** The terminal a session starts on until the client says its size (channel 4). */
const DEFAULT_TERMINAL: TerminalSize = { rows: 24, cols: 80 };
/** How long a session waits for the client's first resize (client-node sends it at once). */
const FIRST_RESIZE_WAIT_MS = 1_000;
/** Bytes queued to a client past which the session's output waits, and below which it flows. */
export const CLIENT_QUEUE_HIGH = 1024 * 1024;
const CLIENT_QUEUE_LOW = 256 * 1024;

/**
 * Relays a session's streams over the channel protocol: channel 0 to its stdin, 4 (resize) to
 * its terminal, 255 (v5: close) ends its stdin; its stdout on 1, stderr on 2, and when it ends,
 * its exit status on 3. A closed WebSocket closes the session, which leaves the agent running.
 */
export async function relay(
  ws: WebSocket,
  signal: AbortSignal,
  options: { terminal: boolean },
  open: (size: TerminalSize) => Promise<CommandSession>,
): Promise<Relayed> {
  const { terminal } = options;
  const relayed: Relayed = { bytesIn: 0, bytesOut: 0 };
  const send = (channel: number, data: Buffer | string, sent?: () => void) => {
    const payload = Buffer.from(data);
    if (ws.readyState !== ws.OPEN) return;
    relayed.bytesOut += payload.length;
    ws.send(Buffer.concat([Buffer.from([channel]), payload]), sent);
  };
  // What the client sends before the session is open waits for it (its first resize, keys).
  let session: CommandSession | undefined;
  const early: Buffer[] = [];
  let sized: (size: TerminalSize) => void = () => undefined;
  const firstSize = new Promise<TerminalSize>((resolve) => {
    sized = resolve;
    setTimeout(() => resolve(DEFAULT_TERMINAL), terminal ? FIRST_RESIZE_WAIT_MS : 0).unref();
  });
  const receive = (frame: Buffer) => {
    if (session === undefined) {
      const size = frame[0] === 4 ? terminalSize(frame.subarray(1)) : undefined;
      if (size !== undefined) sized(size);
      return void early.push(frame);
    }
    const channel = frame[0];
    const payload = frame.subarray(1);
    if (channel === 0) {
      relayed.bytesIn += payload.length;
      session.stdin.write(payload);
    } else if (channel === 4) {
      const size = terminalSize(payload);
      if (size !== undefined) session.resize(size);
    } else if (channel === 255 && payload[0] === 0) session.stdin.end();
  };
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (isBinary || Buffer.isBuffer(data)) receive(Buffer.from(data));
  });
  try {
    session = await open(await firstSize);
  } catch (error) {
    relayed.failure = (error as Error).message;
    send(
      3,
      JSON.stringify({ metadata: {}, status: "Failure", message: relayed.failure, reason: "InternalError" }),
    );
    ws.close(1000);
    return relayed;
  }
  const opened = session;
  const closeSession = () => opened.close();
  ws.on("close", closeSession);
  signal.addEventListener("abort", closeSession, { once: true });
  // The client left while the session opened: nobody will close it but us.
  if (signal.aborted || ws.readyState !== ws.OPEN) closeSession();
  opened.stdin.on("error", () => undefined);
  for (const frame of early.splice(0)) receive(frame);
  // Past the high mark of bytes queued to the client the session's output pauses (SSH's window
  // then stops the command's writes on the host), and flows again once the queue is below the low.
  const outputs = [opened.stdout, opened.stderr];
  let held = false;
  const drained = () => {
    if (!held || ws.bufferedAmount > CLIENT_QUEUE_LOW) return;
    held = false;
    for (const output of outputs) output.resume();
  };
  const sendOutput = (channel: number, chunk: Buffer) => {
    send(channel, chunk, drained);
    if (held || ws.bufferedAmount <= CLIENT_QUEUE_HIGH) return;
    held = true;
    for (const output of outputs) output.pause();
  };
  opened.stdout.on("data", (chunk: Buffer) => sendOutput(1, chunk));
  opened.stderr.on("data", (chunk: Buffer) => sendOutput(2, chunk));
  const end = await opened.ended;
  signal.removeEventListener("abort", closeSession);
  if (!signal.aborted) {
    if (end.exitCode !== null) relayed.exitCode = end.exitCode;
    else relayed.failure = `ended by signal ${end.signal ?? "unknown"}`;
    send(
      3,
      JSON.stringify(
        end.exitCode !== null
          ? exitStatus(end.exitCode)
          : { metadata: {}, status: "Failure", message: relayed.failure, reason: "InternalError" },
      ),
    );
    ws.close(1000);
  }
  return relayed;
}

/**
 * A resize message's size: `{"Width":80,"Height":24}`, keys in any case (Go's JSON decoding,
 * which kubelet's is, ignores case, and client-node sends `width` and `height`).
 */
function terminalSize(payload: Buffer): TerminalSize | undefined {
  let message: unknown;
  try {
    message = JSON.parse(payload.toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof message !== "object" || message === null) return undefined;
  const field = (name: string) =>
    Object.entries(message).find(([key]) => key.toLowerCase() === name)?.[1] as unknown;
  const cols = field("width");
  const rows = field("height");
  if (!Number.isInteger(cols) || !Number.isInteger(rows) || (cols as number) < 1 || (rows as number) < 1)
    return undefined;
  return { rows: Math.min(rows as number, 1000), cols: Math.min(cols as number, 1000) };
}

/** The Status the channel protocol ends an exec with: Success, or the exit code as kubelet words it. */
export function exitStatus(exitCode: number): Record<string, unknown> {
  return exitCode === 0
    ? { metadata: {}, status: "Success" }
    : {
        metadata: {},
        status: "Failure",
        message: `command terminated with non-zero exit code: ${exitCode}`,
        reason: "NonZeroExitCode",
        details: { causes: [{ reason: "ExitCode", message: String(exitCode) }] },
      };
}
