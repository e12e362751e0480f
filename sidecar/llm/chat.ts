// The provider-neutral shape of a chat exchange: the agent-facing APIs (OpenAI, Ollama) map
// into it and the providers (Ollama, Bedrock) map out of it, so routing never sees a protocol.
// Every field an agent may send has a place here or is refused by its API; each provider
// says which of these it cannot honour (LlmProvider.unhonoured), so nothing is dropped.

export interface ToolCall {
  id: string;
  name: string;
  arguments: Record<string, unknown>;
}

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  /** Images the message shows: base64 without a data: prefix, in the order the agent sent them. */
  images?: string[];
  /** For role assistant: the reasoning the model wrote before this answer. */
  thinking?: string;
  toolCalls?: ToolCall[];
  /** For role tool: the call this message answers. */
  toolCallId?: string;
  /** For role tool: the name of the tool that answered (Ollama's tool_name). */
  toolName?: string;
  /** For role tool: the tool failed, and the content says how (Anthropic's is_error). */
  toolError?: boolean;
}

export interface ToolSpec {
  name: string;
  description?: string;
  parameters?: Record<string, unknown>;
  /** The model's arguments must follow `parameters` exactly. */
  strict?: boolean;
}

/** Whether the model may, must or must not call tools, and which. */
export interface ToolChoice {
  mode: "auto" | "none" | "required";
  /** Only these tools may be called: a named function, or OpenAI's allowed_tools. */
  only?: string[];
}

export type ResponseFormat =
  /** Any JSON value: OpenAI's json_object, Ollama's format "json". */
  | { type: "json" }
  | { type: "json_schema"; schema: Record<string, unknown>; name?: string; description?: string };

/** Whether the model reasons before answering, and how hard: Ollama's think, OpenAI's reasoning_effort. */
export type Reasoning = boolean | "minimal" | "low" | "medium" | "high" | "xhigh" | "max";

export interface TokenLogprob {
  token: string;
  logprob: number;
}

export interface Logprob extends TokenLogprob {
  /** The most likely alternatives at this position, when asked for. */
  top?: TokenLogprob[];
}

export interface ChatRequest {
  messages: ChatMessage[];
  tools?: ToolSpec[];
  toolChoice?: ToolChoice;
  /** false: at most one tool call per turn. Unset: as many as the model makes. */
  parallelToolCalls?: boolean;
  temperature?: number;
  topP?: number;
  topK?: number;
  maxTokens?: number;
  stop?: string[];
  seed?: number;
  frequencyPenalty?: number;
  presencePenalty?: number;
  responseFormat?: ResponseFormat;
  think?: Reasoning;
  /** Log probabilities of the output tokens, with `top` alternatives each. */
  logprobs?: { top: number };
  /** Choices wanted, set only when more than one. */
  choices?: number;
  /** A processing tier other than the default. */
  serviceTier?: "flex" | "priority";
  /** Tags for the provider's logs of the call. */
  metadata?: Record<string, string>;
  /** How long Ollama keeps the model loaded after the call. */
  keepAlive?: string | number;
  /** Ollama options without a field above (num_ctx, repeat_penalty, ...), by Ollama's names. */
  ollamaOptions?: Record<string, unknown>;
  /** The agent's name for each feature it used, as its API spells it, for refusals to name. */
  fields: Partial<Record<Feature, string>>;
  /** The agent's body, for a provider that speaks the agent's API and takes it as it came. */
  passThrough?: PassThrough;
}

/**
 * An agent's request as it came, in the API it came in: a provider of that API sends it with
 * only the model and the credentials changed, and relays the answer's bytes (passthrough.ts).
 */
export interface PassThrough {
  api: PassThroughApi;
  body: Record<string, unknown>;
  /**
   * Fields of the body the sidecar's table does not take (unknown to it, or refused for want
   * of a provider that honours them): only a provider of the agent's API gets them, as they came.
   */
  heldBack?: string[];
}

export type PassThroughApi = "openai-chat" | "openai-responses" | "anthropic-messages";

/** Offers the agent's body to providers of its API; a refusal of the others names the first field held back. */
export function offerAsItCame(
  request: ChatRequest,
  api: PassThroughApi,
  body: Record<string, unknown>,
  heldBack: readonly string[] = [],
): void {
  request.passThrough = { api, body, ...(heldBack.length === 0 ? {} : { heldBack: [...heldBack] }) };
  if (heldBack[0] !== undefined) request.fields.passThrough = heldBack[0];
}

/**
 * The setter each agent API's request mapping uses: puts a value on the request and notes the
 * API's own name for it, so a provider that cannot honour it is refused naming that field. An
 * absent value (undefined, or null as JSON may send it) sets nothing.
 */
