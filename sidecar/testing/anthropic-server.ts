// A local server that speaks Anthropic's Messages API as Anthropic does: POST /v1/messages
// with x-api-key and anthropic-version, its event stream (message_start, ping, content_block_*,
// message_delta, message_stop, and `event: error` mid-stream), its error objects
// (`{"type": "error", "error": {"type", "message"}}`) for a bad key, an unknown model, extra
// inputs, a missing max_tokens and tool results without their tool_use; scripted faults for
// tests. What it honours: system, tools and tool_choice, stop_sequences, max_tokens, thinking,
// output_config.format, images.
import { createHash } from "node:crypto";
import type http from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  chunkFault,
  echoed,
  json,
  madeUpAnswer,
  promptTokens,
  type RecordedRequest,
  ScriptedServer,
  sampleOf,
} from "./scripted-server.ts";

const MESSAGE_FIELDS = new Set([
  "model",
  "messages",
  "max_tokens",
  "system",
  "stream",
  "temperature",
  "top_p",
  "top_k",
  "stop_sequences",
  "tools",
  "tool_choice",
  "thinking",
  "metadata",
  "service_tier",
  "output_config",
  "container",
  "context_management",
  "mcp_servers",
  "inference_geo",
]);

const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  529: "overloaded_error",
};

type Block = {
  type?: string;
  text?: string;
  id?: string;
  tool_use_id?: string;
  source?: { type?: string; media_type?: string };
  content?: unknown;
};
type Message = { role?: string; content?: string | Block[] };

export class AnthropicServer extends ScriptedServer {
  readonly #apiKey: string | undefined;
  readonly #models: string[];

  constructor(options: { apiKey?: string; models?: string[] } = {}) {
    super();
    this.#apiKey = options.apiKey;
    this.#models = options.models ?? ["claude-sonnet-4-5", "claude-haiku-4-5"];
  }

  protected error(res: ServerResponse, status: number, type: string, message: string): void {
    json(res, status, {
      type: "error",
      error: { type, message },
      request_id: `req_${createHash("sha256").update(message).digest("hex").slice(0, 24)}`,
    });
  }

  protected async route(req: IncomingMessage, res: ServerResponse, request: RecordedRequest): Promise<void> {
    if (this.#apiKey !== undefined && req.headers["x-api-key"] !== this.#apiKey)
      return this.error(res, 401, "authentication_error", "invalid x-api-key");
    if (req.headers["anthropic-version"] === undefined)
      return this.error(res, 400, "invalid_request_error", "anthropic-version: header is required");
    if (`${request.method} ${request.path}` !== "POST /v1/messages")
      return this.error(res, 404, "not_found_error", "Not Found");
    return this.#messages(res, request.body, req.headers);
  }

  /** What Anthropic answers 400 for; undefined when the request is valid. */
  #invalid(body: Record<string, unknown>): string | undefined {
    const extra = Object.keys(body).find((k) => !MESSAGE_FIELDS.has(k));
    if (extra !== undefined) return `${extra}: Extra inputs are not permitted`;
    if (typeof body.max_tokens !== "number") return "max_tokens: Field required";
    if (!Array.isArray(body.messages)) return "messages: Field required";
    const messages = body.messages as Message[];
    let previousToolUses = new Set<string>();
    for (const [i, m] of messages.entries()) {
      if (m.role !== "user" && m.role !== "assistant")
        return `messages.${i}.role: Input should be 'user' or 'assistant'`;
      const blocks = typeof m.content === "string" ? [] : (m.content ?? []);
      for (const [j, block] of blocks.entries()) {
        if (block.type === "tool_result" && !previousToolUses.has(block.tool_use_id ?? ""))
          return `messages.${i}.content.${j}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${block.tool_use_id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`;
        if (
          block.type === "image" &&
          !["image/jpeg", "image/png", "image/gif", "image/webp"].includes(block.source?.media_type ?? "")
        )
          return `messages.${i}.content.${j}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'`;
        if (block.type === "tool_use" && m.role !== "assistant")
          return `messages.${i}.content.${j}: tool_use blocks may appear in assistant messages only`;
      }
      previousToolUses = new Set(blocks.filter((b) => b.type === "tool_use").map((b) => b.id ?? ""));
    }
    if (
      body.tool_choice !== undefined &&
      !Array.isArray(body.tools) &&
      (body.tool_choice as { type?: string }).type !== "none"
    )
      return "tool_choice: tool_choice may only be specified while providing tools.";
    return undefined;
  }

