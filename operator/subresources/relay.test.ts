// The relay between a WebSocket client and a session, over real sockets on this machine: a
// client that stops reading holds the session's output back (bounded memory in the operator),
// and once it reads again every byte arrives, in order, then the exit status.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { PassThrough, Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import type { CommandSession } from "../drivers/transport.ts";
import { CLIENT_QUEUE_HIGH, relay } from "./relay.ts";

const CHUNK = 64 * 1024;
const TOTAL = 64 * 1024 * 1024;

/** A session whose command writes TOTAL bytes (a counter's bytes) as fast as they are taken. */
function fastWriter() {
  let produced = 0;
  const stdout = new Readable({
    read() {
      if (produced >= TOTAL) return void this.push(null);
      const chunk = Buffer.alloc(CHUNK, produced / CHUNK);
      produced += CHUNK;
      this.push(chunk);
    },
  });
  const stderr = Readable.from([]);
  const session: CommandSession = {
    stdin: new PassThrough(),
    stdout,
    stderr,
    resize: () => undefined,
    ended: once(stdout, "end").then(() => ({ exitCode: 0 })),
    close: () => stdout.destroy(),
  };
  return { session, produced: () => produced };
}

describe("relaying a session to a WebSocket client", () => {
  let server: WebSocketServer | undefined;
  afterEach(() => server?.close());

  it("holds the output back while the client does not read, and delivers all of it once it does", async () => {
    server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await once(server, "listening");
    const writer = fastWriter();
    const relayed = new Promise<unknown>((resolve) =>
      server?.once("connection", (ws) =>
        resolve(relay(ws, new AbortController().signal, { terminal: false }, async () => writer.session)),
      ),
    );
    const client = new WebSocket(
      `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
      "v5.channel.k8s.io",
    );
    await once(client, "open");
    client.pause();
    await new Promise((r) => setTimeout(r, 1500));
    const whilePaused = writer.produced();
    // The queue's high mark, socket buffers and a stream's read-ahead: far from all of it.
    expect(whilePaused).toBeGreaterThan(CLIENT_QUEUE_HIGH);
    expect(whilePaused).toBeLessThan(TOTAL / 4);

    let received = 0;
    let inOrder = true;
    let status: unknown;
    client.on("message", (data: Buffer) => {
      if (data[0] === 1) {
        for (let at = 1; at < data.length; at++)
          if (data[at] !== Math.floor((received + at - 1) / CHUNK) % 256) inOrder = false;
        received += data.length - 1;
      } else if (data[0] === 3) status = JSON.parse(data.subarray(1).toString("utf8"));
    });
    const closed = once(client, "close");
    client.resume();
    await closed;
    expect(received).toBe(TOTAL);
    expect(inOrder).toBe(true);
    expect(status).toEqual({ metadata: {}, status: "Success" });
    expect(await relayed).toMatchObject({ bytesOut: TOTAL + JSON.stringify(status).length });
  }, 30_000);
});
