// The answers of OpenAI's Responses API built from the neutral chat result: the response object
// with its output items (reasoning, message, function_call), and the typed stream events with
// their sequence numbers (response.created, response.in_progress, output_item.added/done,
// content_part.added/done, output_text.delta/done, reasoning_text.delta/done,
// function_call_arguments.delta/done, response.completed or response.incomplete). Pure.
import { randomUUID } from "node:crypto";
import type { AnswerEvent, ChatResult, StopReason, ToolCall, Usage } from "../chat.ts";
import type { Failure } from "../failure.ts";
import type { ResponsesRequest } from "./request.ts";

/** What a response says about itself besides its output. */
export interface ResponseContext {
  id: string;
  createdAt: number;
  model: string;
  body: ResponsesRequest;
}

export function itemId(prefix: "msg" | "rs" | "fc"): string {
  return `${prefix}_${randomUUID().replaceAll("-", "")}`;
}

function outputTextPart(text: string) {
  return { type: "output_text", text, annotations: [], logprobs: [] };
}

function messageItem(id: string, text: string, status: "in_progress" | "completed") {
  return {
    id,
    type: "message",
    status,
    role: "assistant",
    content: status === "completed" ? [outputTextPart(text)] : [],
  };
}

function reasoningItem(id: string, text: string, status: "in_progress" | "completed") {
  return {
    id,
    type: "reasoning",
    summary: [],
    content: status === "completed" ? [{ type: "reasoning_text", text }] : [],
    status,
  };
}

function functionCallItem(id: string, call: ToolCall, status: "in_progress" | "completed") {
  return {
    id,
    type: "function_call",
    status,
    call_id: call.id,
    name: call.name,
    arguments: status === "completed" ? JSON.stringify(call.arguments) : "",
  };
}

/** The output items of a whole answer: reasoning, then the message, then each function call. */
export function outputItems(result: ChatResult): object[] {
  const items: object[] = [];
  if (result.thinking !== "") items.push(reasoningItem(itemId("rs"), result.thinking, "completed"));
  if (result.text !== "" || result.toolCalls.length === 0)
    items.push(messageItem(itemId("msg"), result.text, "completed"));
  for (const call of result.toolCalls) items.push(functionCallItem(itemId("fc"), call, "completed"));
  return items;
}

function usageOf(usage: Usage) {
  return {
    input_tokens: usage.inputTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: usage.outputTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.inputTokens + usage.outputTokens,
  };
}

type Finished = { stopReason: StopReason; usage: Usage };

/** The response object; `finished` unset while it is in progress. */
export function toResponse(context: ResponseContext, output: object[], finished?: Finished) {
  const { body } = context;
  const incomplete = finished?.stopReason === "length";
  return {
    id: context.id,
    object: "response",
    created_at: context.createdAt,
    status: finished === undefined ? "in_progress" : incomplete ? "incomplete" : "completed",
    error: null,
    incomplete_details: incomplete ? { reason: "max_output_tokens" } : null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    model: context.model,
    output,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: null },
    store: body.store ?? true,
    temperature: body.temperature ?? null,
    text: { format: body.text?.format ?? { type: "text" } },
    tool_choice: body.tool_choice ?? "auto",
    tools: (body.tools ?? []).map((t) => ({
      type: "function",
      name: t.name,
      description: t.description ?? null,
      parameters: t.parameters ?? null,
      strict: t.strict ?? null,
    })),
    top_p: body.top_p ?? null,
    truncation: "disabled",
    background: false,
    metadata: body.metadata ?? {},
    usage: finished === undefined ? null : usageOf(finished.usage),
  };
}

/** The output item a run of text or reasoning is being written into. */
interface OpenItem {
  kind: "text" | "thinking";
  id: string;
  text: string;
}

/**
 * Turns chat events into the Responses stream. A run of text or of reasoning is one output
 * item, each tool call one function_call item with its arguments as one delta. The whole
 * answer, as the neutral result, goes to `onDone` when the last event has been written.
 */
