// A local endpoint for @aws-sdk/client-bedrock-runtime: Converse answers JSON, ConverseStream
// answers AWS event-stream binary frames (prelude and message CRC32, :event-type,
// :content-type and :message-type headers), including exception frames mid-stream. It speaks
// HTTP/2, as Bedrock does and as the SDK's bedrock-runtime client insists on.
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import { crc32 } from "node:zlib";
import { echoed } from "./ollama-server.ts";

/** Encodes one event-stream message; every header value is a string (type 7). */
function encodeEventStreamMessage(headers: Record<string, string>, payload: Buffer): Buffer {
  const headerParts: Buffer[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const nameBytes = Buffer.from(name, "utf8");
    const valueBytes = Buffer.from(value, "utf8");
    const part = Buffer.alloc(1 + nameBytes.length + 1 + 2 + valueBytes.length);
    let at = part.writeUInt8(nameBytes.length, 0);
    at += nameBytes.copy(part, at);
    at = part.writeUInt8(7, at);
    at = part.writeUInt16BE(valueBytes.length, at);
    valueBytes.copy(part, at);
    headerParts.push(part);
  }
  const headerBytes = Buffer.concat(headerParts);
  const total = 12 + headerBytes.length + payload.length + 4;
  const message = Buffer.alloc(total);
  message.writeUInt32BE(total, 0);
  message.writeUInt32BE(headerBytes.length, 4);
  message.writeUInt32BE(crc32(message.subarray(0, 8)), 8);
  headerBytes.copy(message, 12);
  payload.copy(message, 12 + headerBytes.length);
  message.writeUInt32BE(crc32(message.subarray(0, total - 4)), total - 4);
  return message;
}

function eventFrame(type: string, body: unknown): Buffer {
  return encodeEventStreamMessage(
    { ":event-type": type, ":content-type": "application/json", ":message-type": "event" },
    Buffer.from(JSON.stringify(body)),
  );
}

function exceptionFrame(type: string, message: string): Buffer {
  return encodeEventStreamMessage(
    { ":exception-type": type, ":content-type": "application/json", ":message-type": "exception" },
    Buffer.from(JSON.stringify({ message })),
  );
}

export interface BedrockScenario {
  /** Answer the HTTP request with this status and modelled exception (ThrottlingException, ...). */
  status?: number;
  exception?: string;
  text?: string;
  toolUse?: { name: string; input: Record<string, unknown> };
  /** Send this stream exception (throttlingException, ...) after this many text deltas. */
  streamException?: { afterDeltas: number; type: string; message?: string };
  hang?: boolean;
  /** Add the request's Authorization and session token headers to the exception message. */
  echoAuthorization?: boolean;
}

export interface BedrockRecorded {
  path: string;
  headers: http2.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export class BedrockServer {
  readonly requests: BedrockRecorded[] = [];
  readonly #server: http2.Http2Server;
  readonly #scenarios: BedrockScenario[] = [];
  readonly #sessions = new Set<Http2Session>();

  constructor() {
    this.#server = http2.createServer((req, res) => void this.#handle(req, res));
    this.#server.on("session", (session: Http2Session) => {
      this.#sessions.add(session);
      session.on("close", () => this.#sessions.delete(session));
    });
  }

  enqueue(...scenarios: BedrockScenario[]): void {
    this.#scenarios.push(...scenarios);
  }

  listen(): Promise<string> {
    return new Promise((resolve) => this.#server.listen(0, "127.0.0.1", () => resolve(this.url)));
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    for (const session of this.#sessions) session.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: Http2ServerRequest, res: Http2ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<string, unknown>;
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname);
    this.requests.push({ path, headers: req.headers, body });
    const match = /^\/model\/(.+)\/(converse|converse-stream)$/.exec(path);
    if (match === null)
      return this.#exception(res, 404, "UnknownOperationException", `no operation at ${path}`);
    if (!String(req.headers.authorization ?? "").startsWith("AWS4-HMAC-SHA256 Credential=")) {
      return this.#exception(
        res,
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
      );
    }
    const scenario = this.#scenarios.shift() ?? {};
    if (scenario.hang === true) return;
    const echo =
      scenario.echoAuthorization === true
        ? ` (you sent ${echoed("Authorization", req.headers.authorization)} and ${echoed("X-Amz-Security-Token", String(req.headers["x-amz-security-token"] ?? ""))})`
        : "";
    if (scenario.status !== undefined) {
      return this.#exception(
        res,
        scenario.status,
        scenario.exception ?? "InternalServerException",
        `scripted failure${echo}`,
      );
    }
    const messages = (body.messages ?? []) as { role: string; content: { text?: string }[] }[];
    const lastUser = messages.filter((m) => m.role === "user").at(-1);
    const text = scenario.text ?? `You said: ${lastUser?.content.map((c) => c.text ?? "").join("") ?? ""}`;
    const usage = {
      inputTokens: 12,
      outputTokens: text.split(" ").length,
      totalTokens: 12 + text.split(" ").length,
    };
    const stopReason = scenario.toolUse === undefined ? "end_turn" : "tool_use";
    if (match[2] === "converse") {
      const content: unknown[] = [{ text }];
      if (scenario.toolUse !== undefined) {
        content.push({
          toolUse: { toolUseId: "tooluse_1", name: scenario.toolUse.name, input: scenario.toolUse.input },
        });
      }
      const out = JSON.stringify({
        output: { message: { role: "assistant", content } },
        stopReason,
        usage,
        metrics: { latencyMs: 5 },
      });
      res.writeHead(200, { "content-type": "application/json", "x-amzn-requestid": "req-1" }).end(out);
      return;
    }
    res.writeHead(200, { "content-type": "application/vnd.amazon.eventstream", "x-amzn-requestid": "req-1" });
    res.write(eventFrame("messageStart", { role: "assistant" }));
    const words = text.split(/(?<= )/);
    for (const [i, word] of words.entries()) {
      if (scenario.streamException?.afterDeltas === i) {
        const { type, message } = scenario.streamException;
        res.end(
          exceptionFrame(type, `${message ?? "Too many tokens, please wait before trying again."}${echo}`),
        );
        return;
      }
      res.write(eventFrame("contentBlockDelta", { contentBlockIndex: 0, delta: { text: word } }));
      await new Promise((resolve) => setImmediate(resolve));
    }
    res.write(eventFrame("contentBlockStop", { contentBlockIndex: 0 }));
    if (scenario.toolUse !== undefined) {
      const { name, input } = scenario.toolUse;
      const json = JSON.stringify(input);
      const half = Math.floor(json.length / 2);
      res.write(
        eventFrame("contentBlockStart", {
          contentBlockIndex: 1,
          start: { toolUse: { toolUseId: "tooluse_1", name } },
        }),
      );
      for (const piece of [json.slice(0, half), json.slice(half)]) {
        res.write(
          eventFrame("contentBlockDelta", { contentBlockIndex: 1, delta: { toolUse: { input: piece } } }),
        );
      }
      res.write(eventFrame("contentBlockStop", { contentBlockIndex: 1 }));
    }
    res.write(eventFrame("messageStop", { stopReason }));
    res.end(eventFrame("metadata", { usage, metrics: { latencyMs: 5 } }));
  }

  #exception(res: Http2ServerResponse, status: number, type: string, message: string): void {
    res
      .writeHead(status, {
        "content-type": "application/json",
        "x-amzn-errortype": `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`,
        "x-amzn-requestid": "req-err",
      })
      .end(JSON.stringify({ message }));
  }
}
