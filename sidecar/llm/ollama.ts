// The Ollama provider: the router's chat and embeddings over Ollama's REST API
// (https://github.com/ollama/ollama/blob/main/docs/api.md), NDJSON when streaming.
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { lines, readText, send, type Target, target } from "../http-client.ts";
import type {
  ChatEvent,
  ChatMessage,
  ChatRequest,
  ChatResult,
  EmbedResult,
  StopReason,
  ToolCall,
} from "./chat.ts";
import { classifyHttpStatus, ProviderError } from "./errors.ts";
import type { LlmProvider } from "./provider.ts";

export interface OllamaMessage {
  role: string;
  content: string;
  tool_calls?: { function: { name: string; arguments: Record<string, unknown> } }[];
  tool_name?: string;
}

/** One NDJSON line of /api/chat, or its whole answer when not streaming. */
export interface OllamaChatChunk {
  model?: string;
  message?: OllamaMessage;
  done?: boolean;
  done_reason?: string;
  prompt_eval_count?: number;
  eval_count?: number;
  error?: string;
}

function toOllamaMessages(messages: readonly ChatMessage[]): OllamaMessage[] {
  return messages.map((m) => {
    const out: OllamaMessage = { role: m.role, content: m.content };
    if (m.toolCalls !== undefined && m.toolCalls.length > 0) {
      out.tool_calls = m.toolCalls.map((c) => ({ function: { name: c.name, arguments: c.arguments } }));
    }
    if (m.toolName !== undefined) out.tool_name = m.toolName;
    return out;
  });
}

export function toOllamaChatBody(
  request: ChatRequest,
  model: string,
  stream: boolean,
): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  if (request.temperature !== undefined) options.temperature = request.temperature;
  if (request.topP !== undefined) options.top_p = request.topP;
  if (request.maxTokens !== undefined) options.num_predict = request.maxTokens;
  if (request.stop !== undefined) options.stop = request.stop;
  const body: Record<string, unknown> = {
    model,
    messages: toOllamaMessages(request.messages),
    stream,
    options,
  };
  if (request.tools !== undefined && request.tools.length > 0) {
    body.tools = request.tools.map((t) => ({
      type: "function",
      function: {
        name: t.name,
        description: t.description ?? "",
        parameters: t.parameters ?? { type: "object" },
      },
    }));
  }
  return body;
}

/** Ollama's tool calls carry no id; the OpenAI-facing API needs one to pair results with calls. */
function fromOllamaToolCalls(message: OllamaMessage | undefined): ToolCall[] {
  return (message?.tool_calls ?? []).map((c) => ({
    id: `call_${randomUUID().replaceAll("-", "").slice(0, 24)}`,
    name: c.function.name,
    arguments: c.function.arguments ?? {},
  }));
}

function stopReasonOf(doneReason: string | undefined, sawToolCalls: boolean): StopReason {
  if (sawToolCalls) return "tool_calls";
  return doneReason === "length" ? "length" : "stop";
}

export class OllamaProvider implements LlmProvider {
  readonly name: string;
  readonly model: string;
  readonly #chatTarget: Target;
  readonly #embedTarget: Target;
  readonly #headers: Record<string, string>;

  constructor(options: { name: string; endpoint: string; model: string; token?: string }) {
    this.name = options.name;
    this.model = options.model;
    const base = options.endpoint.replace(/\/+$/, "");
    this.#chatTarget = target(`${base}/api/chat`);
    this.#embedTarget = target(`${base}/api/embed`);
    this.#headers = options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };
  }

  async chat(request: ChatRequest, signal: AbortSignal): Promise<ChatResult> {
    const response = await this.#post(this.#chatTarget, toOllamaChatBody(request, this.model, false), signal);
    const chunk = this.#parse(await readText(response));
    const toolCalls = fromOllamaToolCalls(chunk.message);
    return {
      text: chunk.message?.content ?? "",
      toolCalls,
      stopReason: stopReasonOf(chunk.done_reason, toolCalls.length > 0),
      usage: { inputTokens: chunk.prompt_eval_count ?? 0, outputTokens: chunk.eval_count ?? 0 },
    };
  }

  async *chatStream(request: ChatRequest, signal: AbortSignal): AsyncGenerator<ChatEvent> {
    const response = await this.#post(this.#chatTarget, toOllamaChatBody(request, this.model, true), signal);
    let sawToolCalls = false;
    for await (const line of lines(response)) {
      const chunk = this.#parse(line);
      const text = chunk.message?.content ?? "";
      if (text !== "") yield { type: "text", text };
      for (const call of fromOllamaToolCalls(chunk.message)) {
        sawToolCalls = true;
        yield { type: "tool_call", call };
      }
      if (chunk.done === true) {
        yield {
          type: "done",
          stopReason: stopReasonOf(chunk.done_reason, sawToolCalls),
          usage: { inputTokens: chunk.prompt_eval_count ?? 0, outputTokens: chunk.eval_count ?? 0 },
        };
        return;
      }
    }
    throw new ProviderError(this.name, "connection", `provider "${this.name}" closed the stream before done`);
  }

  async embed(input: string[], signal: AbortSignal): Promise<EmbedResult> {
    const response = await this.#post(this.#embedTarget, { model: this.model, input }, signal);
    const body = JSON.parse(await readText(response)) as {
      embeddings?: number[][];
      prompt_eval_count?: number;
    };
    return { embeddings: body.embeddings ?? [], inputTokens: body.prompt_eval_count ?? 0 };
  }

  async #post(to: Target, body: unknown, signal: AbortSignal): Promise<IncomingMessage> {
    const response = await send(to, {
      method: "POST",
      headers: this.#headers,
      body: JSON.stringify(body),
      signal,
    });
    const status = response.statusCode ?? 0;
    if (status === 200) return response;
    const text = await readText(response, 1024 * 1024).catch(() => "");
    let detail = text;
    try {
      detail = (JSON.parse(text) as { error?: string }).error ?? text;
    } catch {
      // Not JSON (a proxy's HTML page, say): the raw text is the best detail there is.
    }
    throw new ProviderError(
      this.name,
      classifyHttpStatus(status),
      `provider "${this.name}" (ollama, model ${this.model}) answered ${status}: ${detail.slice(0, 500)}`,
      status,
    );
  }

  /** A chunk, or the error object Ollama sends in place of one. */
  #parse(text: string): OllamaChatChunk {
    const chunk = JSON.parse(text) as OllamaChatChunk;
    if (chunk.error !== undefined) {
      throw new ProviderError(this.name, "unavailable", `provider "${this.name}" reported: ${chunk.error}`);
    }
    return chunk;
  }
}
