// The Ollama-native agent API (/api/chat, /api/generate, /api/embed, /api/tags, /api/show,
// /api/version): maps Ollama's wire format to the neutral chat shape and back, NDJSON streaming.
import type { FastifyInstance } from "fastify";
import * as z from "zod";
import { type LlmCall, type LlmServices, registerLlmApi } from "./api.ts";
import type { ChatEvent, ChatMessage, ChatRequest, ChatResult, Usage } from "./chat.ts";
import type { Failure } from "./failure.ts";
import { agentGone, answerChat } from "./stream.ts";

/** The Ollama version this API imitates, reported by /api/version. */
const OLLAMA_VERSION = "0.12.6";

const options = z
  .looseObject({
    temperature: z.number().optional(),
    top_p: z.number().optional(),
    num_predict: z.int().optional(),
    stop: z.array(z.string()).optional(),
  })
  .optional();

const tools = z
  .array(
    z.looseObject({
      type: z.string(),
      function: z.looseObject({
        name: z.string(),
        description: z.string().optional(),
        parameters: z.record(z.string(), z.unknown()).optional(),
      }),
    }),
  )
  .optional();

export const ollamaChatRequest = z.looseObject({
  model: z.string().min(1, { error: "model is required" }),
  messages: z
    .array(
      z.looseObject({
        role: z.enum(["system", "user", "assistant", "tool"]),
        content: z.string().default(""),
        tool_calls: z
          .array(
            z.looseObject({
              function: z.looseObject({ name: z.string(), arguments: z.record(z.string(), z.unknown()) }),
            }),
          )
          .optional(),
        tool_name: z.string().optional(),
      }),
    )
    .default([]),
  stream: z.boolean().default(true),
  tools,
  options,
});

const ollamaGenerateRequest = z.looseObject({
  model: z.string().min(1, { error: "model is required" }),
  prompt: z.string().default(""),
  system: z.string().optional(),
  stream: z.boolean().default(true),
  options,
});

const ollamaShowRequest = z.looseObject({ model: z.string().min(1, { error: "model is required" }) });

const ollamaEmbedRequest = z.looseObject({
  model: z.string().min(1, { error: "model is required" }),
  input: z.union([z.string(), z.array(z.string())]),
});

function withOptions(request: ChatRequest, opts: z.output<typeof options>): ChatRequest {
  if (opts?.temperature !== undefined) request.temperature = opts.temperature;
  if (opts?.top_p !== undefined) request.topP = opts.top_p;
  if (opts?.num_predict !== undefined && opts.num_predict > 0) request.maxTokens = opts.num_predict;
  if (opts?.stop !== undefined) request.stop = opts.stop;
  return request;
}

/**
 * Ollama's tool calls carry no id and its tool results name the tool instead; ids are made
 * up per request and each result is paired with the earliest unanswered call of its tool.
 */
export function fromOllamaChatRequest(body: z.output<typeof ollamaChatRequest>): ChatRequest {
  const unanswered: { id: string; name: string }[] = [];
  const messages: ChatMessage[] = body.messages.map((m, i) => {
    const message: ChatMessage = { role: m.role, content: m.content };
    if (m.tool_calls !== undefined) {
      message.toolCalls = m.tool_calls.map((c, j) => ({
        id: `call_${i}_${j}`,
        name: c.function.name,
        arguments: c.function.arguments,
      }));
      unanswered.push(...message.toolCalls.map(({ id, name }) => ({ id, name })));
    }
    if (m.role === "tool") {
      const index = unanswered.findIndex((c) => m.tool_name === undefined || c.name === m.tool_name);
      const [call] = index >= 0 ? unanswered.splice(index, 1) : [];
      if (call !== undefined) message.toolCallId = call.id;
      const name = m.tool_name ?? call?.name;
      if (name !== undefined) message.toolName = name;
    }
    return message;
  });
  const request: ChatRequest = { messages };
  if (body.tools !== undefined) {
    request.tools = body.tools.map((t) => ({
      name: t.function.name,
      ...(t.function.description === undefined ? {} : { description: t.function.description }),
      ...(t.function.parameters === undefined ? {} : { parameters: t.function.parameters }),
    }));
  }
  return withOptions(request, body.options);
}

function fromOllamaGenerateRequest(body: z.output<typeof ollamaGenerateRequest>): ChatRequest {
  const messages: ChatMessage[] = [];
  if (body.system !== undefined) messages.push({ role: "system", content: body.system });
  messages.push({ role: "user", content: body.prompt });
  return withOptions({ messages }, body.options);
}

function doneFields(stopReason: string, usage: Usage, startedAt: bigint) {
  const total = Number(process.hrtime.bigint() - startedAt);
  return {
    done: true,
    done_reason: stopReason === "length" ? "length" : "stop",
    total_duration: total,
    load_duration: 0,
    prompt_eval_count: usage.inputTokens,
    prompt_eval_duration: 0,
    eval_count: usage.outputTokens,
    eval_duration: total,
  };
}

