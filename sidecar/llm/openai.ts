// The OpenAI provider: any OpenAI-compatible server (OpenAI, Azure OpenAI's v1 API, vLLM,
// llama.cpp's server, LM Studio, TGI) over /chat/completions and /embeddings, SSE when
// streaming. An agent's OpenAI chat request, and a Responses request with store: false and no
// previous_response_id, reach it as the agent sent it, the model and the credentials changed,
// and the answer's bytes go back as they came (pass-through); every other agent request is
// translated here from the neutral shape to chat completions.
import type { IncomingMessage } from "node:http";
import { readText, send, type Target, target } from "../http-client.ts";
import {
  assignDefined,
  type ChatEvent,
  type ChatMessage,
  type ChatRequest,
  type ChatResult,
  declaredTools,
  type EmbedRequest,
  type EmbedResult,
  type Logprob,
  type StopReason,
  type ToolCall,
  type Unhonoured,
} from "./chat.ts";
import { classifyHttpStatus, ProviderError } from "./errors.ts";
import { imageMediaType } from "./image-type.ts";
import type { LlmProvider } from "./provider.ts";
import { sseEventBatches, sseEvents } from "./sse.ts";

/** The levels OpenAI's reasoning_effort takes. */
const EFFORTS: ReadonlySet<unknown> = new Set(["minimal", "low", "medium", "high", "xhigh"]);

/** What of a request the OpenAI chat completions API cannot honour. */
export function openAiUnhonoured(request: ChatRequest): Unhonoured | undefined {
  if (request.messages.some((m) => m.thinking !== undefined && m.thinking !== ""))
    return {
      feature: "thinking",
      reason: "OpenAI's chat completions take no earlier reasoning in the conversation",
    };
  for (const m of request.messages) {
    if ((m.images?.length ?? 0) === 0) continue;
    if (m.role !== "user")
      return {
        feature: "images",
        reason: `OpenAI takes images in user messages only, not in ${m.role} messages`,
      };
    if (m.images?.some((image) => imageMediaType(image) === undefined))
      return { feature: "images", reason: "OpenAI takes png, jpeg, gif and webp images only" };
  }
  if (request.topK !== undefined)
    return { feature: "topK", reason: "OpenAI's chat completions have no top_k" };
  if (request.think === true)
    return {
      feature: "think",
      reason: "OpenAI's reasoning_effort takes a level (minimal, low, medium, high, xhigh), not true",
    };
  if (typeof request.think === "string" && !EFFORTS.has(request.think))
    return {
      feature: "think",
      reason: `OpenAI's reasoning_effort takes minimal, low, medium, high or xhigh, not "${request.think}"`,
    };
  if (request.choices !== undefined)
    return { feature: "choices", reason: "the sidecar answers with one choice from an OpenAI provider" };
  if (request.keepAlive !== undefined)
    return { feature: "keepAlive", reason: "an OpenAI-compatible server loads and unloads models itself" };
  const option = Object.keys(request.ollamaOptions ?? {})[0];
  if (option !== undefined)
    return { feature: `options.${option}`, reason: "OpenAI's chat completions have no such setting" };
  return undefined;
}

function toOpenAiMessage(m: ChatMessage): Record<string, unknown> {
  if (m.role === "tool") {
    // OpenAI's tool messages have no error flag: the model reads that the tool failed instead.
    const content = m.toolError === true ? `the tool failed: ${m.content}` : m.content;
    return { role: "tool", tool_call_id: m.toolCallId ?? "", content };
  }
  const out: Record<string, unknown> = { role: m.role, content: m.content };
  const images = m.images ?? [];
  if (images.length > 0) {
    out.content = [
      ...(m.content === "" ? [] : [{ type: "text", text: m.content }]),
      ...images.map((image) => ({
        type: "image_url",
        image_url: { url: `data:${imageMediaType(image)};base64,${image}` },
      })),
    ];
  }
  if (m.toolCalls !== undefined && m.toolCalls.length > 0) {
    out.tool_calls = m.toolCalls.map((c) => ({
      id: c.id,
      type: "function",
      function: { name: c.name, arguments: JSON.stringify(c.arguments) },
    }));
    // An assistant turn of tool calls alone has no text: OpenAI reads that as null content.
    if (m.content === "") out.content = null;
  }
  return out;
}

