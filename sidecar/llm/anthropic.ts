// The Anthropic provider: the Messages API (https://docs.anthropic.com/en/api/messages), SSE
// when streaming. An agent's Messages request reaches it as the agent sent it, the model and
// the credentials changed, and the answer's bytes go back as they came (pass-through); every
// other agent API is translated here from the neutral shape.
import type { IncomingMessage } from "node:http";
import { readText, send, type Target, target } from "../http-client.ts";
import {
  assignDefined,
  type ChatEvent,
  type ChatMessage,
  type ChatRequest,
  type ChatResult,
  declaredTools,
  type StopReason,
  type ToolCall,
  type Unhonoured,
  type Usage,
} from "./chat.ts";
import { classifyHttpStatus, type ErrorClass, ProviderError } from "./errors.ts";
import { imageMediaType } from "./image-type.ts";
import type { LlmProvider } from "./provider.ts";
import { sseEvents } from "./sse.ts";

/**
 * max_tokens of a request that gives none: the Messages API requires one, and 4096 is the
 * most every Claude model takes. An answer it cuts says so (stop reason length).
 */
export const DEFAULT_MAX_TOKENS = 4096;

/** The levels of output_config.effort. */
const EFFORTS: ReadonlySet<unknown> = new Set(["low", "medium", "high", "max"]);

/** Anthropic's error types, classified; the status decides the rest. */
const ERROR_TYPES: Readonly<Record<string, ErrorClass>> = {
  overloaded_error: "unavailable",
  api_error: "unavailable",
  rate_limit_error: "throttled",
  timeout_error: "timeout",
  authentication_error: "auth",
  permission_error: "auth",
  not_found_error: "not_found",
  invalid_request_error: "invalid_request",
  request_too_large: "invalid_request",
};

export function classifyAnthropicError(type: string | undefined, status: number | undefined): ErrorClass {
  return (
    (type === undefined ? undefined : ERROR_TYPES[type]) ??
    (status === undefined ? "unavailable" : classifyHttpStatus(status))
  );
}

/** What of a request the Messages API cannot honour. */
export function anthropicUnhonoured(request: ChatRequest): Unhonoured | undefined {
  if (request.messages.some((m) => m.thinking !== undefined && m.thinking !== ""))
    return {
      feature: "thinking",
      reason:
        "the Messages API takes earlier thinking only with the signature it was given, which the history does not carry",
    };
  for (const m of request.messages) {
    if ((m.images?.length ?? 0) === 0) continue;
    if (m.role === "assistant" || m.role === "system")
      return {
        feature: "images",
        reason: `the Messages API takes images from the user only, not in ${m.role} messages`,
      };
    if (m.images?.some((image) => imageMediaType(image) === undefined))
      return { feature: "images", reason: "the Messages API takes png, jpeg, gif and webp images only" };
  }
  if (request.seed !== undefined) return { feature: "seed", reason: "the Messages API has no seed" };
  if ((request.frequencyPenalty ?? 0) !== 0)
    return { feature: "frequencyPenalty", reason: "the Messages API has no frequency penalty" };
  if ((request.presencePenalty ?? 0) !== 0)
    return { feature: "presencePenalty", reason: "the Messages API has no presence penalty" };
  if (request.responseFormat?.type === "json")
    return {
      feature: "responseFormat",
      reason: "the Messages API constrains output to a JSON schema only, not to any JSON; send a json_schema",
    };
  if (typeof request.think === "string" && !EFFORTS.has(request.think))
    return {
      feature: "think",
      reason: `the Messages API's effort takes low, medium, high or max, not "${request.think}"`,
    };
  if (request.logprobs !== undefined)
    return { feature: "logprobs", reason: "the Messages API returns no log probabilities" };
  if (request.choices !== undefined)
    return { feature: "choices", reason: "the Messages API answers with one choice per request" };
  if (request.serviceTier !== undefined)
    return { feature: "serviceTier", reason: `the Messages API has no ${request.serviceTier} service tier` };
  const metadataKeys = Object.keys(request.metadata ?? {});
  if (metadataKeys.some((k) => k !== "user_id"))
    return { feature: "metadata", reason: "the Messages API's metadata holds user_id only" };
  if (request.keepAlive !== undefined)
    return { feature: "keepAlive", reason: "Anthropic loads and unloads models itself" };
  const option = Object.keys(request.ollamaOptions ?? {})[0];
  if (option !== undefined)
    return { feature: `options.${option}`, reason: "the Messages API has no such setting" };
  return undefined;
}

