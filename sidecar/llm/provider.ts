// The contract every LLM provider (Ollama, Bedrock, OpenAI, Anthropic) implements for the
// router. Failures are thrown as ProviderError so the router can decide between retry,
// fallback and giving up.
import type {
  ChatEvent,
  ChatRequest,
  ChatResult,
  EmbedRequest,
  EmbedResult,
  PassThroughApi,
  Unhonoured,
} from "./chat.ts";

export interface LlmProvider {
  /** The provider's name in the config, used in errors and metrics. */
  readonly name: string;
  /** The provider's protocol, as the config's `type` names it. */
  readonly type: "ollama" | "bedrock" | "openai" | "anthropic";
  /** The model this provider calls, whatever model the agent named. */
  readonly model: string;
  /**
   * The first feature of the request this provider cannot honour, or undefined when it can
   * take the whole request with its meaning intact. Pure: the router asks before every call.
   */
  unhonoured(request: ChatRequest): Unhonoured | undefined;
  /** The agent APIs whose requests this provider takes as they came (pass-through). */
  readonly passesThrough?: readonly PassThroughApi[];
  chat(request: ChatRequest, signal: AbortSignal): Promise<ChatResult>;
  /** Events as the provider produces them; the last is `done`. */
  chatStream(request: ChatRequest, signal: AbortSignal): AsyncIterable<ChatEvent>;
  /** Absent when the provider offers no embeddings; the router then skips it for embeddings. */
  embed?(request: EmbedRequest, signal: AbortSignal): Promise<EmbedResult>;
}