/** The body of /chat/completions for a request of the neutral shape. */
export function toOpenAiChatBody(
  request: ChatRequest,
  model: string,
  stream: boolean,
): Record<string, unknown> {
  const body: Record<string, unknown> = { model, messages: request.messages.map(toOpenAiMessage) };
  if (stream) {
    body.stream = true;
    // Usage arrives in a last chunk only when asked for; the budgets need it.
    body.stream_options = { include_usage: true };
  }
  const choice = request.toolChoice;
  const only = choice?.only;
  const tools = declaredTools(request);
  if (tools.length > 0) {
    body.tools = tools.map((t) => ({
      type: "function",
      function: {
        name: t.name,
        ...(t.description === undefined ? {} : { description: t.description }),
        parameters: t.parameters ?? { type: "object", properties: {} },
        ...(t.strict === undefined ? {} : { strict: t.strict }),
      },
    }));
    if (choice?.mode === "none") body.tool_choice = "none";
    else if (choice?.mode === "required")
      body.tool_choice =
        only?.length === 1 && tools[0] !== undefined
          ? { type: "function", function: { name: tools[0].name } }
          : "required";
  }
  if (request.parallelToolCalls !== undefined && tools.length > 0)
    body.parallel_tool_calls = request.parallelToolCalls;
  assignDefined(body, {
    temperature: request.temperature,
    top_p: request.topP,
    // max_tokens rather than max_completion_tokens: every OpenAI-compatible server takes it.
    max_tokens: request.maxTokens,
    stop: request.stop,
    seed: request.seed,
    frequency_penalty: request.frequencyPenalty,
    presence_penalty: request.presencePenalty,
    service_tier: request.serviceTier,
    metadata: request.metadata,
  });
  const format = request.responseFormat;
  if (format?.type === "json") body.response_format = { type: "json_object" };
  else if (format?.type === "json_schema")
    body.response_format = {
      type: "json_schema",
      json_schema: {
        name: format.name ?? "response",
        ...(format.description === undefined ? {} : { description: format.description }),
        schema: format.schema,
      },
    };
  if (request.think === false) body.reasoning_effort = "none";
  else if (typeof request.think === "string") body.reasoning_effort = request.think;
  if (request.logprobs !== undefined) {
    body.logprobs = true;
    if (request.logprobs.top > 0) body.top_logprobs = request.logprobs.top;
  }
  return body;
}

interface OpenAiToolCall {
  index?: number;
  id?: string;
  function?: { name?: string; arguments?: string };
}

interface OpenAiLogprobs {
  content?: { token: string; logprob: number; top_logprobs?: { token: string; logprob: number }[] }[] | null;
}

interface OpenAiChoice {
  message?: { content?: string | null; reasoning_content?: string | null; tool_calls?: OpenAiToolCall[] };
  delta?: { content?: string | null; reasoning_content?: string | null; tool_calls?: OpenAiToolCall[] };
  finish_reason?: string | null;
  logprobs?: OpenAiLogprobs | null;
}

export interface OpenAiUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
}

interface OpenAiCompletion {
  choices?: OpenAiChoice[];
  usage?: OpenAiUsage | null;
  error?: { message?: string };
}

export function usageOf(usage: OpenAiUsage | null | undefined) {
  return { inputTokens: usage?.prompt_tokens ?? 0, outputTokens: usage?.completion_tokens ?? 0 };
}

function stopReasonOf(finish: string | null | undefined, sawToolCalls: boolean): StopReason {
  if (sawToolCalls || finish === "tool_calls" || finish === "function_call") return "tool_calls";
  return finish === "length" ? "length" : "stop";
}

function fromOpenAiLogprobs(logprobs: OpenAiLogprobs | null | undefined): Logprob[] | undefined {
  if (logprobs?.content == null) return undefined;
  return logprobs.content.map((l) => ({
    token: l.token,
    logprob: l.logprob,
    ...(l.top_logprobs === undefined
      ? {}
      : { top: l.top_logprobs.map((t) => ({ token: t.token, logprob: t.logprob })) }),
  }));
}

