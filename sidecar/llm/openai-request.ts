// What an agent may send to /v1/chat/completions and /v1/embeddings, and how it maps to the
// neutral chat shape. Every field of OpenAI's API is either mapped or refused here, naming
// why; a field the API does not have is refused as unknown. Whether a provider can honour
// what is mapped is for the provider to say (LlmProvider.unhonoured).
import * as z from "zod";
import {
  type ChatMessage,
  type ChatRequest,
  type EmbedRequest,
  featureSetter,
  nameToolResults,
  type Reasoning,
  type ToolChoice,
} from "./chat.ts";

/** A field no provider behind the sidecar can honour: only absence or null is accepted. */
export const refused = (reason: string) => z.null({ error: reason }).optional();

const NO_CACHE_CONTROL =
  "prompt cache breakpoints reach no provider: Ollama and Converse's cache points differ";
const NO_PARTICIPANT_NAMES =
  "participant names reach no provider: the messages of Ollama and Converse have no name";

const textPart = z.strictObject({
  type: z.literal("text"),
  text: z.string(),
  prompt_cache_breakpoint: refused(NO_CACHE_CONTROL),
});

/** A base64 data URL; remote URLs are refused, so the sidecar never fetches on the agent's behalf. */
export const DATA_URL = /^data:(image\/[a-z0-9.+-]+)?(;[a-z0-9=.+-]+)*;base64,([A-Za-z0-9+/\s]*={0,2})$/i;

const imagePart = z.strictObject({
  type: z.literal("image_url"),
  image_url: z.strictObject({
    url: z.string().regex(DATA_URL, {
      error:
        "the sidecar does not fetch remote images: send the image inline as a data URL (data:image/png;base64,...)",
    }),
    detail: z
      .literal("auto", { error: "Ollama and Converse have no image detail setting; send auto or nothing" })
      .optional(),
  }),
  prompt_cache_breakpoint: refused(NO_CACHE_CONTROL),
});

/** A part of a kind no provider takes: refused with the reason, whatever else it holds. */
export const refusedPart = <T extends string>(type: T, reason: string) =>
  z.looseObject({ type: z.literal(type) }).refine(() => false, { error: reason });

const userPart = z.discriminatedUnion("type", [
  textPart,
  imagePart,
  refusedPart("input_audio", "audio input reaches no provider: Ollama and Converse take text and images"),
  refusedPart("file", "file parts reach no provider: Ollama and Converse take text and images"),
]);

const assistantPart = z.discriminatedUnion("type", [
  textPart,
  z.strictObject({ type: z.literal("refusal"), refusal: z.string() }),
]);

const toolCall = z.strictObject({
  id: z.string(),
  type: z.literal("function"),
  function: z.strictObject({ name: z.string(), arguments: z.string() }),
});

const message = z.discriminatedUnion(
  "role",
  [
    z.strictObject({
      role: z.enum(["system", "developer"]),
      content: z.union([z.string(), z.array(textPart)]),
      name: refused(NO_PARTICIPANT_NAMES),
    }),
    z.strictObject({
      role: z.literal("user"),
      content: z.union([z.string(), z.array(userPart)]),
      name: refused(NO_PARTICIPANT_NAMES),
    }),
    z.strictObject({
      role: z.literal("assistant"),
      content: z.union([z.string(), z.array(assistantPart)]).nullish(),
      refusal: z.string().nullish(),
      tool_calls: z.array(toolCall).nullish(),
      name: refused(NO_PARTICIPANT_NAMES),
      audio: refused("audio answers reach no provider"),
      function_call: refused("the deprecated function_call is not mapped; send tool_calls"),
    }),
    z.strictObject({
      role: z.literal("tool"),
      content: z.union([z.string(), z.array(textPart)]),
      tool_call_id: z.string(),
      // Not in OpenAI's current API, but clients still send the tool's name (LangChain does).
      name: z.string().optional(),
    }),
  ],
  { error: "role must be system, developer, user, assistant or tool" },
);

const functionTool = z.strictObject({
  type: z.literal("function"),
  function: z.strictObject({
    name: z.string().min(1),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullish(),
  }),
});

const namedFunction = z.strictObject({
  type: z.literal("function"),
  function: z.strictObject({ name: z.string() }),
});

const toolChoice = z.union([
  z.enum(["none", "auto", "required"]),
  namedFunction,
  z.strictObject({
    type: z.literal("allowed_tools"),
    allowed_tools: z.strictObject({
      mode: z.enum(["auto", "required"]),
      tools: z.array(namedFunction).min(1),
    }),
  }),
  refusedPart("custom", "custom tools reach no provider: Ollama and Converse call functions only"),
]);

const responseFormat = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("text") }),
  z.strictObject({ type: z.literal("json_object") }),
  z.strictObject({
    type: z.literal("json_schema"),
    json_schema: z.strictObject({
      name: z.string(),
      description: z.string().optional(),
      schema: z.record(z.string(), z.unknown()).optional(),
      // Ollama's format and Converse's outputConfig constrain decoding: strict either way.
      strict: z.boolean().nullish(),
    }),
  }),
]);

