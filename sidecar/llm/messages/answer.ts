// The answers of Anthropic's Messages API built from the neutral chat result: a whole message,
// the server-sent event sequence of a streamed one (message_start, ping, content_block_start,
// content_block_delta, content_block_stop per block, message_delta, message_stop), and the
// error object. Pure: the route writes what these return.
import type { AnswerEvent, ChatResult, StopReason, ToolCall, Usage } from "../chat.ts";
import type { Failure } from "../failure.ts";

type AnthropicStopReason = "end_turn" | "max_tokens" | "tool_use";

/**
 * Why the model stopped. A stop sequence that ended the answer is reported as end_turn: neither
 * provider says which sequence it met, so stop_sequence stays null.
 */
function stopReasonOf(reason: StopReason): AnthropicStopReason {
  if (reason === "length") return "max_tokens";
  if (reason === "tool_calls") return "tool_use";
  return "end_turn";
}

function usageOf(usage: Usage) {
  return {
    input_tokens: usage.inputTokens,
    output_tokens: usage.outputTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
  };
}

/** A thinking block's signature: the providers sign nothing, and the field must be a string. */
const UNSIGNED = "";

function toolUseOf(call: ToolCall) {
  return { type: "tool_use" as const, id: call.id, name: call.name, input: call.arguments };
}

export function toAnthropicMessage(result: ChatResult, model: string, id: string) {
  const content: object[] = [];
  if (result.thinking !== "")
    content.push({ type: "thinking", thinking: result.thinking, signature: UNSIGNED });
  if (result.text !== "" || result.toolCalls.length === 0) content.push({ type: "text", text: result.text });
  content.push(...result.toolCalls.map(toolUseOf));
  return {
    id,
    type: "message",
    role: "assistant",
    model,
    content,
    stop_reason: stopReasonOf(result.stopReason),
    stop_sequence: null,
    usage: usageOf(result.usage),
  };
}

function sse(type: string, data: object): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
}

/**
 * Turns chat events into the Messages stream. Blocks are numbered in order; a run of text or
 * thinking events is one block, each tool call a block of its own with its input as one JSON
 * delta. message_start waits for the first event, which is when the stream is committed.
 */
export class AnthropicStreamer {
  readonly #model: string;
  readonly #id: string;
  #started = false;
  #index = -1;
  #open: "text" | "thinking" | undefined;

  constructor(model: string, id: string) {
    this.#model = model;
    this.#id = id;
  }

  events(event: AnswerEvent): string {
    let out = "";
    if (!this.#started) {
      this.#started = true;
      out += sse("message_start", {
        message: {
          id: this.#id,
          type: "message",
          role: "assistant",
          model: this.#model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          // The providers count the prompt when they finish; message_delta carries the count.
          usage: usageOf({ inputTokens: 0, outputTokens: 0 }),
        },
      });
      out += sse("ping", {});
    }
    if (event.type === "text" || event.type === "thinking") {
      if (this.#open !== event.type) {
        out += this.#close();
        this.#open = event.type;
        const block =
          event.type === "text"
            ? { type: "text", text: "" }
            : { type: "thinking", thinking: "", signature: UNSIGNED };
        out += sse("content_block_start", { index: ++this.#index, content_block: block });
      }
      const delta =
        event.type === "text"
          ? { type: "text_delta", text: event.text }
          : { type: "thinking_delta", thinking: event.text };
      return out + sse("content_block_delta", { index: this.#index, delta });
    }
    out += this.#close();
    if (event.type === "tool_call") {
      const index = ++this.#index;
      out += sse("content_block_start", { index, content_block: { ...toolUseOf(event.call), input: {} } });
      out += sse("content_block_delta", {
        index,
        delta: { type: "input_json_delta", partial_json: JSON.stringify(event.call.arguments) },
      });
      return out + sse("content_block_stop", { index });
    }
    out += sse("message_delta", {
      delta: { stop_reason: stopReasonOf(event.stopReason), stop_sequence: null },
      usage: usageOf(event.usage),
    });
    return out + sse("message_stop", {});
  }

  #close(): string {
    if (this.#open === undefined) return "";
    this.#open = undefined;
    return sse("content_block_stop", { index: this.#index });
  }
}

/** Anthropic's error types by HTTP status, as its SDKs map them to exception classes. */
function errorType(failure: Failure): string {
  switch (failure.status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
      // Every provider unavailable is Anthropic's overload; no LLM configured is not.
      return failure.code === "providers_unavailable" ? "overloaded_error" : "api_error";
  }
  return failure.status < 500 ? "invalid_request_error" : "api_error";
}

/** Anthropic's error body; the field at fault is named in the message, which is all it has. */
export function anthropicError(failure: Failure) {
  const field =
    failure.param === undefined || failure.message.includes(failure.param) ? "" : `${failure.param}: `;
  return { type: "error", error: { type: errorType(failure), message: `${field}${failure.message}` } };
}

/** A failure inside a stream already started, as the Messages stream's error event. */
export function anthropicStreamError(failure: Failure): string {
  return `event: error\ndata: ${JSON.stringify(anthropicError(failure))}\n\n`;
}