export function featureSetter(request: ChatRequest) {
  return <K extends keyof ChatRequest & keyof ChatRequest["fields"]>(
    key: K,
    value: ChatRequest[K] | null | undefined,
    field: string,
  ): void => {
    if (value === undefined || value === null) return;
    request[key] = value;
    request.fields[key] = field;
  };
}

/** What a provider may be unable to honour: a field of ChatRequest, a message part, or an Ollama option. */
export type Feature =
  | Exclude<keyof ChatRequest, "messages" | "fields" | "ollamaOptions">
  | "images"
  | "thinking"
  | "strict"
  | `options.${string}`;

/** A feature of the request a provider cannot honour, and why. */
export interface Unhonoured {
  feature: Feature;
  reason: string;
}

export type StopReason = "stop" | "length" | "tool_calls";

export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

export interface ChatResult {
  text: string;
  /** The reasoning the model wrote before its answer; empty when it wrote none. */
  thinking: string;
  toolCalls: ToolCall[];
  stopReason: StopReason;
  usage: Usage;
  /** Per output token, when the request asked for them. */
  logprobs?: Logprob[];
  /** A passed-through request's answer body as the provider sent it, relayed as it is. */
  raw?: string;
}

/** One piece of a streamed answer, in order; `done` is always last. */
export type ChatEvent = AnswerEvent | RawEvent;

/** One event of a passed-through stream, as the provider sent it, relayed as it is. */
export interface RawEvent {
  type: "raw";
  text: string;
}

/** A piece of an answer in the neutral shape, which each agent API writes in its own. */
export type AnswerEvent =
  | { type: "text"; text: string; logprobs?: Logprob[] }
  | { type: "thinking"; text: string }
  | { type: "tool_call"; call: ToolCall }
  | { type: "done"; stopReason: StopReason; usage: Usage };

export interface EmbedRequest {
  input: string[];
  /** Length of the vectors, for models that can shorten them. */
  dimensions?: number;
  /** false: an input longer than the context is an error rather than cut. */
  truncate?: boolean;
  keepAlive?: string | number;
  ollamaOptions?: Record<string, unknown>;
}

export interface EmbedResult {
  embeddings: number[][];
  inputTokens: number;
}

/**
 * Names each tool result after the call it answers: Ollama pairs results with calls by tool
 * name, while OpenAI and Anthropic agents send only the call's id.
 */
export function nameToolResults(messages: ChatMessage[]): void {
  const callNames = new Map(messages.flatMap((m) => (m.toolCalls ?? []).map((c) => [c.id, c.name] as const)));
  for (const m of messages) {
    if (m.role !== "tool" || m.toolCallId === undefined || m.toolName !== undefined) continue;
    const name = callNames.get(m.toolCallId);
    if (name !== undefined) m.toolName = name;
  }
}

/**
 * The tools declared to a provider that takes a "none" tool choice itself (OpenAI, Anthropic):
 * all of them under "none", so a conversation that holds tool calls stays valid, only the
 * allowed ones when limited.
 */
export function declaredTools(request: ChatRequest): ToolSpec[] {
  const tools = request.tools ?? [];
  const only = request.toolChoice?.only;
  return request.toolChoice?.mode === "none" || only === undefined
    ? tools
    : tools.filter((t) => only.includes(t.name));
}

/** Copies the entries whose value is defined: a provider's body holds no `key: undefined`. */
export function assignDefined(target: Record<string, unknown>, entries: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(entries)) if (value !== undefined) target[key] = value;
}

/** The tools the model is offered: none when it must not call any, only the allowed ones when limited. */
export function offeredTools(request: ChatRequest): ToolSpec[] {
  const tools = request.tools ?? [];
  const choice = request.toolChoice;
  if (choice?.mode === "none") return [];
  const only = choice?.only;
  return only === undefined ? tools : tools.filter((t) => only.includes(t.name));
}

/**
 * Tokens a request may use, estimated before the call for the tokens/min budgets: about four
 * characters per token of prompt, plus the completion the agent allows.
 */
export function estimateTokens(request: ChatRequest): number {
  let chars = 0;
  for (const m of request.messages) {
    chars += m.content.length + (m.thinking?.length ?? 0);
    for (const call of m.toolCalls ?? []) chars += JSON.stringify(call.arguments).length + call.name.length;
  }
  for (const tool of request.tools ?? []) chars += JSON.stringify(tool).length;
  return Math.ceil(chars / 4) + (request.maxTokens ?? 0);
}