export const openAiChatRequest = z
  .strictObject({
    model: z.string(),
    messages: z.array(message).min(1),
    stream: z.boolean().nullish(),
    stream_options: z
      .strictObject({
        include_usage: z.boolean().nullish(),
        include_obfuscation: z
          .literal(false, { error: "the sidecar sends no obfuscation padding in stream events" })
          .nullish(),
      })
      .nullish(),
    temperature: z.number().min(0).max(2).nullish(),
    top_p: z.number().min(0).max(1).nullish(),
    max_tokens: z.int().positive().nullish(),
    max_completion_tokens: z.int().positive().nullish(),
    stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish(),
    seed: z.int().nullish(),
    frequency_penalty: z.number().min(-2).max(2).nullish(),
    presence_penalty: z.number().min(-2).max(2).nullish(),
    n: z.int().min(1).max(128).nullish(),
    logprobs: z.boolean().nullish(),
    top_logprobs: z.int().min(0).max(20).nullish(),
    response_format: responseFormat.nullish(),
    tools: z
      .array(
        z.discriminatedUnion("type", [
          functionTool,
          refusedPart("custom", "custom tools reach no provider: Ollama and Converse call functions only"),
        ]),
      )
      .nullish(),
    tool_choice: toolChoice.nullish(),
    parallel_tool_calls: z.boolean().nullish(),
    reasoning_effort: z.enum(["none", "minimal", "low", "medium", "high", "xhigh", "max"]).nullish(),
    service_tier: z
      .enum(["auto", "default", "flex", "priority"], {
        error: "service_tier takes auto, default, flex or priority: no provider has the others",
      })
      .nullish(),
    metadata: z.record(z.string(), z.string()).nullish(),
    store: z.literal(false, { error: "the sidecar stores no completions" }).nullish(),
    modalities: z.array(z.literal("text", { error: "the providers answer in text only" })).nullish(),
    logit_bias: z
      .record(z.string(), z.number())
      .refine((bias) => Object.keys(bias).length === 0, {
        error: "token biases reach no provider: Ollama and Converse have none",
      })
      .nullish(),
    user: refused("end-user identifiers reach no provider: Ollama and Converse have none"),
    safety_identifier: refused("safety identifiers reach no provider: Ollama and Converse have none"),
    prompt_cache_key: refused("prompt cache keys reach no provider: Ollama and Converse have none"),
    prompt_cache_retention: refused("prompt cache retention reaches no provider"),
    prompt_cache_options: refused("prompt cache options reach no provider"),
    audio: refused("audio answers reach no provider: the providers answer in text only"),
    prediction: refused("predicted outputs reach no provider: Ollama and Converse have none"),
    verbosity: refused("verbosity reaches no provider: Ollama and Converse have no such setting"),
    web_search_options: refused("web search reaches no provider: give the agent a search tool instead"),
    moderation: refused("moderation reaches no provider: Ollama and Converse have none"),
    functions: refused("the deprecated functions are not mapped; send tools"),
    function_call: refused("the deprecated function_call is not mapped; send tool_choice"),
  })
  .superRefine((body, ctx) => {
    const names = new Set(
      (body.tools ?? []).flatMap((t) => (t.type === "function" ? [t.function.name] : [])),
    );
    const choice = body.tool_choice;
    if (choice !== undefined && choice !== null && choice !== "none" && names.size === 0) {
      ctx.addIssue({ code: "custom", path: ["tool_choice"], message: "tool_choice needs tools" });
    }
    const named =
      typeof choice === "object" && choice !== null && choice.type === "function"
        ? [choice.function.name]
        : typeof choice === "object" && choice !== null && choice.type === "allowed_tools"
          ? choice.allowed_tools.tools.map((t) => t.function.name)
          : [];
    for (const name of named) {
      if (names.size > 0 && !names.has(name))
        ctx.addIssue({ code: "custom", path: ["tool_choice"], message: `no tool named "${name}" in tools` });
    }
    if ((body.top_logprobs ?? 0) > 0 && body.logprobs !== true) {
      ctx.addIssue({ code: "custom", path: ["top_logprobs"], message: "top_logprobs needs logprobs: true" });
    }
    const { max_tokens: maxTokens, max_completion_tokens: maxCompletion } = body;
    if (maxTokens != null && maxCompletion != null && maxTokens !== maxCompletion) {
      ctx.addIssue({
        code: "custom",
        path: ["max_tokens"],
        message: "max_tokens and max_completion_tokens disagree; send one",
      });
    }
  });

export type OpenAiChatRequest = z.output<typeof openAiChatRequest>;

export const openAiEmbeddingsRequest = z.strictObject({
  model: z.string(),
  input: z.union([z.string(), z.array(z.string()).min(1)], {
    error: "input must be a string or an array of strings; token arrays reach no provider",
  }),
  encoding_format: z.enum(["float", "base64"]).optional(),
  dimensions: z.int().positive().optional(),
  user: refused("end-user identifiers reach no provider: Ollama has none"),
});

export type OpenAiEmbeddingsRequest = z.output<typeof openAiEmbeddingsRequest>;

type Content = z.output<typeof message>["content"];

