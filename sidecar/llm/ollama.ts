// The Ollama provider: the router's chat and embeddings over Ollama's REST API
// (https://github.com/ollama/ollama/blob/main/docs/api.md), NDJSON when streaming. Ollama
// takes nearly every field agents send as it is; what it cannot honour, it says.
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { lines, readText, send, type Target, target } from "../http-client.ts";
import {
  assignDefined,
  type ChatEvent,
  type ChatMessage,
  type ChatRequest,
  type ChatResult,
  type EmbedRequest,
  type EmbedResult,
  type Logprob,
  offeredTools,
  type StopReason,
  type ToolCall,
  type Unhonoured,
} from "./chat.ts";
import { classifyHttpStatus, ProviderError } from "./errors.ts";
import type { LlmProvider } from "./provider.ts";

export interface OllamaMessage {
  role: string;
  content: string;
  images?: string[];
  thinking?: string;
  tool_calls?: { function: { name: string; arguments: Record<string, unknown> } }[];
  tool_name?: string;
}

export interface OllamaTokenLogprob {
  token: string;
  logprob: number;
  bytes?: number[];
}

export interface OllamaLogprob extends OllamaTokenLogprob {
  top_logprobs?: OllamaTokenLogprob[];
}

/** One NDJSON line of /api/chat, or its whole answer when not streaming. */
export interface OllamaChatChunk {
  model?: string;
  message?: OllamaMessage;
  done?: boolean;
  done_reason?: string;
  prompt_eval_count?: number;
  eval_count?: number;
  logprobs?: OllamaLogprob[];
  error?: string;
}

/** The levels Ollama's think takes besides true and false. */
const THINK_LEVELS: ReadonlySet<unknown> = new Set(["low", "medium", "high"]);

/** What of a request Ollama cannot honour; everything else it takes as it is. */
export function ollamaUnhonoured(request: ChatRequest): Unhonoured | undefined {
  if (request.toolChoice?.mode === "required")
    return { feature: "toolChoice", reason: "Ollama cannot make the model call a tool" };
  if (request.parallelToolCalls === false)
    return { feature: "parallelToolCalls", reason: "Ollama cannot hold the model to one tool call per turn" };
  if (request.tools?.some((t) => t.strict === true))
    return { feature: "strict", reason: "Ollama does not hold a tool call's arguments to the tool's schema" };
  if (request.responseFormat?.type === "json_schema" && request.responseFormat.description !== undefined)
    return {
      feature: "responseFormat",
      reason: "Ollama's format takes a JSON schema but no description of it",
    };
  if (typeof request.think === "string" && !THINK_LEVELS.has(request.think))
    return {
      feature: "think",
      reason: `Ollama's think takes true, false, "low", "medium" or "high", not "${request.think}"`,
    };
  if (request.choices !== undefined)
    return { feature: "choices", reason: "Ollama answers with one choice per request" };
  if (request.serviceTier !== undefined)
    return { feature: "serviceTier", reason: "Ollama has no service tiers" };
  if (request.metadata !== undefined)
    return { feature: "metadata", reason: "Ollama keeps no request metadata" };
  return undefined;
}

function toOllamaMessages(messages: readonly ChatMessage[]): OllamaMessage[] {
  return messages.map((m) => {
    // Ollama's tool messages have no error flag: the model reads that the tool failed instead.
    const content = m.toolError === true ? `the tool failed: ${m.content}` : m.content;
    const out: OllamaMessage = { role: m.role, content };
    if (m.images !== undefined && m.images.length > 0) out.images = m.images;
    if (m.thinking !== undefined) out.thinking = m.thinking;
    if (m.toolCalls !== undefined && m.toolCalls.length > 0) {
      out.tool_calls = m.toolCalls.map((c) => ({ function: { name: c.name, arguments: c.arguments } }));
    }
    if (m.toolName !== undefined) out.tool_name = m.toolName;
    return out;
  });
}

function toOllamaOptions(request: ChatRequest): Record<string, unknown> {
  const options: Record<string, unknown> = { ...request.ollamaOptions };
  assignDefined(options, {
    temperature: request.temperature,
    top_p: request.topP,
    top_k: request.topK,
    num_predict: request.maxTokens,
    stop: request.stop,
    seed: request.seed,
    frequency_penalty: request.frequencyPenalty,
    presence_penalty: request.presencePenalty,
  });
  return options;
}