export class ResponsesStreamer {
  readonly #context: ResponseContext;
  readonly #onDone: (result: ChatResult) => void;
  readonly #output: object[] = [];
  readonly #result: ChatResult = {
    text: "",
    thinking: "",
    toolCalls: [],
    stopReason: "stop",
    usage: { inputTokens: 0, outputTokens: 0 },
  };
  #sequence = 0;
  #open: OpenItem | undefined;

  constructor(context: ResponseContext, onDone: (result: ChatResult) => void) {
    this.#context = context;
    this.#onDone = onDone;
  }

  events(event: AnswerEvent): string {
    let out = "";
    if (this.#sequence === 0) {
      const response = toResponse(this.#context, []);
      out += this.#sse("response.created", { response });
      out += this.#sse("response.in_progress", { response });
    }
    if (event.type === "text" || event.type === "thinking") {
      let open = this.#open;
      if (open?.kind !== event.type) {
        out += this.#close();
        open = { kind: event.type, id: itemId(event.type === "text" ? "msg" : "rs"), text: "" };
        this.#open = open;
        out += this.#announce(open);
      }
      open.text += event.text;
      const at = { item_id: open.id, output_index: this.#output.length, content_index: 0 };
      return (
        out +
        (event.type === "text"
          ? this.#sse("response.output_text.delta", { ...at, delta: event.text, logprobs: [] })
          : this.#sse("response.reasoning_text.delta", { ...at, delta: event.text }))
      );
    }
    out += this.#close();
    if (event.type === "tool_call") {
      this.#result.toolCalls.push(event.call);
      const id = itemId("fc");
      const output_index = this.#output.length;
      const done = functionCallItem(id, event.call, "completed");
      out += this.#sse("response.output_item.added", {
        output_index,
        item: functionCallItem(id, event.call, "in_progress"),
      });
      out += this.#sse("response.function_call_arguments.delta", {
        item_id: id,
        output_index,
        delta: done.arguments,
      });
      out += this.#sse("response.function_call_arguments.done", {
        item_id: id,
        output_index,
        name: event.call.name,
        arguments: done.arguments,
      });
      out += this.#sse("response.output_item.done", { output_index, item: done });
      this.#output.push(done);
      return out;
    }
    const finished = { stopReason: event.stopReason, usage: event.usage };
    Object.assign(this.#result, finished);
    const response = toResponse(this.#context, this.#output, finished);
    out += this.#sse(response.status === "incomplete" ? "response.incomplete" : "response.completed", {
      response,
    });
    this.#onDone(this.#result);
    return out;
  }

  /** A failure after the stream started, as the stream's error event. */
  error(failure: Failure): string {
    return this.#sse("error", { code: failure.code, message: failure.message, param: failure.param ?? null });
  }

  /** The events that start the item of a run of text or reasoning. */
  #announce(open: OpenItem): string {
    const { kind, id } = open;
    const output_index = this.#output.length;
    const item = kind === "text" ? messageItem(id, "", "in_progress") : reasoningItem(id, "", "in_progress");
    const part = kind === "text" ? outputTextPart("") : { type: "reasoning_text", text: "" };
    return (
      this.#sse("response.output_item.added", { output_index, item }) +
      this.#sse("response.content_part.added", { item_id: id, output_index, content_index: 0, part })
    );
  }

  #close(): string {
    const open = this.#open;
    if (open === undefined) return "";
    this.#open = undefined;
    const at = { item_id: open.id, output_index: this.#output.length, content_index: 0 };
    let out: string;
    let item: object;
    if (open.kind === "text") {
      this.#result.text += open.text;
      item = messageItem(open.id, open.text, "completed");
      out =
        this.#sse("response.output_text.done", { ...at, text: open.text, logprobs: [] }) +
        this.#sse("response.content_part.done", { ...at, part: outputTextPart(open.text) });
    } else {
      this.#result.thinking += open.text;
      item = reasoningItem(open.id, open.text, "completed");
      out =
        this.#sse("response.reasoning_text.done", { ...at, text: open.text }) +
        this.#sse("response.content_part.done", { ...at, part: { type: "reasoning_text", text: open.text } });
    }
    out += this.#sse("response.output_item.done", { output_index: at.output_index, item });
    this.#output.push(item);
    return out;
  }

  #sse(type: string, data: object): string {
    return `event: ${type}\ndata: ${JSON.stringify({ type, ...data, sequence_number: this.#sequence++ })}\n\n`;
  }
}