  async #messages(
    res: ServerResponse,
    body: Record<string, unknown>,
    headers: http.IncomingHttpHeaders,
  ): Promise<void> {
    const model = body.model;
    if (typeof model !== "string" || !this.#models.includes(model))
      return this.error(res, 404, "not_found_error", `model: ${String(model)}`);
    const invalid = this.#invalid(body);
    if (invalid !== undefined) return this.error(res, 400, "invalid_request_error", invalid);
    const scenario = this.nextScenario();
    if (await this.fault(res, scenario, headers, echo, typeOf)) return;
    const messages = body.messages as Message[];
    const lastUser = messages.filter((m) => m.role === "user").at(-1);
    const blocks: Block[] =
      typeof lastUser?.content === "string"
        ? [{ type: "text", text: lastUser.content }]
        : (lastUser?.content ?? []);
    const prompt = blocks
      .filter((b) => b.type === "text")
      .map((b) => b.text)
      .join(" ");
    const images = blocks.filter((b) => b.type === "image").length;
    let text = scenario.text ?? `You said: ${prompt}${images === 0 ? "" : ` (and ${images} image(s))`}`;
    const format = (body.output_config as { format?: { type?: string; schema?: unknown } } | undefined)
      ?.format;
    if (format?.type === "json_schema") text = JSON.stringify(sampleOf(format.schema));
    const answer = madeUpAnswer(text, (body.stop_sequences ?? []) as string[], body.max_tokens as number);
    const thinkingType = (body.thinking as { type?: string } | undefined)?.type;
    const thinking =
      thinkingType === "enabled" || thinkingType === "adaptive" ? `Thinking about "${prompt}".` : "";
    const toolUses = this.#toolUses(body, scenario);
    const stopReason =
      toolUses.length > 0
        ? "tool_use"
        : answer.cut
          ? "max_tokens"
          : answer.stoppedBy !== undefined
            ? "stop_sequence"
            : "end_turn";
    const stopSequence = stopReason === "stop_sequence" ? (answer.stoppedBy ?? null) : null;
    const inputTokens = promptTokens([body.system, messages, body.tools]);
    const id = `msg_${createHash("sha256").update(JSON.stringify(body)).digest("hex").slice(0, 24)}`;
    const content: object[] = [];
    if (thinking !== "") content.push({ type: "thinking", thinking, signature: "c2lnbmF0dXJl" });
    const textOut = answer.chunks.join("");
    if (textOut !== "" || toolUses.length === 0) content.push({ type: "text", text: textOut });
    content.push(...toolUses);
    const usage = (output: number) => ({
      input_tokens: inputTokens,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      output_tokens: output,
      service_tier: "standard",
    });
    if (body.stream !== true)
      return json(res, 200, {
        id,
        type: "message",
        role: "assistant",
        model,
        content,
        stop_reason: stopReason,
        stop_sequence: stopSequence,
        usage: usage(answer.chunks.length),
      });
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
    const send = (event: string, data: object) =>
      res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
    send("message_start", {
      message: {
        id,
        type: "message",
        role: "assistant",
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: usage(1),
      },
    });
    send("ping", {});
    let index = 0;
    if (thinking !== "") {
      send("content_block_start", {
        index,
        content_block: { type: "thinking", thinking: "", signature: "" },
      });
      send("content_block_delta", { index, delta: { type: "thinking_delta", thinking } });
      send("content_block_delta", { index, delta: { type: "signature_delta", signature: "c2lnbmF0dXJl" } });
      send("content_block_stop", { index });
      index++;
    }
    if (textOut !== "" || toolUses.length === 0) {
      send("content_block_start", { index, content_block: { type: "text", text: "" } });
      for (const [i, chunk] of answer.chunks.entries()) {
        const next = await chunkFault(res, scenario, i, () => {
          const echoedText = scenario.echoAuthorization === true ? ` (you sent ${echo(headers)})` : "";
          res.end(
            `event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "overloaded_error", message: `Overloaded${echoedText}` } })}\n\n`,
          );
        });
        if (next === "gone") this.abandoned++;
        if (next !== "write") return;
        send("content_block_delta", { index, delta: { type: "text_delta", text: chunk } });
      }
      send("content_block_stop", { index });
      index++;
    }
    for (const use of toolUses) {
      const input = JSON.stringify(use.input);
      const half = Math.floor(input.length / 2);
      send("content_block_start", { index, content_block: { ...use, input: {} } });
      send("content_block_delta", {
        index,
        delta: { type: "input_json_delta", partial_json: input.slice(0, half) },
      });
      send("content_block_delta", {
        index,
        delta: { type: "input_json_delta", partial_json: input.slice(half) },
      });
      send("content_block_stop", { index });
      index++;
    }
    send("message_delta", {
      delta: { stop_reason: stopReason, stop_sequence: stopSequence },
      usage: { output_tokens: answer.chunks.length },
    });
    send("message_stop", {});
    res.end();
  }

  /** The tool_use blocks of the answer: the scenario's, or one forced by tool_choice any or tool. */
  #toolUses(
    body: Record<string, unknown>,
    scenario: { toolCalls?: { name: string; arguments: Record<string, unknown> }[] },
  ) {
    const tools = (body.tools ?? []) as { name?: string; input_schema?: unknown }[];
    const choice = body.tool_choice as { type?: string; name?: string } | undefined;
    let calls = scenario.toolCalls ?? [];
    if (choice?.type === "none") calls = [];
    else if (calls.length === 0 && tools.length > 0 && (choice?.type === "any" || choice?.type === "tool")) {
      const name = choice.type === "tool" ? choice.name : tools[0]?.name;
      const tool = tools.find((t) => t.name === name);
      calls = [{ name: name ?? "", arguments: sampleOf(tool?.input_schema) as Record<string, unknown> }];
    }
    return calls.map((c, i) => ({
      type: "tool_use" as const,
      id: `toolu_${createHash("sha256").update(`${c.name}${i}`).digest("hex").slice(0, 24)}`,
      name: c.name,
      input: c.arguments,
    }));
  }
}

function echo(headers: http.IncomingHttpHeaders): string {
  return echoed("x-api-key", headers["x-api-key"] as string | undefined);
}

function typeOf(status: number): string {
  return ERROR_TYPES[status] ?? (status >= 500 ? "api_error" : "invalid_request_error");
}
