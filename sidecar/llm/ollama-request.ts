// What an agent may send to Ollama's /api/chat, /api/generate and /api/embed, and how it maps
// to the neutral chat shape. Every field and every option Ollama documents is mapped or
// refused here, naming why; a field Ollama does not have is refused as unknown. Whether a
// provider can honour what is mapped is for the provider to say (LlmProvider.unhonoured).
import * as z from "zod";
import type { ChatMessage, ChatRequest, EmbedRequest, Feature } from "./chat.ts";

const model = z.string().min(1, { error: "model is required" });

/** The options Ollama documents (docs/api.md, docs/modelfile.md and its client's Options type). */
const options = z.strictObject({
  numa: z.boolean().optional(),
  num_ctx: z.int().optional(),
  num_batch: z.int().optional(),
  num_gpu: z.int().optional(),
  main_gpu: z.int().optional(),
  low_vram: z.boolean().optional(),
  f16_kv: z.boolean().optional(),
  logits_all: z.boolean().optional(),
  vocab_only: z.boolean().optional(),
  use_mmap: z.boolean().optional(),
  use_mlock: z.boolean().optional(),
  embedding_only: z.boolean().optional(),
  num_thread: z.int().optional(),
  num_keep: z.int().optional(),
  seed: z.int().optional(),
  num_predict: z.int().optional(),
  top_k: z.int().optional(),
  top_p: z.number().optional(),
  min_p: z.number().optional(),
  tfs_z: z.number().optional(),
  typical_p: z.number().optional(),
  repeat_last_n: z.int().optional(),
  temperature: z.number().optional(),
  repeat_penalty: z.number().optional(),
  presence_penalty: z.number().optional(),
  frequency_penalty: z.number().optional(),
  mirostat: z.int().optional(),
  mirostat_tau: z.number().optional(),
  mirostat_eta: z.number().optional(),
  penalize_newline: z.boolean().optional(),
  stop: z.array(z.string()).optional(),
});

type Options = z.output<typeof options>;

/** Base64 image data as Ollama takes it: no data: prefix, no URL. */
const image = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, {
  error: "an image must be base64 data, without a data: prefix (Ollama takes no URLs)",
});

const format = z.union([z.literal("json"), z.literal(""), z.record(z.string(), z.unknown())], {
  error: 'format must be "json" or a JSON schema object',
});

const common = {
  model,
  stream: z.boolean().default(true),
  format: format.optional(),
  options: options.optional(),
  keep_alive: z.union([z.string(), z.number()]).optional(),
  think: z.union([z.boolean(), z.enum(["low", "medium", "high"])]).optional(),
  logprobs: z.boolean().optional(),
  top_logprobs: z.int().min(0).max(20).optional(),
};

export const ollamaChatRequest = z.strictObject({
  ...common,
  messages: z
    .array(
      z.strictObject({
        role: z.enum(["system", "user", "assistant", "tool"]),
        content: z.string().default(""),
        images: z.array(image).optional(),
        thinking: z.string().optional(),
        tool_calls: z
          .array(
            z.strictObject({
              function: z.strictObject({
                // The position of the call among the message's calls, which their order keeps.
                index: z.int().optional(),
                name: z.string(),
                arguments: z.record(z.string(), z.unknown()),
              }),
            }),
          )
          .optional(),
        tool_name: z.string().optional(),
      }),
    )
    .default([]),
  tools: z
    .array(
      z.strictObject({
        type: z.literal("function", { error: "Ollama's tools are functions" }),
        function: z.strictObject({
          name: z.string().min(1),
          description: z.string().optional(),
          parameters: z.record(z.string(), z.unknown()).optional(),
        }),
      }),
    )
    .optional(),
});

const THROUGH_CHAT = "the sidecar answers /api/generate through its providers' chat, which has no";

export const ollamaGenerateRequest = z.strictObject({
  ...common,
  prompt: z.string().default(""),
  system: z.string().optional(),
  images: z.array(image).optional(),
  suffix: z.literal("", { error: `${THROUGH_CHAT} fill-in-the-middle suffix` }).optional(),
  template: z.literal("", { error: `${THROUGH_CHAT} prompt template` }).optional(),
  raw: z.literal(false, { error: `${THROUGH_CHAT} raw prompt` }).optional(),
  context: z
    .array(z.int())
    .max(0, { error: `${THROUGH_CHAT} context tokens; send the conversation to /api/chat` })
    .optional(),
  width: z.never({ error: "image generation reaches no provider" }).optional(),
  height: z.never({ error: "image generation reaches no provider" }).optional(),
  steps: z.never({ error: "image generation reaches no provider" }).optional(),
});

export const ollamaEmbedRequest = z.strictObject({
  model,
  input: z.union([z.string(), z.array(z.string())]),
  truncate: z.boolean().optional(),
  dimensions: z.int().positive().optional(),
  keep_alive: z.union([z.string(), z.number()]).optional(),
  options: options.optional(),
});