interface ResponsesUsage {
  input_tokens?: number;
  output_tokens?: number;
}

function responsesUsage(usage: ResponsesUsage | null | undefined) {
  return { inputTokens: usage?.input_tokens ?? 0, outputTokens: usage?.output_tokens ?? 0 };
}

/** The agent's body when it is a Responses request this provider may take as it came. */
function responsesBody(request: ChatRequest): Record<string, unknown> | undefined {
  return request.passThrough?.api === "openai-responses" ? request.passThrough.body : undefined;
}

/** The agent's body when it is an OpenAI chat request, which this provider takes as it came. */
function passedThrough(request: ChatRequest): Record<string, unknown> | undefined {
  return request.passThrough?.api === "openai-chat" ? request.passThrough.body : undefined;
}

export class OpenAiProvider implements LlmProvider {
  readonly name: string;
  readonly type = "openai";
  readonly passesThrough = ["openai-chat", "openai-responses"] as const;
  readonly model: string;
  readonly #chatTarget: Target;
  readonly #embedTarget: Target;
  readonly #responsesTarget: Target;
  readonly #headers: Record<string, string>;

  constructor(options: {
    name: string;
    endpoint: string;
    model: string;
    apiKey?: string;
    headers?: Record<string, string>;
  }) {
    this.name = options.name;
    this.model = options.model;
    const base = options.endpoint.replace(/\/+$/, "");
    this.#chatTarget = target(`${base}/chat/completions`);
    this.#embedTarget = target(`${base}/embeddings`);
    this.#responsesTarget = target(`${base}/responses`);
    this.#headers = { ...options.headers };
    if (options.apiKey !== undefined) this.#headers.authorization = `Bearer ${options.apiKey}`;
  }

  unhonoured(request: ChatRequest): Unhonoured | undefined {
    // An OpenAI request goes as it came: whatever it holds, the server reads as OpenAI's.
    if (passedThrough(request) !== undefined || responsesBody(request) !== undefined) return undefined;
    return openAiUnhonoured(request);
  }