type Block = Record<string, unknown>;

function imageBlocks(m: ChatMessage): Block[] {
  return (m.images ?? []).map((data) => ({
    type: "image",
    source: { type: "base64", media_type: imageMediaType(data), data },
  }));
}

/**
 * The Messages API wants system prompts apart and tool results as user content; consecutive
 * messages of one role are merged into one turn.
 */
export function toAnthropicBody(request: ChatRequest, model: string, options: { stream: boolean }): Block {
  const system = request.messages.filter((m) => m.role === "system").map((m) => m.content);
  const messages: { role: "user" | "assistant"; content: Block[] }[] = [];
  for (const m of request.messages) {
    if (m.role === "system") continue;
    const role = m.role === "assistant" ? "assistant" : "user";
    const content: Block[] = [];
    if (m.role === "tool") {
      content.push({
        type: "tool_result",
        tool_use_id: m.toolCallId ?? "",
        content: [{ type: "text", text: m.content }, ...imageBlocks(m)],
        ...(m.toolError === true ? { is_error: true } : {}),
      });
    } else {
      content.push(...imageBlocks(m));
      if (m.content !== "") content.push({ type: "text", text: m.content });
    }
    for (const call of m.toolCalls ?? [])
      content.push({ type: "tool_use", id: call.id, name: call.name, input: call.arguments });
    const previous = messages.at(-1);
    if (previous?.role === role) previous.content.push(...content);
    else messages.push({ role, content });
  }
  const body: Block = { model, max_tokens: request.maxTokens ?? DEFAULT_MAX_TOKENS, messages };
  if (options.stream) body.stream = true;
  if (system.length > 0) body.system = system.join("\n\n");
  assignDefined(body, {
    temperature: request.temperature,
    top_p: request.topP,
    top_k: request.topK,
    stop_sequences: request.stop,
  });
  const choice = request.toolChoice;
  const only = choice?.only;
  const tools = declaredTools(request);
  if (tools.length > 0) {
    body.tools = tools.map((t) => ({
      name: t.name,
      ...(t.description === undefined ? {} : { description: t.description }),
      input_schema: t.parameters ?? { type: "object", properties: {} },
      ...(t.strict === undefined ? {} : { strict: t.strict }),
    }));
    const type =
      choice?.mode === "none"
        ? "none"
        : choice?.mode === "required"
          ? only?.length === 1
            ? "tool"
            : "any"
          : "auto";
    const toolChoice: Block = { type };
    if (type === "tool") toolChoice.name = tools[0]?.name;
    if (request.parallelToolCalls === false && type !== "none") toolChoice.disable_parallel_tool_use = true;
    if (type !== "auto" || toolChoice.disable_parallel_tool_use === true) body.tool_choice = toolChoice;
  }
  const output: Block = {};
  const format = request.responseFormat;
  if (format?.type === "json_schema") output.format = { type: "json_schema", schema: format.schema };
  if (request.think === false) body.thinking = { type: "disabled" };
  else if (request.think !== undefined) {
    body.thinking = { type: "adaptive" };
    if (typeof request.think === "string") output.effort = request.think;
  }
  if (Object.keys(output).length > 0) body.output_config = output;
  const userId = request.metadata?.user_id;
  if (userId !== undefined) body.metadata = { user_id: userId };
  return body;
}