export function toOllamaChatBody(
  request: ChatRequest,
  model: string,
  stream: boolean,
): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model,
    messages: toOllamaMessages(request.messages),
    stream,
    options: toOllamaOptions(request),
  };
  const tools = offeredTools(request);
  if (tools.length > 0) {
    body.tools = tools.map((t) => ({
      type: "function",
      function: {
        name: t.name,
        description: t.description ?? "",
        parameters: t.parameters ?? { type: "object" },
      },
    }));
  }
  const format = request.responseFormat;
  if (format !== undefined) body.format = format.type === "json" ? "json" : format.schema;
  if (request.think !== undefined) body.think = request.think;
  if (request.keepAlive !== undefined) body.keep_alive = request.keepAlive;
  if (request.logprobs !== undefined) {
    body.logprobs = true;
    if (request.logprobs.top > 0) body.top_logprobs = request.logprobs.top;
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

function fromOllamaLogprobs(logprobs: readonly OllamaLogprob[]): Logprob[] {
  return logprobs.map((l) => ({
    token: l.token,
    logprob: l.logprob,
    ...(l.top_logprobs === undefined
      ? {}
      : { top: l.top_logprobs.map((t) => ({ token: t.token, logprob: t.logprob })) }),
  }));
}

function stopReasonOf(doneReason: string | undefined, sawToolCalls: boolean): StopReason {
  if (sawToolCalls) return "tool_calls";
  return doneReason === "length" ? "length" : "stop";
}

export class OllamaProvider implements LlmProvider {
  readonly name: string;
  readonly type = "ollama";
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

  unhonoured(request: ChatRequest): Unhonoured | undefined {
    return ollamaUnhonoured(request);
  }

  async chat(request: ChatRequest, signal: AbortSignal): Promise<ChatResult> {
    const response = await this.#post(this.#chatTarget, toOllamaChatBody(request, this.model, false), signal);
    const chunk = this.#parse(await readText(response));
    const toolCalls = fromOllamaToolCalls(chunk.message);
    const result: ChatResult = {
      text: chunk.message?.content ?? "",
      thinking: chunk.message?.thinking ?? "",
      toolCalls,
      stopReason: stopReasonOf(chunk.done_reason, toolCalls.length > 0),
      usage: { inputTokens: chunk.prompt_eval_count ?? 0, outputTokens: chunk.eval_count ?? 0 },
    };
    if (chunk.logprobs !== undefined) result.logprobs = fromOllamaLogprobs(chunk.logprobs);
    return result;
  }

  async *chatStream(request: ChatRequest, signal: AbortSignal): AsyncGenerator<ChatEvent> {
    const response = await this.#post(this.#chatTarget, toOllamaChatBody(request, this.model, true), signal);
    let sawToolCalls = false;
    for await (const line of lines(response)) {
      const chunk = this.#parse(line);
      const thinking = chunk.message?.thinking ?? "";
      if (thinking !== "") yield { type: "thinking", text: thinking };
      const text = chunk.message?.content ?? "";
      if (text !== "") {
        yield chunk.logprobs === undefined
          ? { type: "text", text }
          : { type: "text", text, logprobs: fromOllamaLogprobs(chunk.logprobs) };
      }
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

  async embed(request: EmbedRequest, signal: AbortSignal): Promise<EmbedResult> {
    const body: Record<string, unknown> = { model: this.model, input: request.input };
    if (request.dimensions !== undefined) body.dimensions = request.dimensions;
    if (request.truncate !== undefined) body.truncate = request.truncate;
    if (request.keepAlive !== undefined) body.keep_alive = request.keepAlive;
    if (request.ollamaOptions !== undefined) body.options = request.ollamaOptions;
    const response = await this.#post(this.#embedTarget, body, signal);
    const answer = JSON.parse(await readText(response)) as {
      embeddings?: number[][];
      prompt_eval_count?: number;
    };
    return { embeddings: answer.embeddings ?? [], inputTokens: answer.prompt_eval_count ?? 0 };
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
    // Not shortened here: a cut could split a credential the relay would then not recognise.
    throw new ProviderError(
      this.name,
      classifyHttpStatus(status),
      `provider "${this.name}" (ollama, model ${this.model}) answered ${status}: ${detail}`,
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