function toolCallsOf(result: Pick<ChatResult, "toolCalls">) {
  return result.toolCalls.map((c) => ({ function: { name: c.name, arguments: c.arguments } }));
}

/** Maps one stream event to an /api/chat or /api/generate NDJSON object. */
function ollamaChunk(event: ChatEvent, model: string, kind: "chat" | "generate", startedAt: bigint) {
  const head = { model, created_at: new Date().toISOString() };
  const body = (content: string, extra: object = {}) =>
    kind === "chat" ? { message: { role: "assistant", content, ...extra } } : { response: content };
  if (event.type === "text") return { ...head, ...body(event.text), done: false };
  if (event.type === "tool_call") {
    // /api/generate has no tool calls; a model that makes one there has nothing to show.
    if (kind === "generate") return undefined;
    return { ...head, ...body("", { tool_calls: toolCallsOf({ toolCalls: [event.call] }) }), done: false };
  }
  const done = { ...head, ...body(""), ...doneFields(event.stopReason, event.usage, startedAt) };
  return kind === "generate" ? { ...done, context: [] } : done;
}

function toOllamaAnswer(result: ChatResult, model: string, kind: "chat" | "generate", startedAt: bigint) {
  const head = { model, created_at: new Date().toISOString() };
  const done = doneFields(result.stopReason, result.usage, startedAt);
  if (kind === "generate") return { ...head, response: result.text, ...done, context: [] };
  const message: Record<string, unknown> = { role: "assistant", content: result.text };
  if (result.toolCalls.length > 0) message.tool_calls = toolCallsOf(result);
  return { ...head, message, ...done };
}

/** Ollama's error object. */
function ollamaError(failure: Failure) {
  return { error: failure.message };
}

function modelDetails() {
  return {
    parent_model: "",
    format: "",
    family: "",
    families: [],
    parameter_size: "",
    quantization_level: "",
  };
}

export function registerOllamaApi(app: FastifyInstance, services: () => LlmServices): void {
  // Ollama reads every body as JSON whatever its content type, and its own docs call it with
  // `curl -d '{...}'` (application/x-www-form-urlencoded): so does this API, in its own scope,
  // so the other APIs keep fastify's strict content types.
  const options = {
    prefix: "/api",
    name: "Ollama",
    errorShape: ollamaError,
    services,
    anyContentTypeIsJson: true,
  };
  registerLlmApi(app, options, (routes) => {
    const answer = (call: LlmCall, chat: ChatRequest, stream: boolean, kind: "chat" | "generate") => {
      const startedAt = process.hrtime.bigint();
      return answerChat(call, chat, "ollama", stream, {
        whole: (result, model) => toOllamaAnswer(result, model, kind, startedAt),
        stream: (model) => ({
          contentType: "application/x-ndjson",
          event: (event) => {
            const chunk = ollamaChunk(event, model, kind, startedAt);
            return chunk === undefined ? "" : `${JSON.stringify(chunk)}\n`;
          },
          error: (failure) => `${JSON.stringify(ollamaError(failure))}\n`,
          end: "",
        }),
      });
    };

    routes.post("/chat", ollamaChatRequest, async (body, call) =>
      answer(call, fromOllamaChatRequest(body), body.stream, "chat"),
    );

    routes.post("/generate", ollamaGenerateRequest, async (body, call) =>
      answer(call, fromOllamaGenerateRequest(body), body.stream, "generate"),
    );

    routes.post("/embed", ollamaEmbedRequest, async (body, call) => {
      const input = typeof body.input === "string" ? [body.input] : body.input;
      const startedAt = process.hrtime.bigint();
      try {
        const result = await call.router.embed(input, "ollama", agentGone(call.reply));
        const total = Number(process.hrtime.bigint() - startedAt);
        return call.reply.send({
          model: result.provider.model,
          embeddings: result.value.embeddings,
          total_duration: total,
          load_duration: 0,
          prompt_eval_count: result.value.inputTokens,
        });
      } catch (error) {
        return call.fail(error);
      }
    });

    routes.get("/tags", async ({ router }, reply) => {
      const models = [...new Set((router?.providers ?? []).map((p) => p.model))];
      return reply.send({
        models: models.map((name) => ({
          name,
          model: name,
          modified_at: new Date(0).toISOString(),
          size: 0,
          digest: "",
          details: modelDetails(),
        })),
      });
    });

    // Every model name reaches the configured providers, so every name has something to show.
    routes.post("/show", ollamaShowRequest, async (_body, call) =>
      call.reply.send({
        license: "",
        modelfile: "",
        parameters: "",
        template: "",
        details: modelDetails(),
        model_info: {},
        capabilities: ["completion", "tools"],
        modified_at: new Date(0).toISOString(),
      }),
    );

    routes.get("/version", async (_services, reply) => reply.send({ version: OLLAMA_VERSION }));
  });
}