/** /api/show names a model and reaches no provider: every model name has something to show. */
export const ollamaShowRequest = z.looseObject({ model });

export type OllamaChatRequest = z.output<typeof ollamaChatRequest>;
export type OllamaGenerateRequest = z.output<typeof ollamaGenerateRequest>;
export type OllamaEmbedRequest = z.output<typeof ollamaEmbedRequest>;

/** The options with a neutral field, by their Ollama name. */
const NEUTRAL_OPTIONS = {
  temperature: "temperature",
  top_p: "topP",
  top_k: "topK",
  stop: "stop",
  seed: "seed",
  frequency_penalty: "frequencyPenalty",
  presence_penalty: "presencePenalty",
} as const satisfies Partial<Record<keyof Options, keyof ChatRequest>>;

/** The fields, options and settings both chat endpoints share. */
function withCommon(
  request: ChatRequest,
  body: Pick<OllamaChatRequest, "format" | "options" | "keep_alive" | "think" | "logprobs" | "top_logprobs">,
): ChatRequest {
  const { fields } = request;
  const ollamaOptions: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body.options ?? {})) {
    if (value === undefined) continue;
    const neutral = NEUTRAL_OPTIONS[key as keyof typeof NEUTRAL_OPTIONS] as keyof ChatRequest | undefined;
    if (neutral !== undefined) {
      Object.assign(request, { [neutral]: value });
      fields[neutral as Feature] = `options.${key}`;
    } else if (key === "num_predict" && typeof value === "number" && value > 0) {
      request.maxTokens = value;
      fields.maxTokens = "options.num_predict";
    } else {
      // num_ctx, repeat_penalty, num_gpu, ... and num_predict's -1 (no limit) and -2 (fill the context).
      ollamaOptions[key] = value;
      fields[`options.${key}`] = `options.${key}`;
    }
  }
  if (Object.keys(ollamaOptions).length > 0) request.ollamaOptions = ollamaOptions;
  if (body.format === "json") request.responseFormat = { type: "json" };
  else if (typeof body.format === "object")
    request.responseFormat = { type: "json_schema", schema: body.format };
  if (request.responseFormat !== undefined) fields.responseFormat = "format";
  if (body.think !== undefined) {
    request.think = body.think;
    fields.think = "think";
  }
  if (body.keep_alive !== undefined) {
    request.keepAlive = body.keep_alive;
    fields.keepAlive = "keep_alive";
  }
  if (body.logprobs === true) {
    request.logprobs = { top: body.top_logprobs ?? 0 };
    fields.logprobs = "logprobs";
  }
  return request;
}

/**
 * Ollama's tool calls carry no id and its tool results name the tool instead; ids are made
 * up per request and each result is paired with the earliest unanswered call of its tool.
 */
export function fromOllamaChatRequest(body: OllamaChatRequest): ChatRequest {
  const fields: ChatRequest["fields"] = {};
  const unanswered: { id: string; name: string }[] = [];
  const messages: ChatMessage[] = body.messages.map((m, i) => {
    const message: ChatMessage = { role: m.role, content: m.content };
    if (m.images !== undefined && m.images.length > 0) {
      message.images = m.images;
      fields.images ??= `messages[${i}].images`;
    }
    if (m.thinking !== undefined) {
      message.thinking = m.thinking;
      fields.thinking ??= `messages[${i}].thinking`;
    }
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
  const request: ChatRequest = { messages, fields };
  if (body.tools !== undefined && body.tools.length > 0) {
    request.tools = body.tools.map((t) => ({
      name: t.function.name,
      ...(t.function.description === undefined ? {} : { description: t.function.description }),
      ...(t.function.parameters === undefined ? {} : { parameters: t.function.parameters }),
    }));
    fields.tools = "tools";
  }
  return withCommon(request, body);
}

export function fromOllamaGenerateRequest(body: OllamaGenerateRequest): ChatRequest {
  const fields: ChatRequest["fields"] = {};
  const messages: ChatMessage[] = [];
  if (body.system !== undefined) messages.push({ role: "system", content: body.system });
  const prompt: ChatMessage = { role: "user", content: body.prompt };
  if (body.images !== undefined && body.images.length > 0) {
    prompt.images = body.images;
    fields.images = "images";
  }
  messages.push(prompt);
  return withCommon({ messages, fields }, body);
}

export function fromOllamaEmbedRequest(body: OllamaEmbedRequest): EmbedRequest {
  const request: EmbedRequest = { input: typeof body.input === "string" ? [body.input] : body.input };
  if (body.dimensions !== undefined) request.dimensions = body.dimensions;
  if (body.truncate !== undefined) request.truncate = body.truncate;
  if (body.keep_alive !== undefined) request.keepAlive = body.keep_alive;
  if (body.options !== undefined && Object.keys(body.options).length > 0)
    request.ollamaOptions = body.options;
  return request;
}