  async chat(request: ChatRequest, signal: AbortSignal): Promise<ChatResult> {
    const responses = responsesBody(request);
    if (responses !== undefined) return this.#response(responses, signal);
    const agentBody = passedThrough(request);
    const body =
      agentBody === undefined
        ? toOpenAiChatBody(request, this.model, false)
        : { ...agentBody, model: this.model };
    const response = await this.post(this.#chatTarget, JSON.stringify(body), signal);
    const raw = await readText(response);
    const completion = this.#parse(raw);
    const choice = completion.choices?.[0];
    const toolCalls = (choice?.message?.tool_calls ?? []).map((c) => this.#toolCall(c));
    const result: ChatResult = {
      text: choice?.message?.content ?? "",
      thinking: choice?.message?.reasoning_content ?? "",
      toolCalls,
      stopReason: stopReasonOf(choice?.finish_reason, toolCalls.length > 0),
      usage: usageOf(completion.usage),
    };
    const logprobs = fromOpenAiLogprobs(choice?.logprobs);
    if (logprobs !== undefined) result.logprobs = logprobs;
    if (agentBody !== undefined) result.raw = raw;
    return result;
  }

  async *chatStream(request: ChatRequest, signal: AbortSignal): AsyncGenerator<ChatEvent> {
    const responses = responsesBody(request);
    if (responses !== undefined) {
      yield* this.#relayResponse(responses, signal);
      return;
    }
    const agentBody = passedThrough(request);
    if (agentBody !== undefined) {
      yield* this.#relay(agentBody, signal);
      return;
    }
    const response = await this.post(
      this.#chatTarget,
      JSON.stringify(toOpenAiChatBody(request, this.model, true)),
      signal,
    );
    // Tool calls come in pieces, by index: the name first, then the arguments in fragments.
    const calls = new Map<number, { id: string; name: string; arguments: string }>();
    let finish: string | null | undefined;
    let usage: OpenAiUsage | null | undefined;
    for await (const event of sseEvents(response)) {
      if (event.data === "[DONE]") {
        const toolCalls = [...calls.values()].map((c) => this.#toolCall({ id: c.id, function: c }));
        for (const call of toolCalls) yield { type: "tool_call", call };
        yield { type: "done", stopReason: stopReasonOf(finish, toolCalls.length > 0), usage: usageOf(usage) };
        return;
      }
      const chunk = this.#parse(event.data);
      if (chunk.usage != null) usage = chunk.usage;
      const choice = chunk.choices?.[0];
      if (choice === undefined) continue;
      if (choice.finish_reason != null) finish = choice.finish_reason;
      const delta = choice.delta ?? {};
      if (delta.reasoning_content != null && delta.reasoning_content !== "")
        yield { type: "thinking", text: delta.reasoning_content };
      if (delta.content != null && delta.content !== "") {
        const logprobs = fromOpenAiLogprobs(choice.logprobs);
        yield logprobs === undefined
          ? { type: "text", text: delta.content }
          : { type: "text", text: delta.content, logprobs };
      }
      for (const piece of delta.tool_calls ?? []) {
        const index = piece.index ?? calls.size;
        const call = calls.get(index) ?? { id: "", name: "", arguments: "" };
        if (piece.id !== undefined) call.id = piece.id;
        call.name += piece.function?.name ?? "";
        call.arguments += piece.function?.arguments ?? "";
        calls.set(index, call);
      }
    }
    throw new ProviderError(
      this.name,
      "connection",
      `provider "${this.name}" closed the stream before [DONE]`,
    );
  }

  async embed(request: EmbedRequest, signal: AbortSignal): Promise<EmbedResult> {
    const refused =
      request.truncate !== undefined
        ? "truncate"
        : request.keepAlive !== undefined
          ? "keep_alive"
          : Object.keys(request.ollamaOptions ?? {}).length > 0
            ? "options"
            : undefined;
    if (refused !== undefined)
      throw new ProviderError(
        this.name,
        "unsupported",
        `provider "${this.name}" (openai) cannot honour ${refused}: OpenAI's embeddings have no such setting`,
      );
    const body: Record<string, unknown> = {
      model: this.model,
      input: request.input,
      encoding_format: "float",
    };
    if (request.dimensions !== undefined) body.dimensions = request.dimensions;
    const response = await this.post(this.#embedTarget, JSON.stringify(body), signal);
    const answer = JSON.parse(await readText(response)) as {
      data?: { embedding: number[]; index: number }[];
      usage?: OpenAiUsage;
    };
    const data = [...(answer.data ?? [])].sort((a, b) => a.index - b.index);
    return { embeddings: data.map((d) => d.embedding), inputTokens: answer.usage?.prompt_tokens ?? 0 };
  }

  /**
   * Posts a body with the provider's credentials and headers; an answer other than 200 is a
   * ProviderError classified by its status, with the server's message (OpenAI's error shape).
   */
  async post(to: Target, body: string, signal: AbortSignal): Promise<IncomingMessage> {
    const response = await send(to, { method: "POST", headers: this.#headers, body, signal });
    const status = response.statusCode ?? 0;
    if (status === 200) return response;
    const text = await readText(response, 1024 * 1024).catch(() => "");
    let detail = text;
    try {
      detail = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
    } catch {
      // Not JSON (a proxy's HTML page, say): the raw text is the best detail there is.
    }
    throw new ProviderError(
      this.name,
      classifyHttpStatus(status),
      `provider "${this.name}" (openai, model ${this.model}) answered ${status}: ${detail}`,
      status,
    );
  }

  /** A Responses request sent as it came; the answer goes back as it came, its usage counted. */
  async #response(agentBody: Record<string, unknown>, signal: AbortSignal): Promise<ChatResult> {
    const body = JSON.stringify({ ...agentBody, model: this.model });
    const response = await this.post(this.#responsesTarget, body, signal);
    const raw = await readText(response);
    const answer = JSON.parse(raw) as { usage?: ResponsesUsage | null };
    return {
      text: "",
      thinking: "",
      toolCalls: [],
      stopReason: "stop",
      usage: responsesUsage(answer.usage),
      raw,
    };
  }

  /**
   * A streamed Responses request sent as it came, its typed events relayed as they came until
   * the one that ends the response (completed, incomplete or failed), which carries the usage.
   * An `error` event is not relayed: the router ends the stream with its own, redacted.
   */
  async *#relayResponse(agentBody: Record<string, unknown>, signal: AbortSignal): AsyncGenerator<ChatEvent> {
    const body = JSON.stringify({ ...agentBody, model: this.model });
    const response = await this.post(this.#responsesTarget, body, signal);
    for await (const event of sseEvents(response)) {
      const data = JSON.parse(event.data) as {
        type?: string;
        message?: string;
        response?: { usage?: ResponsesUsage | null };
      };
      if (data.type === "error")
        throw new ProviderError(
          this.name,
          "unavailable",
          `provider "${this.name}" reported: ${data.message ?? ""}`,
        );
      yield { type: "raw", text: event.raw };
      if (
        data.type === "response.completed" ||
        data.type === "response.incomplete" ||
        data.type === "response.failed"
      ) {
        yield { type: "done", stopReason: "stop", usage: responsesUsage(data.response?.usage) };
        return;
      }
    }
    throw new ProviderError(
      this.name,
      "connection",
      `provider "${this.name}" closed the stream before the response ended`,
    );
  }

  /**
   * The agent's streamed request sent as it came and the server's events relayed as they came.
   * The budgets need the usage, which OpenAI sends only when asked: a request that did not ask
   * asks all the same, and the usage-only chunk it adds is kept from the agent.
   */
  async *#relay(agentBody: Record<string, unknown>, signal: AbortSignal): AsyncGenerator<ChatEvent> {
    const asked =
      (agentBody.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
    const body: Record<string, unknown> = { ...agentBody, model: this.model };
    if (!asked) body.stream_options = { ...(agentBody.stream_options as object), include_usage: true };
    const response = await this.post(this.#chatTarget, JSON.stringify(body), signal);
    let usage: OpenAiUsage | null | undefined;
    let finish: string | null | undefined;
    // The events of one read go on as one: each event is a hop through every generator between
    // here and the agent's socket, and a write.
    for await (const batch of sseEventBatches(response)) {
      let relayed = "";
      for (const event of batch) {
        if (event.data === "[DONE]") {
          yield { type: "raw", text: relayed + event.raw };
          yield { type: "done", stopReason: stopReasonOf(finish, false), usage: usageOf(usage) };
          return;
        }
        let chunk: OpenAiCompletion;
        try {
          chunk = this.#parse(event.data);
        } catch (error) {
          // What came before the failure reaches the agent first, as it would have event by event.
          if (relayed !== "") yield { type: "raw", text: relayed };
          throw error;
        }
        finish = chunk.choices?.[0]?.finish_reason ?? finish;
        if (chunk.usage != null) {
          usage = chunk.usage;
          if (!asked && (chunk.choices?.length ?? 0) === 0) continue;
        }
        relayed += event.raw;
      }
      if (relayed !== "") yield { type: "raw", text: relayed };
    }
    throw new ProviderError(
      this.name,
      "connection",
      `provider "${this.name}" closed the stream before [DONE]`,
    );
  }

  #toolCall(c: OpenAiToolCall): ToolCall {
    const raw = c.function?.arguments ?? "";
    let args: Record<string, unknown>;
    try {
      args = raw === "" ? {} : (JSON.parse(raw) as Record<string, unknown>);
    } catch {
      throw new ProviderError(
        this.name,
        "unavailable",
        `provider "${this.name}" sent tool call arguments that are not JSON: ${raw.slice(0, 200)}`,
      );
    }
    return { id: c.id ?? "", name: c.function?.name ?? "", arguments: args };
  }

  /** A completion or chunk, or the error object some servers send in place of one. */
  #parse(text: string): OpenAiCompletion {
    const parsed = JSON.parse(text) as OpenAiCompletion;
    if (parsed.error !== undefined)
      throw new ProviderError(
        this.name,
        "unavailable",
        `provider "${this.name}" reported: ${parsed.error.message ?? JSON.stringify(parsed.error)}`,
      );
    return parsed;
  }
}
