// What an agent may send to OpenAI's /v1/responses, and how it maps to the neutral chat shape.
// Every field and input item of the Responses API is mapped or refused here, naming why; a
// field the API does not have is refused as unknown. Whether a provider can honour what is
// mapped is for the provider to say (LlmProvider.unhonoured).
import * as z from "zod";
import {
  type ChatMessage,
  type ChatRequest,
  featureSetter,
  nameToolResults,
  type Reasoning,
  type ToolChoice,
} from "../chat.ts";
import { DATA_URL, parseArguments, refused, refusedPart } from "../openai-request.ts";

const NO_FILES = "files reach no provider: Ollama and Converse take text and images";
const NO_HOSTED_TOOLS =
  "only function tools reach a provider: hosted tools (web search, file search, computer, MCP, shell, ...) are OpenAI's own";

const inputText = z.strictObject({ type: z.literal("input_text"), text: z.string() });

const inputImage = z.strictObject({
  type: z.literal("input_image"),
  image_url: z.string().regex(DATA_URL, {
    error:
      "the sidecar does not fetch remote images: send the image inline as a data URL (data:image/png;base64,...)",
  }),
  file_id: refused("the sidecar has no Files API: send the image inline as a data URL"),
  detail: z
    .literal("auto", { error: "Ollama and Converse have no image detail setting; send auto" })
    .optional(),
});

const inputContent = z.union([
  z.string(),
  z.array(
    z.discriminatedUnion("type", [
      inputText,
      inputImage,
      refusedPart("input_file", NO_FILES),
      refusedPart("input_audio", "audio input reaches no provider: Ollama and Converse take text and images"),
    ]),
  ),
]);

const outputText = z.strictObject({
  type: z.literal("output_text"),
  text: z.string(),
  annotations: z
    .array(z.unknown())
    .max(0, { error: "annotations reach no provider: their messages carry no citations" })
    .optional(),
  logprobs: z.array(z.unknown()).optional(),
});

/** Fields an item carries back from an earlier response; they identify it and say nothing to the model. */
const itemEcho = {
  id: z.string().optional(),
  status: z.enum(["in_progress", "completed", "incomplete"]).optional(),
};

const message = z.discriminatedUnion("role", [
  z.strictObject({
    type: z.literal("message"),
    role: z.enum(["user", "system", "developer"]),
    content: inputContent,
    ...itemEcho,
  }),
  z.strictObject({
    type: z.literal("message"),
    role: z.literal("assistant"),
    content: z.union([
      z.string(),
      z.array(
        z.discriminatedUnion("type", [
          outputText,
          inputText,
          z.strictObject({ type: z.literal("refusal"), refusal: z.string() }),
        ]),
      ),
    ]),
    phase: z.enum(["commentary", "final_answer"]).nullish(),
    ...itemEcho,
  }),
]);

const functionCall = z.strictObject({
  type: z.literal("function_call"),
  call_id: z.string(),
  name: z.string(),
  arguments: z.string(),
  ...itemEcho,
});

const functionCallOutput = z.strictObject({
  type: z.literal("function_call_output"),
  call_id: z.string(),
  output: inputContent,
  ...itemEcho,
});

const reasoningItem = z.strictObject({
  type: z.literal("reasoning"),
  summary: z.array(z.strictObject({ type: z.literal("summary_text"), text: z.string() })),
  content: z.array(z.strictObject({ type: z.literal("reasoning_text"), text: z.string() })).nullish(),
  encrypted_content: refused("encrypted reasoning reaches no provider: only OpenAI can read it"),
  ...itemEcho,
});

/** Item types of OpenAI's hosted tools and server-side state, none of which a provider has. */
const REFUSED_ITEMS = [
  "item_reference",
  "file_search_call",
  "web_search_call",
  "computer_call",
  "computer_call_output",
  "image_generation_call",
  "code_interpreter_call",
  "local_shell_call",
  "local_shell_call_output",
  "shell_call",
  "shell_call_output",
  "apply_patch_call",
  "apply_patch_call_output",
  "mcp_list_tools",
  "mcp_approval_request",
  "mcp_approval_response",
  "mcp_call",
  "custom_tool_call",
  "custom_tool_call_output",
  "compaction",
] as const;

