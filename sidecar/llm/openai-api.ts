// The OpenAI-compatible agent API (/v1/chat/completions, /v1/models, /v1/embeddings): the
// answers in OpenAI's wire format, streaming as server-sent events. What a request may hold
// and how it maps to the neutral shape is openai-request.ts.
import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { type LlmServices, registerLlmApi } from "./api.ts";
import { type AnswerEvent, type ChatResult, type Logprob, offerAsItCame, type StopReason } from "./chat.ts";
import type { Failure } from "./failure.ts";
import {
  fromOpenAiEmbeddingsRequest,
  fromOpenAiRequest,
  openAiChatRequest,
  openAiEmbeddingsRequest,
} from "./openai-request.ts";
import { agentGone, answerChat } from "./stream.ts";

function toolCallsOf(result: Pick<ChatResult, "toolCalls">) {
  return result.toolCalls.map((c) => ({
    id: c.id,
    type: "function" as const,
    function: { name: c.name, arguments: JSON.stringify(c.arguments) },
  }));
}

/** OpenAI's logprobs of a choice: each token with its UTF-8 bytes, and its top alternatives. */
function toOpenAiLogprobs(logprobs: readonly Logprob[] | undefined) {
  if (logprobs === undefined) return null;
  const entry = (token: string, logprob: number) => ({
    token,
    logprob,
    bytes: [...Buffer.from(token, "utf8")],
  });
  return {
    content: logprobs.map((l) => ({
      ...entry(l.token, l.logprob),
      top_logprobs: (l.top ?? []).map((t) => entry(t.token, t.logprob)),
    })),
    refusal: null,
  };
}

function toOpenAiCompletion(result: ChatResult, model: string, id: string, created: number) {
  const message: Record<string, unknown> = { role: "assistant", content: result.text, refusal: null };
  if (result.toolCalls.length > 0) message.tool_calls = toolCallsOf(result);
  return {
    id,
    object: "chat.completion",
    created,
    model,
    choices: [
      { index: 0, message, logprobs: toOpenAiLogprobs(result.logprobs), finish_reason: result.stopReason },
    ],
    usage: {
      prompt_tokens: result.usage.inputTokens,
      completion_tokens: result.usage.outputTokens,
      total_tokens: result.usage.inputTokens + result.usage.outputTokens,
    },
  };
}

/** Maps stream events to chat.completion.chunk objects, numbering tool calls as OpenAI does. */
class OpenAiChunker {
  readonly #base: { id: string; object: string; created: number; model: string };
  readonly #includeUsage: boolean;
  #toolIndex = 0;
  #sentRole = false;

  constructor(model: string, id: string, created: number, includeUsage: boolean) {
    this.#base = { id, object: "chat.completion.chunk", created, model };
    this.#includeUsage = includeUsage;
  }

  chunks(event: AnswerEvent): object[] {
    // OpenAI's chat completions show no reasoning; the answer that follows it is what they carry.
    if (event.type === "thinking") return [];
    const role = this.#sentRole ? {} : { role: "assistant" };
    this.#sentRole = true;
    const choice = (
      delta: object,
      finish: StopReason | null = null,
      logprobs: Logprob[] | undefined = undefined,
    ) => ({
      ...this.#base,
      choices: [{ index: 0, delta, logprobs: toOpenAiLogprobs(logprobs), finish_reason: finish }],
    });
    if (event.type === "text") return [choice({ ...role, content: event.text }, null, event.logprobs)];
    if (event.type === "tool_call") {
      const index = this.#toolIndex++;
      const [call] = toolCallsOf({ toolCalls: [event.call] });
      return [choice({ ...role, tool_calls: [{ index, ...call }] })];
    }
    const out: object[] = [choice(role, event.stopReason)];
    if (this.#includeUsage) {
      out.push({
        ...this.#base,
        choices: [],
        usage: {
          prompt_tokens: event.usage.inputTokens,
          completion_tokens: event.usage.outputTokens,
          total_tokens: event.usage.inputTokens + event.usage.outputTokens,
        },
      });
    }
    return out;
  }
}

/** Embeddings as OpenAI sends them; the openai client asks for base64 of little-endian float32. */
function encodeEmbedding(vector: readonly number[], format: "float" | "base64"): number[] | string {
  if (format === "float") return [...vector];
  return Buffer.from(new Float32Array(vector).buffer).toString("base64");
}

export function openAiError(failure: Failure) {
  return {
    error: { message: failure.message, type: failure.type, param: failure.param ?? null, code: failure.code },
  };
}

export function registerOpenAiApi(app: FastifyInstance, services: () => LlmServices): void {
  registerLlmApi(app, { prefix: "/v1", name: "OpenAI", errorShape: openAiError, services }, (routes) => {
    routes.post(
      "/chat/completions",
      openAiChatRequest,
      async (body, call) => {
        const id = `chatcmpl-${randomUUID().replaceAll("-", "")}`;
        const created = Math.floor(Date.now() / 1000);
        const includeUsage = body.stream_options?.include_usage === true;
        const chat = fromOpenAiRequest(body);
        offerAsItCame(chat, "openai-chat", call.body, call.heldBack);
        return answerChat(call, chat, "openai", body.stream === true, {
          whole: (result, model) => toOpenAiCompletion(result, model, id, created),
          stream: (model) => {
            const chunker = new OpenAiChunker(model, id, created, includeUsage);
            return {
              contentType: "text/event-stream",
              event: (event) =>
                chunker
                  .chunks(event)
                  .map((c) => `data: ${JSON.stringify(c)}\n\n`)
                  .join(""),
              error: (failure) => `data: ${JSON.stringify(openAiError(failure))}\n\n`,
              end: "data: [DONE]\n\n",
            };
          },
        });
      },
      "openai-chat",
    );

    routes.get("/models", async ({ router }, reply) => {
      const models = [...new Set((router?.providers ?? []).map((p) => p.model))];
      return reply.send({
        object: "list",
        data: models.map((id) => ({ id, object: "model", created: 0, owned_by: "agenttype" })),
      });
    });

    routes.post("/embeddings", openAiEmbeddingsRequest, async (body, call) => {
      const format = body.encoding_format ?? "float";
      try {
        const answer = await call.router.embed(
          fromOpenAiEmbeddingsRequest(body),
          "openai",
          agentGone(call.reply),
        );
        return call.reply.send({
          object: "list",
          data: answer.value.embeddings.map((vector, index) => ({
            object: "embedding",
            index,
            embedding: encodeEmbedding(vector, format),
          })),
          model: answer.provider.model,
          usage: { prompt_tokens: answer.value.inputTokens, total_tokens: answer.value.inputTokens },
        });
      } catch (error) {
        return call.fail(error);
      }
    });
  });
}