interface AnthropicBlock {
  type: string;
  text?: string;
  thinking?: string;
  id?: string;
  name?: string;
  input?: Record<string, unknown>;
}

export interface AnthropicUsage {
  input_tokens?: number;
  output_tokens?: number;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
}

/** Input tokens are the uncached ones plus those written to and read from the cache. */
export function anthropicUsage(usage: AnthropicUsage | undefined, previous?: Usage): Usage {
  const input =
    (usage?.input_tokens ?? 0) +
    (usage?.cache_creation_input_tokens ?? 0) +
    (usage?.cache_read_input_tokens ?? 0);
  return {
    inputTokens: input > 0 ? input : (previous?.inputTokens ?? 0),
    outputTokens: usage?.output_tokens ?? previous?.outputTokens ?? 0,
  };
}

function stopReasonOf(stop: string | null | undefined, sawToolCalls: boolean): StopReason {
  if (sawToolCalls || stop === "tool_use") return "tool_calls";
  return stop === "max_tokens" || stop === "model_context_window_exceeded" ? "length" : "stop";
}

/** The agent's body when it is a Messages request, which this provider takes as it came. */
function passedThrough(request: ChatRequest): Record<string, unknown> | undefined {
  return request.passThrough?.api === "anthropic-messages" ? request.passThrough.body : undefined;
}

export class AnthropicProvider implements LlmProvider {
  readonly name: string;
  readonly type = "anthropic";
  readonly passesThrough = ["anthropic-messages"] as const;
  readonly model: string;
  readonly #target: Target;
  readonly #headers: Record<string, string>;

  constructor(options: {
    name: string;
    endpoint: string;
    model: string;
    version: string;
    apiKey?: string;
    headers?: Record<string, string>;
  }) {
    this.name = options.name;
    this.model = options.model;
    this.#target = target(`${options.endpoint.replace(/\/+$/, "")}/v1/messages`);
    this.#headers = { ...options.headers, "anthropic-version": options.version };
    if (options.apiKey !== undefined) this.#headers["x-api-key"] = options.apiKey;
  }

  unhonoured(request: ChatRequest): Unhonoured | undefined {
    // A Messages request goes as it came: whatever it holds, the server reads as Anthropic's.
    return passedThrough(request) === undefined ? anthropicUnhonoured(request) : undefined;
  }

