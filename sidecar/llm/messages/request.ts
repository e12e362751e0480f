// What an agent may send to Anthropic's /v1/messages and /v1/messages/count_tokens, and how it
// maps to the neutral chat shape. Every field of the Messages API is mapped or refused here,
// naming why; a field the API does not have is refused as unknown. Whether a provider can
// honour what is mapped is for the provider to say (LlmProvider.unhonoured).
import * as z from "zod";
import {
  type ChatMessage,
  type ChatRequest,
  featureSetter,
  nameToolResults,
  type Reasoning,
  type ToolChoice,
} from "../chat.ts";
import { refused, refusedPart } from "../openai-request.ts";

/**
 * Prompt caching is a hint about cost, not meaning: Ollama reuses the cached prefix of a prompt
 * by itself, and Converse answers the same without cache points. Accepted everywhere, so
 * Claude Code and the Anthropic SDKs' caching helpers work; usage reports no cache tokens.
 */
const cacheControl = z
  .strictObject({ type: z.literal("ephemeral"), ttl: z.enum(["5m", "1h"]).optional() })
  .nullish();

const NO_CITATIONS = "citations reach no provider: Ollama and Converse cite no sources of a text";

const textBlock = z.strictObject({
  type: z.literal("text"),
  text: z.string(),
  cache_control: cacheControl,
  citations: z.array(z.unknown()).max(0, { error: NO_CITATIONS }).nullish(),
});

const imageBlock = z.strictObject({
  type: z.literal("image"),
  source: z.discriminatedUnion("type", [
    z.strictObject({
      type: z.literal("base64"),
      media_type: z.enum(["image/jpeg", "image/png", "image/gif", "image/webp"]),
      data: z.string().regex(/^[A-Za-z0-9+/\s]*={0,2}$/, { error: "data must be base64" }),
    }),
    refusedPart("url", "the sidecar does not fetch remote images: send the image inline as a base64 source"),
    refusedPart("file", "the sidecar has no Files API: send the image inline as a base64 source"),
  ]),
  cache_control: cacheControl,
});

const NO_DOCUMENTS = "documents reach no provider: Ollama and Converse take text and images here";
const NO_SERVER_TOOLS = "server tools reach no provider: give the agent a tool of its own instead";

const toolResultBlock = z.strictObject({
  type: z.literal("tool_result"),
  tool_use_id: z.string(),
  content: z
    .union([
      z.string(),
      z.array(
        z.discriminatedUnion("type", [
          textBlock,
          imageBlock,
          refusedPart("document", NO_DOCUMENTS),
          refusedPart("search_result", NO_DOCUMENTS),
        ]),
      ),
    ])
    .optional(),
  is_error: z.boolean().optional(),
  cache_control: cacheControl,
});

const toolUseBlock = z.strictObject({
  type: z.literal("tool_use"),
  id: z.string(),
  name: z.string(),
  input: z.record(z.string(), z.unknown()),
  cache_control: cacheControl,
  caller: z
    .strictObject({ type: z.literal("direct") }, { error: "only direct tool callers reach a provider" })
    .optional(),
});

const thinkingBlock = z.strictObject({
  type: z.literal("thinking"),
  thinking: z.string(),
  signature: z.string(),
});

/** Blocks of kinds no provider takes, refused with the reason whatever else they hold. */
const refusedBlocks = [
  refusedPart("document", NO_DOCUMENTS),
  refusedPart("search_result", NO_DOCUMENTS),
  refusedPart("container_upload", "the sidecar has no code execution container"),
  refusedPart(
    "redacted_thinking",
    "redacted reasoning reaches no provider: only Anthropic's own API can read it",
  ),
  refusedPart("server_tool_use", NO_SERVER_TOOLS),
  refusedPart("web_search_tool_result", NO_SERVER_TOOLS),
  refusedPart("web_fetch_tool_result", NO_SERVER_TOOLS),
  refusedPart("code_execution_tool_result", NO_SERVER_TOOLS),
  refusedPart("bash_code_execution_tool_result", NO_SERVER_TOOLS),
  refusedPart("text_editor_code_execution_tool_result", NO_SERVER_TOOLS),
  refusedPart("tool_search_tool_result", NO_SERVER_TOOLS),
] as const;

const userBlock = z.discriminatedUnion("type", [
  textBlock,
  imageBlock,
  toolResultBlock,
  refusedPart("tool_use", "tool_use blocks belong in assistant messages"),
  refusedPart("thinking", "thinking blocks belong in assistant messages"),
  ...refusedBlocks,
]);

const assistantBlock = z.discriminatedUnion("type", [
  textBlock,
  toolUseBlock,
  thinkingBlock,
  refusedPart("image", "images reach the providers in user messages only"),
  refusedPart("tool_result", "tool_result blocks belong in user messages"),
  ...refusedBlocks,
]);

const message = z.discriminatedUnion(
  "role",
  [
    z.strictObject({ role: z.literal("user"), content: z.union([z.string(), z.array(userBlock)]) }),
    z.strictObject({ role: z.literal("assistant"), content: z.union([z.string(), z.array(assistantBlock)]) }),
  ],
  { error: "role must be user or assistant; the system prompt goes in system" },
);

