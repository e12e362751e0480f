// The provider-neutral shape of a chat exchange: the agent-facing APIs (OpenAI, Ollama) map
// into it and the providers (Ollama, Bedrock) map out of it, so routing never sees a protocol.

export interface ToolCall {
  id: string;
  name: string;
  arguments: Record<string, unknown>;
}

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  toolCalls?: ToolCall[];
  /** For role tool: the call this message answers. */
  toolCallId?: string;
  /** For role tool: the name of the tool that answered (Ollama's tool_name). */
  toolName?: string;
}

export interface ToolSpec {
  name: string;
  description?: string;
  parameters?: Record<string, unknown>;
}

export interface ChatRequest {
  messages: ChatMessage[];
  tools?: ToolSpec[];
  temperature?: number;
  topP?: number;
  maxTokens?: number;
  stop?: string[];
}

export type StopReason = "stop" | "length" | "tool_calls";

export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

export interface ChatResult {
  text: string;
  toolCalls: ToolCall[];
  stopReason: StopReason;
  usage: Usage;
}

/** One piece of a streamed answer, in order; `done` is always last. */
export type ChatEvent =
  | { type: "text"; text: string }
  | { type: "tool_call"; call: ToolCall }
  | { type: "done"; stopReason: StopReason; usage: Usage };

export interface EmbedResult {
  embeddings: number[][];
  inputTokens: number;
}

/**
 * Tokens a request may use, estimated before the call for the tokens/min budgets: about four
 * characters per token of prompt, plus the completion the agent allows.
 */
export function estimateTokens(request: ChatRequest): number {
  let chars = 0;
  for (const m of request.messages) {
    chars += m.content.length;
    for (const call of m.toolCalls ?? []) chars += JSON.stringify(call.arguments).length + call.name.length;
  }
  for (const tool of request.tools ?? []) chars += JSON.stringify(tool).length;
  return Math.ceil(chars / 4) + (request.maxTokens ?? 0);
}
