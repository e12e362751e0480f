// A local endpoint for @aws-sdk/client-bedrock-runtime: Converse answers JSON, ConverseStream
// answers AWS event-stream binary frames (prelude and message CRC32, :event-type,
// :content-type and :message-type headers), including exception frames mid-stream. It speaks
// HTTP/2, as Bedrock does and as the SDK's bedrock-runtime client insists on.
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import { crc32 } from "node:zlib";
import { echoed, sampleOf } from "./ollama-server.ts";

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

type Block = {
  text?: string;
  image?: { format?: string; source?: { bytes?: string } };
  toolUse?: unknown;
  toolResult?: unknown;
};
type ConverseMessage = { role: string; content: Block[] };
type ToolSpecJson = { toolSpec: { name: string; inputSchema?: { json?: unknown } } };

const IMAGE_MAGIC: Readonly<Record<string, (bytes: Buffer) => boolean>> = {
  png: (b) => b.subarray(0, 4).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47])),
  jpeg: (b) => b[0] === 0xff && b[1] === 0xd8,
  gif: (b) => b.subarray(0, 4).toString("latin1") === "GIF8",
  webp: (b) => b.subarray(8, 12).toString("latin1") === "WEBP",
};

/** The ValidationException message Bedrock answers a request with, or undefined when it is valid. */
function validationError(body: Record<string, unknown>, modelId: string): string | undefined {
  const messages = (body.messages ?? []) as ConverseMessage[];
  if (messages[0]?.role !== "user")
    return "A conversation must start with a user message. Try again with a conversation that starts with a user message.";
  for (const [i, m] of messages.entries()) {
    if (i > 0 && messages[i - 1]?.role === m.role)
      return "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.";
    for (const block of m.content) {
      if ((block.toolUse !== undefined || block.toolResult !== undefined) && body.toolConfig === undefined)
        return "The toolConfig field must be defined when using toolUse and toolResult content blocks.";
      if (block.image === undefined) continue;
      if (m.role !== "user") return "Images are only allowed in user messages.";
      const bytes = Buffer.from(block.image.source?.bytes ?? "", "base64");
      const magic = IMAGE_MAGIC[block.image.format ?? ""];
      if (magic === undefined || !magic(bytes))
        return "The provided image does not match the specified image format.";
    }
  }
  const anthropic = /(^|[.:/])anthropic\./.test(modelId);
  const extra = Object.keys((body.additionalModelRequestFields ?? {}) as object);
  const allowed = anthropic ? ["top_k", "thinking"] : [];
  const extraneous = extra.find((key) => !allowed.includes(key));
  if (extraneous !== undefined)
    return `The model returned the following errors: Malformed input request: extraneous key [${extraneous}] is not permitted`;
  const temperature = (body.inferenceConfig as { temperature?: number } | undefined)?.temperature;
  if (anthropic && temperature !== undefined && (temperature < 0 || temperature > 1))
    return "The model returned the following errors: temperature: range: 0..1";
  const schema = (body.outputConfig as { textFormat?: { structure?: { jsonSchema?: { schema?: unknown } } } })
    ?.textFormat?.structure?.jsonSchema?.schema;
  if (schema !== undefined) {
    try {
      if (typeof schema !== "string" || typeof JSON.parse(schema) !== "object")
        throw new Error("not an object");
    } catch {
      return "The JSON schema in outputConfig.textFormat is not a valid JSON schema object.";
    }
  }
  const toolConfig = body.toolConfig as
    | { tools?: ToolSpecJson[]; toolChoice?: { tool?: { name?: string } } }
    | undefined;
  const chosen = toolConfig?.toolChoice?.tool?.name;
  if (chosen !== undefined && !(toolConfig?.tools ?? []).some((t) => t.toolSpec.name === chosen))
    return `The tool ${chosen} named in toolChoice is not in toolConfig.tools.`;
  return undefined;
}

/**
 * The answer as a model bound by the request would give it: constrained to the output schema,
 * cut at a stop sequence or maxTokens, calling the tool that toolChoice demands.
 */
function answerOf(body: Record<string, unknown>, scenario: BedrockScenario) {
  const messages = (body.messages ?? []) as ConverseMessage[];
  const lastUser = messages.filter((m) => m.role === "user").at(-1);
  const images = (lastUser?.content ?? []).filter((c) => c.image !== undefined).map((c) => c.image?.format);
  const seen =
    images.length === 0 ? "" : ` (and ${images.length} ${[...new Set(images)].join("/")} image(s))`;
  let text = scenario.text ?? `You said: ${lastUser?.content.map((c) => c.text ?? "").join("") ?? ""}${seen}`;
  const schema = (body.outputConfig as { textFormat?: { structure?: { jsonSchema?: { schema?: string } } } })
    ?.textFormat?.structure?.jsonSchema?.schema;
  if (schema !== undefined) text = JSON.stringify(sampleOf(JSON.parse(schema)));
  let stopReason = "end_turn";
  const inference = (body.inferenceConfig ?? {}) as { maxTokens?: number; stopSequences?: string[] };
  const stopAt = Math.min(
    ...(inference.stopSequences ?? []).map((s) => text.indexOf(s)).filter((i) => i >= 0),
  );
  if (Number.isFinite(stopAt)) {
    text = text.slice(0, stopAt);
    stopReason = "stop_sequence";
  }
  const words = text.split(/(?<= )/);
  if (inference.maxTokens !== undefined && words.length > inference.maxTokens) {
    text = words.slice(0, inference.maxTokens).join("");
    stopReason = "max_tokens";
  }
  const toolConfig = body.toolConfig as
    | { tools?: ToolSpecJson[]; toolChoice?: { any?: object; tool?: { name: string } } }
    | undefined;
  let toolUse = scenario.toolUse;
  const forced =
    toolConfig?.toolChoice?.tool?.name ??
    (toolConfig?.toolChoice?.any ? toolConfig.tools?.[0]?.toolSpec.name : undefined);
  if (forced !== undefined && toolUse === undefined) {
    const spec = toolConfig?.tools?.find((t) => t.toolSpec.name === forced)?.toolSpec;
    toolUse = { name: forced, input: sampleOf(spec?.inputSchema?.json) as Record<string, unknown> };
  }
  if (toolUse !== undefined) stopReason = "tool_use";
  return { text, stopReason, toolUse };
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
    const invalid = validationError(body, decodeURIComponent(match[1] ?? ""));
    if (invalid !== undefined) return this.#exception(res, 400, "ValidationException", invalid);
    const answer = answerOf(body, scenario);
    const { text } = answer;
    const usage = {
      inputTokens: 12,
      outputTokens: text.split(" ").length,
      totalTokens: 12 + text.split(" ").length,
    };
    const { stopReason, toolUse } = answer;
    if (match[2] === "converse") {
      const content: unknown[] = [{ text }];
      if (toolUse !== undefined) {
        content.push({ toolUse: { toolUseId: "tooluse_1", name: toolUse.name, input: toolUse.input } });
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
    if (toolUse !== undefined) {
      const { name, input } = toolUse;
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