const item = z.preprocess(
  // A message may leave out its type (EasyInputMessage); it is a message when it has a role.
  (value) =>
    typeof value === "object" && value !== null && !("type" in value) && "role" in value
      ? { ...value, type: "message" }
      : value,
  z.discriminatedUnion("type", [
    message,
    functionCall,
    functionCallOutput,
    reasoningItem,
    ...REFUSED_ITEMS.map((type) =>
      refusedPart(
        type,
        type === "item_reference"
          ? "item references reach no provider: send the item itself, or previous_response_id"
          : `${type} items reach no provider: ${NO_HOSTED_TOOLS}`,
      ),
    ),
  ]),
);

export type ResponsesItem = z.output<typeof item>;

const functionTool = z.strictObject({
  type: z.literal("function", { error: NO_HOSTED_TOOLS }),
  name: z.string().min(1),
  description: z.string().nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
  defer_loading: z.literal(false, { error: "deferred tool loading reaches no provider" }).optional(),
});

const namedFunction = z.strictObject({ type: z.literal("function"), name: z.string() });

const toolChoice = z.union([
  z.enum(["none", "auto", "required"]),
  namedFunction,
  z.strictObject({
    type: z.literal("allowed_tools"),
    mode: z.enum(["auto", "required"]),
    tools: z.array(namedFunction).min(1),
  }),
  z.looseObject({ type: z.string() }).refine(() => false, { error: NO_HOSTED_TOOLS, path: ["type"] }),
]);

const textConfig = z.strictObject({
  format: z
    .discriminatedUnion("type", [
      z.strictObject({ type: z.literal("text") }),
      z.strictObject({ type: z.literal("json_object") }),
      z.strictObject({
        type: z.literal("json_schema"),
        name: z.string(),
        schema: z.record(z.string(), z.unknown()),
        description: z.string().optional(),
        // Ollama's format and Converse's outputConfig constrain decoding: strict either way.
        strict: z.boolean().nullish(),
      }),
    ])
    .optional(),
  verbosity: refused("verbosity reaches no provider: Ollama and Converse have no such setting"),
});