const customTool = z.strictObject({
  // Anthropic's server and versioned tools (bash_20250124, web_search_20250305, ...) have a type.
  type: z.literal("custom", { error: NO_SERVER_TOOLS }).nullish(),
  name: z.string().min(1).max(128),
  description: z.string().optional(),
  input_schema: z.looseObject({ type: z.literal("object") }),
  strict: z.boolean().optional(),
  cache_control: cacheControl,
  eager_input_streaming: z.boolean().nullish(),
  allowed_callers: z
    .array(z.literal("direct", { error: "only direct tool callers reach a provider" }))
    .optional(),
  defer_loading: z
    .literal(false, { error: "deferred tool loading needs Anthropic's tool search, which no provider has" })
    .optional(),
  input_examples: z
    .array(z.unknown())
    .max(0, { error: "tool input examples reach no provider: Ollama and Converse tools have none" })
    .optional(),
});

const parallel = { disable_parallel_tool_use: z.boolean().optional() };

const toolChoice = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("auto"), ...parallel }),
  z.strictObject({ type: z.literal("any"), ...parallel }),
  z.strictObject({ type: z.literal("tool"), name: z.string(), ...parallel }),
  z.strictObject({ type: z.literal("none") }),
]);

const display = z
  .literal("summarized", { error: "the providers show their reasoning whole; omitted is not available" })
  .nullish();

const thinking = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("disabled") }),
  z.strictObject({ type: z.literal("adaptive"), display }),
  refusedPart(
    "enabled",
    "thinking budgets reach no provider: Ollama's think has none and Converse's is not mapped; send thinking {type: adaptive} with output_config.effort",
  ),
  refusedPart("between_tools", "interleaved thinking between tool calls reaches no provider"),
]);

const effort = z.enum(["low", "medium", "high", "xhigh", "max"]);

const outputConfig = z.strictObject({
  effort: effort.nullish(),
  format: z
    .strictObject({ type: z.literal("json_schema"), schema: z.record(z.string(), z.unknown()) })
    .nullish(),
});

/** What /v1/messages and /v1/messages/count_tokens share: the conversation and how to answer it. */
const conversation = {
  model: z.string(),
  messages: z.array(message).min(1),
  system: z.union([z.string(), z.array(textBlock)]).optional(),
  tools: z.array(customTool).optional(),
  tool_choice: toolChoice.optional(),
  thinking: thinking.optional(),
  output_config: outputConfig.optional(),
  cache_control: cacheControl,
  mcp_servers: refused("the sidecar's MCP gateway is at AGENTTYPE_MCP_URL; connect the agent to it"),
  context_management: refused("context management reaches no provider: Ollama and Converse have none"),
};

const conversationObject = z.strictObject(conversation);

/** What the fields of a conversation must agree on. */
function checkConversation(body: z.output<typeof conversationObject>, ctx: z.RefinementCtx) {
  // Both providers' effort turns reasoning on; with thinking off that is not what was asked.
  if (body.thinking?.type === "disabled" && body.output_config?.effort != null)
    ctx.addIssue({
      code: "custom",
      path: ["output_config", "effort"],
      message: "effort with thinking disabled reaches no provider: their effort levels turn reasoning on",
    });
  const names = new Set((body.tools ?? []).map((t) => t.name));
  const choice = body.tool_choice;
  if (choice !== undefined && choice.type !== "none" && choice.type !== "auto" && names.size === 0)
    ctx.addIssue({
      code: "custom",
      path: ["tool_choice"],
      message: `tool_choice ${choice.type} needs tools`,
    });
  if (choice?.type === "tool" && !names.has(choice.name))
    ctx.addIssue({
      code: "custom",
      path: ["tool_choice", "name"],
      message: `no tool named "${choice.name}"`,
    });
}

export const anthropicMessagesRequest = z
  .strictObject({
    ...conversation,
    max_tokens: z.int().positive(),
    stream: z.boolean().optional(),
    temperature: z.number().min(0).max(1).optional(),
    top_p: z.number().min(0).max(1).optional(),
    top_k: z.int().positive().optional(),
    stop_sequences: z.array(z.string()).optional(),
    metadata: z.strictObject({ user_id: z.string().nullish() }).optional(),
    // standard_only asks for the default tier, which is what every provider gives.
    service_tier: z.enum(["auto", "standard_only"]).optional(),
    speed: z.literal("standard", { error: "no provider has a fast mode" }).nullish(),
    container: refused("the sidecar has no code execution container"),
    inference_geo: refused("the provider's region is set in the AgentType, not per request"),
    diagnostics: refused("diagnostics reach no provider"),
    user_profile_id: refused("user profiles reach no provider"),
    workspace_id: refused("workspaces reach no provider"),
  })
  .superRefine(checkConversation);

export type AnthropicMessagesRequest = z.output<typeof anthropicMessagesRequest>;

export const anthropicCountTokensRequest = conversationObject.superRefine(checkConversation);

export type AnthropicCountTokensRequest = z.output<typeof anthropicCountTokensRequest>;

