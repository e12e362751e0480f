// The contract every LLM provider (Ollama, Bedrock) implements for the router. Failures are
// thrown as ProviderError so the router can decide between retry, fallback and giving up.
import type { ChatEvent, ChatRequest, ChatResult, EmbedResult } from "./chat.ts";

export interface LlmProvider {
  /** The provider's name in the config, used in errors and metrics. */
  readonly name: string;
  /** The model this provider calls, whatever model the agent named. */
  readonly model: string;
  chat(request: ChatRequest, signal: AbortSignal): Promise<ChatResult>;
  /** Events as the provider produces them; the last is `done`. */
  chatStream(request: ChatRequest, signal: AbortSignal): AsyncIterable<ChatEvent>;
  /** Absent when the provider offers no embeddings; the router then skips it for embeddings. */
  embed?(input: string[], signal: AbortSignal): Promise<EmbedResult>;
}