export const responsesRequest = z
  .strictObject({
    model: z.string(),
    input: z.union([z.string(), z.array(item)]),
    instructions: z.string().nullish(),
    previous_response_id: z.string().nullish(),
    // The sidecar keeps responses in its own memory (store.ts); false keeps this one out.
    store: z.boolean().nullish(),
    stream: z.boolean().nullish(),
    stream_options: z
      .strictObject({
        include_obfuscation: z
          .literal(false, { error: "the sidecar sends no obfuscation padding in stream events" })
          .nullish(),
      })
      .nullish(),
    tools: z.array(functionTool).optional(),
    tool_choice: toolChoice.optional(),
    parallel_tool_calls: z.boolean().nullish(),
    temperature: z.number().min(0).max(2).nullish(),
    top_p: z.number().min(0).max(1).nullish(),
    max_output_tokens: z.int().positive().nullish(),
    metadata: z.record(z.string(), z.string()).nullish(),
    reasoning: z
      .strictObject({
        effort: z.enum(["none", "minimal", "low", "medium", "high", "xhigh"]).nullish(),
        summary: refused(
          "reasoning summaries reach no provider: the reasoning comes back whole, as reasoning_text",
        ),
        generate_summary: refused("reasoning summaries reach no provider"),
      })
      .nullish(),
    text: textConfig.optional(),
    truncation: z
      .literal("disabled", {
        error:
          "truncation auto reaches no provider: the whole conversation is sent, and one too long for the model fails",
      })
      .nullish(),
    service_tier: z
      .enum(["auto", "default", "flex", "priority"], {
        error: "service_tier takes auto, default, flex or priority: no provider has the others",
      })
      .nullish(),
    include: z
      .array(z.string())
      .max(0, {
        error:
          "include reaches no provider: the providers have no encrypted reasoning, logprobs here, or hosted tools",
      })
      .nullish(),
    background: z
      .literal(false, { error: "background responses: the sidecar answers while the agent waits" })
      .nullish(),
    top_logprobs: z
      .literal(0, { error: "log probabilities are not mapped for the Responses API; use chat completions" })
      .nullish(),
    conversation: refused("conversations are OpenAI's own store: send previous_response_id or the items"),
    prompt: refused("prompt templates are OpenAI's own: send instructions and input"),
    max_tool_calls: refused("no provider limits built-in tool calls: the sidecar offers function tools only"),
    user: refused("end-user identifiers reach no provider: Ollama and Converse have none"),
    safety_identifier: refused("safety identifiers reach no provider: Ollama and Converse have none"),
    prompt_cache_key: refused("prompt cache keys reach no provider: Ollama and Converse have none"),
    prompt_cache_retention: refused("prompt cache retention reaches no provider"),
    prompt_cache_options: refused("prompt cache options reach no provider"),
    context_management: refused("context management reaches no provider"),
    moderation: refused("moderation reaches no provider: Ollama and Converse have none"),
    image: refused("image generation reaches no provider"),
    access_programs: refused("access programs reach no provider"),
  })
  .superRefine((body, ctx) => {
    const names = new Set((body.tools ?? []).map((t) => t.name));
    const choice = body.tool_choice;
    if (choice !== undefined && choice !== "none" && choice !== "auto" && names.size === 0)
      ctx.addIssue({ code: "custom", path: ["tool_choice"], message: "tool_choice needs tools" });
    const named =
      typeof choice !== "object"
        ? []
        : choice.type === "function"
          ? [(choice as { name: string }).name]
          : choice.type === "allowed_tools"
            ? (choice as { tools: { name: string }[] }).tools.map((t) => t.name)
            : [];
    for (const name of named) {
      if (!names.has(name))
        ctx.addIssue({ code: "custom", path: ["tool_choice"], message: `no tool named "${name}" in tools` });
    }
  });

export type ResponsesRequest = z.output<typeof responsesRequest>;

type Content = z.output<typeof inputContent>;

function textOf(content: Content | readonly { type: string; text?: string; refusal?: string }[]): string {
  if (typeof content === "string") return content;
  return content
    .map((part) =>
      "text" in part && typeof part.text === "string"
        ? part.text
        : "refusal" in part && typeof part.refusal === "string"
          ? part.refusal
          : "",
    )
    .join("");
}

function imagesOf(content: Content): string[] {
  if (typeof content === "string") return [];
  return content.flatMap((part) =>
    part.type === "input_image" ? [(DATA_URL.exec(part.image_url)?.[3] ?? "").replace(/\s/g, "")] : [],
  );
}

/**
 * The input items as neutral messages: consecutive function calls (and the reasoning and text
 * before them) form one assistant turn, each function call output a tool message.
 */