type Conversation = AnthropicCountTokensRequest & Partial<AnthropicMessagesRequest>;
type Block = z.output<typeof userBlock> | z.output<typeof assistantBlock>;

function textOf(blocks: readonly { type: string; text?: string }[]): string {
  return blocks.map((b) => (b.type === "text" ? (b.text ?? "") : "")).join("");
}

function imagesOf(blocks: readonly Block[] | readonly { type: string }[]): string[] {
  return blocks.flatMap((b) => {
    const block = b as z.output<typeof imageBlock>;
    return block.type === "image" && block.source.type === "base64"
      ? [block.source.data.replace(/\s/g, "")]
      : [];
  });
}

/**
 * Anthropic's turns to neutral messages: a user turn's tool_result blocks become tool messages
 * (in order, before the rest of the turn, as the API requires them first), an assistant's
 * tool_use blocks its tool calls and its thinking block its reasoning.
 */
function toMessages(body: Conversation, fields: ChatRequest["fields"]): ChatMessage[] {
  const messages: ChatMessage[] = [];
  const system = typeof body.system === "string" ? body.system : textOf(body.system ?? []);
  if (system !== "") messages.push({ role: "system", content: system });
  for (const [i, m] of body.messages.entries()) {
    if (typeof m.content === "string") {
      messages.push({ role: m.role, content: m.content });
      continue;
    }
    if (m.role === "assistant") {
      const out: ChatMessage = { role: "assistant", content: textOf(m.content) };
      const thought = m.content.flatMap((b) => (b.type === "thinking" ? [b.thinking] : [])).join("");
      if (thought !== "") {
        out.thinking = thought;
        fields.thinking ??= `messages[${i}].content`;
      }
      const calls = m.content.flatMap((b) => (b.type === "tool_use" ? [b] : []));
      if (calls.length > 0)
        out.toolCalls = calls.map((c) => ({ id: c.id, name: c.name, arguments: c.input }));
      messages.push(out);
      continue;
    }
    for (const [j, block] of m.content.entries()) {
      if (block.type !== "tool_result") continue;
      const content = block.content ?? "";
      const out: ChatMessage = {
        role: "tool",
        toolCallId: block.tool_use_id,
        content: typeof content === "string" ? content : textOf(content),
      };
      const images = typeof content === "string" ? [] : imagesOf(content);
      if (images.length > 0) {
        out.images = images;
        fields.images ??= `messages[${i}].content[${j}].content`;
      }
      if (block.is_error === true) out.toolError = true;
      messages.push(out);
    }
    const rest = m.content.filter((b) => b.type !== "tool_result");
    if (rest.length === 0) continue;
    const out: ChatMessage = { role: "user", content: textOf(rest) };
    const images = imagesOf(rest);
    if (images.length > 0) {
      out.images = images;
      fields.images ??= `messages[${i}].content`;
    }
    messages.push(out);
  }
  nameToolResults(messages);
  return messages;
}

function toolChoiceOf(choice: Conversation["tool_choice"]): ToolChoice | undefined {
  if (choice === undefined) return undefined;
  if (choice.type === "any") return { mode: "required" };
  if (choice.type === "tool") return { mode: "required", only: [choice.name] };
  return { mode: choice.type };
}

/** Maps a validated request to the neutral shape, noting the Anthropic name of every feature used. */
export function fromAnthropicRequest(body: Conversation): ChatRequest {
  const fields: ChatRequest["fields"] = {};
  const request: ChatRequest = { messages: toMessages(body, fields), fields };
  const set = featureSetter(request);
  const tools = body.tools ?? [];
  if (tools.length > 0) {
    request.tools = tools.map((t) => ({
      name: t.name,
      ...(t.description === undefined ? {} : { description: t.description }),
      parameters: t.input_schema,
      ...(t.strict === undefined ? {} : { strict: t.strict }),
    }));
    const strict = tools.findIndex((t) => t.strict === true);
    if (strict >= 0) fields.strict = `tools[${strict}].strict`;
  }
  set("toolChoice", toolChoiceOf(body.tool_choice), "tool_choice");
  const choice = body.tool_choice;
  if (choice !== undefined && choice.type !== "none" && choice.disable_parallel_tool_use === true)
    set("parallelToolCalls", false, "tool_choice.disable_parallel_tool_use");
  set("maxTokens", body.max_tokens, "max_tokens");
  set("temperature", body.temperature, "temperature");
  set("topP", body.top_p, "top_p");
  set("topK", body.top_k, "top_k");
  if ((body.stop_sequences ?? []).length > 0) set("stop", body.stop_sequences, "stop_sequences");
  const format = body.output_config?.format;
  if (format != null)
    set("responseFormat", { type: "json_schema", schema: format.schema }, "output_config.format");
  const level = body.output_config?.effort ?? undefined;
  const mode = body.thinking?.type;
  if (mode === "disabled") set("think", false, "thinking");
  else if (level !== undefined) set("think", level satisfies Reasoning, "output_config.effort");
  else if (mode === "adaptive") set("think", true, "thinking");
  const user = body.metadata?.user_id;
  if (user != null) set("metadata", { user_id: user }, "metadata.user_id");
  return request;
}
