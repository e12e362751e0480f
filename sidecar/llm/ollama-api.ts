// The Ollama-native agent API (/api/chat, /api/generate, /api/embed, /api/tags, /api/show,
// /api/version): the answers in Ollama's wire format, NDJSON when streaming. What a request
// may hold and how it maps to the neutral shape is ollama-request.ts.
import type { FastifyInstance } from "fastify";
import { type LlmCall, type LlmServices, registerLlmApi } from "./api.ts";
import type { AnswerEvent, ChatRequest, ChatResult, Logprob, Usage } from "./chat.ts";
import type { Failure } from "./failure.ts";
import {
  fromOllamaChatRequest,
  fromOllamaEmbedRequest,
  fromOllamaGenerateRequest,
  ollamaChatRequest,
  ollamaEmbedRequest,
  ollamaGenerateRequest,
  ollamaShowRequest,
} from "./ollama-request.ts";
import { agentGone, answerChat } from "./stream.ts";

/** The Ollama version this API imitates, reported by /api/version. */
const OLLAMA_VERSION = "0.12.6";

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

/** Ollama's logprobs: each token with its top alternatives. */
function toOllamaLogprobs(logprobs: readonly Logprob[]) {
  return logprobs.map((l) => ({
    token: l.token,
    logprob: l.logprob,
    ...(l.top === undefined ? {} : { top_logprobs: l.top }),
  }));
}

/** Maps one stream event to an /api/chat or /api/generate NDJSON object. */
function ollamaChunk(event: AnswerEvent, model: string, kind: "chat" | "generate", startedAt: bigint) {
  const head = { model, created_at: new Date().toISOString() };
  const body = (content: string, extra: object = {}) =>
    kind === "chat" ? { message: { role: "assistant", content, ...extra } } : { response: content, ...extra };
  if (event.type === "text") {
    const logprobs = event.logprobs === undefined ? {} : { logprobs: toOllamaLogprobs(event.logprobs) };
    return { ...head, ...body(event.text), done: false, ...logprobs };
  }
  if (event.type === "thinking") return { ...head, ...body("", { thinking: event.text }), done: false };
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
  const thinking = result.thinking === "" ? {} : { thinking: result.thinking };
  const logprobs = result.logprobs === undefined ? {} : { logprobs: toOllamaLogprobs(result.logprobs) };
  if (kind === "generate")
    return { ...head, response: result.text, ...thinking, ...done, context: [], ...logprobs };
  const message: Record<string, unknown> = { role: "assistant", content: result.text, ...thinking };
  if (result.toolCalls.length > 0) message.tool_calls = toolCallsOf(result);
  return { ...head, message, ...done, ...logprobs };
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
      const startedAt = process.hrtime.bigint();
      try {
        const result = await call.router.embed(fromOllamaEmbedRequest(body), "ollama", agentGone(call.reply));
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