export function inputMessages(
  input: ResponsesRequest["input"],
  fields: ChatRequest["fields"],
): ChatMessage[] {
  if (typeof input === "string") return [{ role: "user", content: input }];
  const messages: ChatMessage[] = [];
  /** The assistant turn being built from reasoning, message and function_call items in a row. */
  let turn: ChatMessage | undefined;
  const assistant = (): ChatMessage => {
    if (turn === undefined) {
      turn = { role: "assistant", content: "" };
      messages.push(turn);
    }
    return turn;
  };
  for (const [i, entry] of input.entries()) {
    if (entry.type === "reasoning") {
      const text = textOf(entry.content ?? []) || textOf(entry.summary);
      if (text === "") continue;
      const to = assistant();
      to.thinking = (to.thinking ?? "") + text;
      fields.thinking ??= `input[${i}]`;
    } else if (entry.type === "function_call") {
      const to = assistant();
      to.toolCalls = [
        ...(to.toolCalls ?? []),
        { id: entry.call_id, name: entry.name, arguments: parseArguments(entry.arguments) },
      ];
    } else if (entry.type === "message" && entry.role === "assistant") {
      const to = assistant();
      to.content += textOf(entry.content);
    } else if (entry.type === "function_call_output") {
      turn = undefined;
      const out: ChatMessage = { role: "tool", toolCallId: entry.call_id, content: textOf(entry.output) };
      const images = imagesOf(entry.output);
      if (images.length > 0) {
        out.images = images;
        fields.images ??= `input[${i}].output`;
      }
      messages.push(out);
    } else if (entry.type === "message") {
      turn = undefined;
      const out: ChatMessage = {
        role: entry.role === "user" ? "user" : "system",
        content: textOf(entry.content),
      };
      const images = imagesOf(entry.content);
      if (images.length > 0) {
        out.images = images;
        fields.images ??= `input[${i}].content`;
      }
      messages.push(out);
    }
  }
  return messages;
}

function toolChoiceOf(choice: ResponsesRequest["tool_choice"]): ToolChoice | undefined {
  if (choice === undefined) return undefined;
  if (typeof choice === "string") return { mode: choice };
  if (choice.type === "function") return { mode: "required", only: [(choice as { name: string }).name] };
  if (choice.type === "allowed_tools") {
    const allowed = choice as { mode: "auto" | "required"; tools: { name: string }[] };
    return { mode: allowed.mode, only: allowed.tools.map((t) => t.name) };
  }
  return undefined;
}

/**
 * Maps a validated request to the neutral shape: the instructions, then the stored conversation
 * of previous_response_id (`history`, without that response's instructions, as OpenAI does),
 * then the input. `history` holds the input messages and output of the earlier responses.
 */
export function fromResponsesRequest(
  body: ResponsesRequest,
  history: readonly ChatMessage[] = [],
): {
  request: ChatRequest;
  /** The conversation to store for this response, before its output is added. */
  conversation: ChatMessage[];
} {
  const fields: ChatRequest["fields"] = {};
  const conversation = [...history, ...inputMessages(body.input, fields)];
  nameToolResults(conversation);
  const instructions = body.instructions ?? "";
  const messages =
    instructions === ""
      ? conversation
      : [{ role: "system" as const, content: instructions }, ...conversation];
  const request: ChatRequest = { messages, fields };
  const set = featureSetter(request);
  const tools = body.tools ?? [];
  if (tools.length > 0) {
    request.tools = tools.map((t) => ({
      name: t.name,
      ...(t.description == null ? {} : { description: t.description }),
      ...(t.parameters == null ? {} : { parameters: t.parameters }),
      ...(t.strict == null ? {} : { strict: t.strict }),
    }));
    const strict = tools.findIndex((t) => t.strict === true);
    if (strict >= 0) fields.strict = `tools[${strict}].strict`;
  }
  set("toolChoice", toolChoiceOf(body.tool_choice), "tool_choice");
  if (body.parallel_tool_calls === false) set("parallelToolCalls", false, "parallel_tool_calls");
  set("temperature", body.temperature, "temperature");
  set("topP", body.top_p, "top_p");
  set("maxTokens", body.max_output_tokens, "max_output_tokens");
  const format = body.text?.format;
  if (format?.type === "json_object") set("responseFormat", { type: "json" }, "text.format");
  if (format?.type === "json_schema") {
    const { schema, name, description } = format;
    set(
      "responseFormat",
      { type: "json_schema", schema, name, ...(description === undefined ? {} : { description }) },
      "text.format",
    );
  }
  const effort = body.reasoning?.effort;
  if (effort != null)
    set("think", (effort === "none" ? false : effort) satisfies Reasoning, "reasoning.effort");
  if (body.service_tier === "flex" || body.service_tier === "priority")
    set("serviceTier", body.service_tier, "service_tier");
  set("metadata", body.metadata, "metadata");
  return { request, conversation };
}
