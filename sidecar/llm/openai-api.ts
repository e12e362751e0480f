// The OpenAI-compatible agent API (/v1/chat/completions, /v1/models, /v1/embeddings): maps
// OpenAI's wire format to the neutral chat shape and back, streaming as server-sent events.
import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import * as z from "zod";
import { type LlmServices, registerLlmApi } from "./api.ts";
import type { ChatEvent, ChatMessage, ChatRequest, ChatResult, StopReason } from "./chat.ts";
import type { Failure } from "./failure.ts";
import { agentGone, answerChat } from "./stream.ts";

const textContent = z.union([
  z.string(),
  z.array(z.looseObject({ type: z.string(), text: z.string().optional() })),
  z.null(),
]);

const openAiMessage = z.looseObject({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: textContent.optional(),
  tool_calls: z
    .array(
      z.looseObject({
        id: z.string(),
        type: z.literal("function").optional(),
        function: z.looseObject({ name: z.string(), arguments: z.string() }),
      }),
    )
    .optional(),
  tool_call_id: z.string().optional(),
  name: z.string().optional(),
});

const openAiChatRequest = z.looseObject({
  model: z.string(),
  messages: z.array(openAiMessage).min(1),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  temperature: z.number().nullish(),
  top_p: z.number().nullish(),
  max_tokens: z.int().positive().nullish(),
  max_completion_tokens: z.int().positive().nullish(),
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
  tools: z
    .array(
      z.looseObject({
        type: z.literal("function"),
        function: z.looseObject({
          name: z.string(),
          description: z.string().optional(),
          parameters: z.record(z.string(), z.unknown()).optional(),
        }),
      }),
    )
    .nullish(),
});

const openAiEmbeddingsRequest = z.looseObject({
  model: z.string(),
  input: z.union([z.string(), z.array(z.string()).min(1)]),
  encoding_format: z.enum(["float", "base64"]).optional(),
});

type OpenAiChatRequest = z.output<typeof openAiChatRequest>;

function textOf(content: z.output<typeof textContent> | undefined): string {
  if (content === undefined || content === null) return "";
  if (typeof content === "string") return content;
  return content.map((part) => part.text ?? "").join("");
}

function parseArguments(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text === "" ? "{}" : text);
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : { value };
  } catch {
    // Models sometimes emit arguments that are not JSON; keep them rather than lose the turn.
    return { arguments: text };
  }
}

function fromOpenAiRequest(body: OpenAiChatRequest): ChatRequest {
  const messages: ChatMessage[] = body.messages.map((m) => {
    const message: ChatMessage = {
      role: m.role === "developer" ? "system" : m.role,
      content: textOf(m.content),
    };
    if (m.tool_calls !== undefined) {
      message.toolCalls = m.tool_calls.map((c) => ({
        id: c.id,
        name: c.function.name,
        arguments: parseArguments(c.function.arguments),
      }));
    }
    if (m.tool_call_id !== undefined) message.toolCallId = m.tool_call_id;
    if (m.role === "tool" && m.name !== undefined) message.toolName = m.name;
    return message;
  });
  // Ollama pairs tool results with calls by tool name; OpenAI agents send only the call id.
  const callNames = new Map(messages.flatMap((m) => (m.toolCalls ?? []).map((c) => [c.id, c.name] as const)));
  for (const m of messages) {
    if (m.role === "tool" && m.toolName === undefined && m.toolCallId !== undefined) {
      const name = callNames.get(m.toolCallId);
      if (name !== undefined) m.toolName = name;
    }
  }
  const request: ChatRequest = { messages };
  if (body.tools) {
    request.tools = body.tools.map((t) => ({
      name: t.function.name,
      ...(t.function.description === undefined ? {} : { description: t.function.description }),
      ...(t.function.parameters === undefined ? {} : { parameters: t.function.parameters }),
    }));
  }
  if (typeof body.temperature === "number") request.temperature = body.temperature;
  if (typeof body.top_p === "number") request.topP = body.top_p;
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  if (typeof maxTokens === "number") request.maxTokens = maxTokens;
  if (typeof body.stop === "string") request.stop = [body.stop];
  else if (Array.isArray(body.stop)) request.stop = body.stop;
  return request;
}

function toolCallsOf(result: Pick<ChatResult, "toolCalls">) {
  return result.toolCalls.map((c) => ({
    id: c.id,
    type: "function" as const,
    function: { name: c.name, arguments: JSON.stringify(c.arguments) },
  }));
}

function toOpenAiCompletion(result: ChatResult, model: string, id: string, created: number) {
  const message: Record<string, unknown> = { role: "assistant", content: result.text, refusal: null };
  if (result.toolCalls.length > 0) message.tool_calls = toolCallsOf(result);
  return {
    id,
    object: "chat.completion",
    created,
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: result.stopReason }],
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

  chunks(event: ChatEvent): object[] {
    const role = this.#sentRole ? {} : { role: "assistant" };
    this.#sentRole = true;
    const choice = (delta: object, finish: StopReason | null = null) => ({
      ...this.#base,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    });
    if (event.type === "text") return [choice({ ...role, content: event.text })];
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

function openAiError(failure: Failure) {
  return {
    error: { message: failure.message, type: failure.type, param: failure.param ?? null, code: failure.code },
  };
}

export function registerOpenAiApi(app: FastifyInstance, services: () => LlmServices): void {
  registerLlmApi(app, { prefix: "/v1", name: "OpenAI", errorShape: openAiError, services }, (routes) => {
    routes.post("/chat/completions", openAiChatRequest, async (body, call) => {
      const id = `chatcmpl-${randomUUID().replaceAll("-", "")}`;
      const created = Math.floor(Date.now() / 1000);
      const includeUsage = body.stream_options?.include_usage === true;
      return answerChat(call, fromOpenAiRequest(body), "openai", body.stream === true, {
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
    });

    routes.get("/models", async ({ router }, reply) => {
      const models = [...new Set((router?.providers ?? []).map((p) => p.model))];
      return reply.send({
        object: "list",
        data: models.map((id) => ({ id, object: "model", created: 0, owned_by: "agenttype" })),
      });
    });

    routes.post("/embeddings", openAiEmbeddingsRequest, async (body, call) => {
      const input = typeof body.input === "string" ? [body.input] : body.input;
      const format = body.encoding_format ?? "float";
      try {
        const answer = await call.router.embed(input, "openai", agentGone(call.reply));
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
