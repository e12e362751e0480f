import http, { type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type SseEvent, sseEventBatches, sseEvents } from "./sse.ts";

/** A server that writes each piece as its own write, a pause between them so they arrive as separate reads. */
let server: http.Server;
let pieces: string[] = [];
beforeAll(async () => {
  server = http.createServer(async (_req, res) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    for (const piece of pieces) {
      res.write(piece);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
});
afterAll(() => server.close());

function get(): Promise<IncomingMessage> {
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) =>
    http.get({ host: "127.0.0.1", port, signal: AbortSignal.timeout(5_000) }, resolve).on("error", reject),
  );
}

async function batches(sent: string[]): Promise<SseEvent[][]> {
  pieces = sent;
  const out: SseEvent[][] = [];
  for await (const batch of sseEventBatches(await get())) out.push(batch);
  return out;
}

describe("sseEventBatches", () => {
  test("the events completed by one read come as one batch, each with its raw text", async () => {
    const got = await batches(['data: {"a":1}\n\ndata: {"a":2}\n\n', "data: [DONE]\n\n"]);
    expect(got.map((b) => b.map((e) => e.data))).toEqual([['{"a":1}', '{"a":2}'], ["[DONE]"]]);
    expect(got[0]?.map((e) => e.raw)).toEqual(['data: {"a":1}\n\n', 'data: {"a":2}\n\n']);
  });

  test("an event split across reads comes whole with the read that ends it", async () => {
    const got = await batches(['data: {"a"', ":1}\n\ndata: x\n", "\n"]);
    expect(got.map((b) => b.map((e) => e.raw))).toEqual([['data: {"a":1}\n\n'], ["data: x\n\n"]]);
  });

  test("named events, several data lines, CRLF and CR endings, comments and a last event without its blank line", async () => {
    const got = await batches([
      ": keep-alive\n\n",
      'event: message_start\r\ndata: {"x":1}\r\n\r\n',
      "data: one\ndata: two\n\n",
      "data:no-space\r\r",
      "data: last",
    ]);
    expect(got.flat().map((e) => [e.event, e.data])).toEqual([
      ["message_start", '{"x":1}'],
      ["message", "one\ntwo"],
      ["message", "no-space"],
      ["message", "last"],
    ]);
    expect(got.flat()[0]?.raw).toBe('event: message_start\r\ndata: {"x":1}\r\n\r\n');
  });

  test("sseEvents gives the same events one by one", async () => {
    pieces = ["data: 1\n\ndata: 2\n\n", "data: 3\n\n"];
    const data: string[] = [];
    for await (const event of sseEvents(await get())) data.push(event.data);
    expect(data).toEqual(["1", "2", "3"]);
  });
});
