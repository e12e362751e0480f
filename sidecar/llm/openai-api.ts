// The OpenAI-compatible agent API (/v1/chat/completions, /v1/models, /v1/embeddings): maps
// OpenAI's wire format to the neutral chat shape and back, streaming as server-sent events.
import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyReply } from "fastify";
import * as z from "zod";
import { fieldErrors, formatFieldErrors } from "../../api/field-errors.ts";
import type { ChatEvent, ChatMessage, ChatRequest, ChatResult, StopReason } from "./chat.ts";
import { type Failure, sendFailure } from "./failure.ts";
import type { Router } from "./router.ts";
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
  return { error: { message: failure.message, type: failure.type, param: null, code: failure.code } };
}

function sendError(reply: FastifyReply, error: unknown): FastifyReply {
  return sendFailure(reply, error, openAiError);
}

function invalid(reply: FastifyReply, error: z.ZodError): FastifyReply {
  const errors = fieldErrors(error);
  return reply.code(400).send({
    error: {
      message: `invalid request: ${formatFieldErrors(errors).replaceAll("\n", "; ")}`,
      type: "invalid_request_error",
      param: errors[0]?.path ?? null,
      code: "invalid_request",
    },
  });
}

function noLlm(reply: FastifyReply): FastifyReply {
  return reply.code(503).send({
    error: {
      message: "this agent has no LLM configured (the AgentType has no spec.llm)",
      type: "api_error",
      param: null,
      code: "no_llm",
    },
  });
}

export function registerOpenAiRoutes(app: FastifyInstance, router: () => Router | undefined): void {
  app.post("/v1/chat/completions", async (request, reply) => {
    const routerNow = router();
    if (routerNow === undefined) return noLlm(reply);
    const parsed = openAiChatRequest.safeParse(request.body);
    if (!parsed.success) return invalid(reply, parsed.error);
    const id = `chatcmpl-${randomUUID().replaceAll("-", "")}`;
    const created = Math.floor(Date.now() / 1000);
    const includeUsage = parsed.data.stream_options?.include_usage === true;
    return answerChat(
      reply,
      routerNow,
      fromOpenAiRequest(parsed.data),
      "openai",
      parsed.data.stream === true,
      {
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
        failure: openAiError,
      },
    );
  });

  app.get("/v1/models", async (_request, reply) => {
    const providers = router()?.providers ?? [];
    const models = [...new Set(providers.map((p) => p.model))];
    return reply.send({
      object: "list",
      data: models.map((id) => ({ id, object: "model", created: 0, owned_by: "agenttype" })),
    });
  });

  app.post("/v1/embeddings", async (request, reply) => {
    const routerNow = router();
    if (routerNow === undefined) return noLlm(reply);
    const parsed = openAiEmbeddingsRequest.safeParse(request.body);
    if (!parsed.success) return invalid(reply, parsed.error);
    const input = typeof parsed.data.input === "string" ? [parsed.data.input] : parsed.data.input;
    const format = parsed.data.encoding_format ?? "float";
    try {
      const answer = await routerNow.embed(input, "openai", agentGone(reply));
      return reply.send({
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
      return sendError(reply, error);
    }
  });
}