  #body(request: ChatRequest, stream: boolean): string {
    const agentBody = passedThrough(request);
    return JSON.stringify(
      agentBody === undefined
        ? toAnthropicBody(request, this.model, { stream })
        : { ...agentBody, model: this.model },
    );
  }

  async chat(request: ChatRequest, signal: AbortSignal): Promise<ChatResult> {
    const response = await this.post(this.#body(request, false), signal);
    const raw = await readText(response);
    const message = JSON.parse(raw) as {
      content?: AnthropicBlock[];
      stop_reason?: string | null;
      usage?: AnthropicUsage;
    };
    const blocks = message.content ?? [];
    const toolCalls: ToolCall[] = blocks
      .filter((b) => b.type === "tool_use")
      .map((b) => ({ id: b.id ?? "", name: b.name ?? "", arguments: b.input ?? {} }));
    return {
      text: blocks
        .filter((b) => b.type === "text")
        .map((b) => b.text ?? "")
        .join(""),
      thinking: blocks
        .filter((b) => b.type === "thinking")
        .map((b) => b.thinking ?? "")
        .join(""),
      toolCalls,
      stopReason: stopReasonOf(message.stop_reason, toolCalls.length > 0),
      usage: anthropicUsage(message.usage),
      ...(passedThrough(request) === undefined ? {} : { raw }),
    };
  }

  async *chatStream(request: ChatRequest, signal: AbortSignal): AsyncGenerator<ChatEvent> {
    const relay = passedThrough(request) !== undefined;
    const response = await this.post(this.#body(request, true), signal);
    // A tool_use block's input comes as fragments of JSON text, whole at its content_block_stop.
    const open = new Map<number, { id: string; name: string; json: string }>();
    let usage: Usage = { inputTokens: 0, outputTokens: 0 };
    let stop: string | null | undefined;
    let sawToolCalls = false;
    for await (const event of sseEvents(response)) {
      // An error event is not relayed: the router ends the stream with its own, credentials removed.
      if (relay && event.event !== "error") yield { type: "raw", text: event.raw };
      const data = JSON.parse(event.data) as {
        type: string;
        index?: number;
        message?: { usage?: AnthropicUsage };
        content_block?: AnthropicBlock;
        delta?: {
          type?: string;
          text?: string;
          thinking?: string;
          partial_json?: string;
          stop_reason?: string | null;
        };
        usage?: AnthropicUsage;
        error?: { type?: string; message?: string };
      };
      switch (data.type) {
        case "message_start":
          usage = anthropicUsage(data.message?.usage, usage);
          break;
        case "content_block_start":
          if (data.content_block?.type === "tool_use")
            open.set(data.index ?? 0, {
              id: data.content_block.id ?? "",
              name: data.content_block.name ?? "",
              json: "",
            });
          break;
        case "content_block_delta": {
          if (relay) break;
          const delta = data.delta ?? {};
          if (delta.type === "text_delta" && delta.text) yield { type: "text", text: delta.text };
          else if (delta.type === "thinking_delta" && delta.thinking)
            yield { type: "thinking", text: delta.thinking };
          else if (delta.type === "input_json_delta") {
            const call = open.get(data.index ?? 0);
            if (call !== undefined) call.json += delta.partial_json ?? "";
          }
          break;
        }
        case "content_block_stop": {
          if (relay) break;
          const call = open.get(data.index ?? 0);
          if (call === undefined) break;
          open.delete(data.index ?? 0);
          sawToolCalls = true;
          yield {
            type: "tool_call",
            call: { id: call.id, name: call.name, arguments: this.#input(call.json) },
          };
          break;
        }
        case "message_delta":
          stop = data.delta?.stop_reason;
          usage = anthropicUsage(data.usage, usage);
          break;
        case "message_stop":
          yield { type: "done", stopReason: stopReasonOf(stop, sawToolCalls), usage };
          return;
        case "error":
          throw new ProviderError(
            this.name,
            classifyAnthropicError(data.error?.type, undefined),
            `provider "${this.name}" (anthropic, model ${this.model}) reported ${data.error?.type ?? "an error"}: ${data.error?.message ?? ""}`,
          );
      }
    }
    throw new ProviderError(
      this.name,
      "connection",
      `provider "${this.name}" closed the stream before message_stop`,
    );
  }

  /**
   * Posts a body with the provider's credentials and headers; an answer other than 200 is a
   * ProviderError classified by Anthropic's error type and the status.
   */
  async post(body: string, signal: AbortSignal): Promise<IncomingMessage> {
    const response = await send(this.#target, { method: "POST", headers: this.#headers, body, signal });
    const status = response.statusCode ?? 0;
    if (status === 200) return response;
    const text = await readText(response, 1024 * 1024).catch(() => "");
    let detail = text;
    let type: string | undefined;
    try {
      const error = (JSON.parse(text) as { error?: { type?: string; message?: string } }).error;
      type = error?.type;
      detail = error?.message ?? text;
    } catch {
      // Not JSON (a proxy's HTML page, say): the raw text is the best detail there is.
    }
    throw new ProviderError(
      this.name,
      classifyAnthropicError(type, status),
      `provider "${this.name}" (anthropic, model ${this.model}) answered ${status}${type === undefined ? "" : ` ${type}`}: ${detail}`,
      status,
    );
  }

  #input(json: string): Record<string, unknown> {
    try {
      return json === "" ? {} : (JSON.parse(json) as Record<string, unknown>);
    } catch {
      throw new ProviderError(
        this.name,
        "unavailable",
        `provider "${this.name}" sent tool input that is not JSON`,
      );
    }
  }
}