function textOf(content: Content): string {
  if (content === undefined || content === null) return "";
  if (typeof content === "string") return content;
  return content
    .map((part) => (part.type === "text" ? part.text : part.type === "refusal" ? part.refusal : ""))
    .join("");
}

/** A tool call's arguments as the model wrote them (JSON text), as an object. */
export function parseArguments(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text === "" ? "{}" : text);
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : { value };
  } catch {
    // Models sometimes emit arguments that are not JSON; keep them rather than lose the turn.
    return { arguments: text };
  }
}

function toolChoiceOf(choice: OpenAiChatRequest["tool_choice"]): ToolChoice | undefined {
  if (choice === undefined || choice === null) return undefined;
  if (typeof choice === "string") return { mode: choice };
  if (choice.type === "function") return { mode: "required", only: [choice.function.name] };
  if (choice.type === "allowed_tools")
    return { mode: choice.allowed_tools.mode, only: choice.allowed_tools.tools.map((t) => t.function.name) };
  return undefined;
}

/** Maps a validated request to the neutral shape, noting the OpenAI name of every feature used. */
export function fromOpenAiRequest(body: OpenAiChatRequest): ChatRequest {
  const fields: ChatRequest["fields"] = {};
  const messages: ChatMessage[] = body.messages.map((m, i) => {
    const out: ChatMessage = { role: m.role === "developer" ? "system" : m.role, content: textOf(m.content) };
    // A refusal is what the assistant said: it goes back to the model as the turn's text.
    if (m.role === "assistant" && out.content === "" && m.refusal != null) out.content = m.refusal;
    if (m.role === "user" && Array.isArray(m.content)) {
      const images: string[] = [];
      for (const [j, part] of m.content.entries()) {
        if (part.type !== "image_url") continue;
        fields.images ??= `messages[${i}].content[${j}]`;
        images.push((DATA_URL.exec(part.image_url.url)?.[3] ?? "").replace(/\s/g, ""));
      }
      if (images.length > 0) out.images = images;
    }
    if (m.role === "assistant" && m.tool_calls != null && m.tool_calls.length > 0) {
      out.toolCalls = m.tool_calls.map((c) => ({
        id: c.id,
        name: c.function.name,
        arguments: parseArguments(c.function.arguments),
      }));
    }
    if (m.role === "tool") {
      out.toolCallId = m.tool_call_id;
      if (m.name !== undefined) out.toolName = m.name;
    }
    return out;
  });
  nameToolResults(messages);
  const request: ChatRequest = { messages, fields };
  const set = featureSetter(request);
  const functions = (body.tools ?? []).flatMap((t) => (t.type === "function" ? [t.function] : []));
  if (functions.length > 0) {
    request.tools = functions.map((f) => ({
      name: f.name,
      ...(f.description === undefined ? {} : { description: f.description }),
      ...(f.parameters === undefined ? {} : { parameters: f.parameters }),
      ...(f.strict == null ? {} : { strict: f.strict }),
    }));
    const strict = functions.findIndex((f) => f.strict === true);
    if (strict >= 0) fields.strict = `tools[${strict}].function.strict`;
  }
  set("toolChoice", toolChoiceOf(body.tool_choice), "tool_choice");
  if (body.parallel_tool_calls === false) set("parallelToolCalls", false, "parallel_tool_calls");
  set("temperature", body.temperature, "temperature");
  set("topP", body.top_p, "top_p");
  if (body.max_completion_tokens != null)
    set("maxTokens", body.max_completion_tokens, "max_completion_tokens");
  else set("maxTokens", body.max_tokens, "max_tokens");
  set("stop", typeof body.stop === "string" ? [body.stop] : body.stop, "stop");
  set("seed", body.seed, "seed");
  set("frequencyPenalty", body.frequency_penalty, "frequency_penalty");
  set("presencePenalty", body.presence_penalty, "presence_penalty");
  if ((body.n ?? 1) > 1) set("choices", body.n, "n");
  if (body.logprobs === true) set("logprobs", { top: body.top_logprobs ?? 0 }, "logprobs");
  const format = body.response_format;
  if (format?.type === "json_object") set("responseFormat", { type: "json" }, "response_format");
  if (format?.type === "json_schema") {
    const { schema, name, description } = format.json_schema;
    set(
      "responseFormat",
      schema === undefined
        ? { type: "json" }
        : { type: "json_schema", schema, name, ...(description === undefined ? {} : { description }) },
      "response_format",
    );
  }
  const effort = body.reasoning_effort;
  if (effort != null)
    set("think", (effort === "none" ? false : effort) satisfies Reasoning, "reasoning_effort");
  if (body.service_tier === "flex" || body.service_tier === "priority")
    set("serviceTier", body.service_tier, "service_tier");
  set("metadata", body.metadata, "metadata");
  return request;
}

export function fromOpenAiEmbeddingsRequest(body: OpenAiEmbeddingsRequest): EmbedRequest {
  const request: EmbedRequest = { input: typeof body.input === "string" ? [body.input] : body.input };
  if (body.dimensions !== undefined) request.dimensions = body.dimensions;
  return request;
}
