// The Bedrock provider: the router's chat over the Converse and ConverseStream APIs of
// @aws-sdk/client-bedrock-runtime, with tool-use blocks mapped both ways and usage reported.
import {
  BedrockRuntimeClient,
  type StopReason as BedrockStopReason,
  type ContentBlock,
  ConverseCommand,
  type ConverseCommandInput,
  type ConverseCommandOutput,
  ConverseStreamCommand,
  type ConverseStreamOutput,
  type ImageFormat,
  type Message,
} from "@aws-sdk/client-bedrock-runtime";
import {
  type ChatEvent,
  type ChatRequest,
  type ChatResult,
  offeredTools,
  type StopReason,
  type ToolCall,
  type Unhonoured,
} from "./chat.ts";
import { classifyBedrockException, classifyTransportError, ProviderError } from "./errors.ts";
import { imageMediaType } from "./image-type.ts";
import type { LlmProvider } from "./provider.ts";

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** The image formats Converse takes, told apart by their first bytes. */
export function imageFormat(base64: string): ImageFormat | undefined {
  return imageMediaType(base64)?.slice("image/".length) as ImageFormat | undefined;
}

/** Anthropic's models on Bedrock, which take top_k as an additional model request field. */
function isAnthropic(modelId: string): boolean {
  return /(^|[.:/])anthropic\./.test(modelId);
}

/** Effort levels of Converse's outputConfig.effort. */
const EFFORTS: ReadonlySet<unknown> = new Set(["low", "medium", "high", "xhigh", "max"]);

/** What of a request Converse cannot honour for this model. */
export function bedrockUnhonoured(request: ChatRequest, modelId: string): Unhonoured | undefined {
  for (const m of request.messages) {
    if (m.images === undefined || m.images.length === 0) continue;
    if (m.role !== "user")
      return {
        feature: "images",
        reason: `Converse takes images in user messages only, not in ${m.role} messages`,
      };
    if (m.images.some((image) => imageFormat(image) === undefined))
      return { feature: "images", reason: "Converse takes png, jpeg, gif and webp images only" };
  }
  if (request.messages.some((m) => m.thinking !== undefined && m.thinking !== ""))
    return {
      feature: "thinking",
      reason:
        "Converse takes earlier reasoning only with the signature it was given, which the history does not carry",
    };
  if (request.parallelToolCalls === false)
    return {
      feature: "parallelToolCalls",
      reason: "Converse cannot hold the model to one tool call per turn",
    };
  if (
    request.toolChoice?.mode === "none" &&
    request.messages.some((m) => m.role === "tool" || (m.toolCalls?.length ?? 0) > 0)
  )
    return {
      feature: "toolChoice",
      reason:
        'Converse needs the tools declared while the conversation holds tool calls, so it cannot honour "none" then',
    };
  if (request.seed !== undefined) return { feature: "seed", reason: "Converse has no seed" };
  if (request.topK !== undefined && !isAnthropic(modelId))
    return { feature: "topK", reason: `Converse takes top_k for Anthropic models only, not ${modelId}` };
  if ((request.frequencyPenalty ?? 0) !== 0)
    return { feature: "frequencyPenalty", reason: "Converse has no frequency penalty" };
  if ((request.presencePenalty ?? 0) !== 0)
    return { feature: "presencePenalty", reason: "Converse has no presence penalty" };
  if (request.responseFormat?.type === "json")
    return {
      feature: "responseFormat",
      reason: "Converse constrains output to a JSON schema only, not to any JSON; send a json_schema",
    };
  if (request.think === true)
    return {
      feature: "think",
      reason:
        "Converse enables reasoning with a token budget or an effort level; send a level (low, medium, high)",
    };
  if (typeof request.think === "string" && !EFFORTS.has(request.think))
    return {
      feature: "think",
      reason: `Converse's effort takes low, medium, high, xhigh or max, not "${request.think}"`,
    };
  if (request.logprobs !== undefined)
    return { feature: "logprobs", reason: "Converse returns no log probabilities" };
  if (request.choices !== undefined)
    return { feature: "choices", reason: "Converse answers with one choice per request" };
  if (request.keepAlive !== undefined)
    return { feature: "keepAlive", reason: "Bedrock loads and unloads models itself" };
  const option = Object.keys(request.ollamaOptions ?? {})[0];
  if (option !== undefined) return { feature: `options.${option}`, reason: "Converse has no such setting" };
  return undefined;
}

/**
 * Converse wants system prompts apart, strictly alternating user/assistant turns, and tool
 * results as user content; consecutive messages of one role are merged to satisfy it. Images
 * go before the text of their message.
 */
export function toConverseInput(request: ChatRequest, modelId: string): ConverseCommandInput {
  const system = request.messages.filter((m) => m.role === "system").map((m) => ({ text: m.content }));
  const messages: Message[] = [];
  for (const m of request.messages) {
    if (m.role === "system") continue;
    const role = m.role === "assistant" ? "assistant" : "user";
    const content: ContentBlock[] = [];
    for (const image of m.images ?? []) {
      content.push({
        image: { format: imageFormat(image), source: { bytes: Buffer.from(image, "base64") } },
      });
    }
    if (m.role === "tool") {
      content.push({
        toolResult: {
          toolUseId: m.toolCallId ?? "",
          content: [{ text: m.content }],
          ...(m.toolError === true ? { status: "error" as const } : {}),
        },
      });
    } else if (m.content !== "") {
      content.push({ text: m.content });
    }
    for (const call of m.toolCalls ?? []) {
      content.push({ toolUse: { toolUseId: call.id, name: call.name, input: call.arguments as never } });
    }
    const previous = messages.at(-1);
    if (previous?.role === role) previous.content?.push(...content);
    else messages.push({ role, content });
  }
  const input: ConverseCommandInput = { modelId, messages };
  if (system.length > 0) input.system = system;
  const inference: NonNullable<ConverseCommandInput["inferenceConfig"]> = {};
  if (request.maxTokens !== undefined) inference.maxTokens = request.maxTokens;
  if (request.temperature !== undefined) inference.temperature = request.temperature;
  if (request.topP !== undefined) inference.topP = request.topP;
  if (request.stop !== undefined) inference.stopSequences = request.stop;
  if (Object.keys(inference).length > 0) input.inferenceConfig = inference;
  if (request.topK !== undefined) input.additionalModelRequestFields = { top_k: request.topK };
  const tools = offeredTools(request);
  if (tools.length > 0) {
    input.toolConfig = {
      tools: tools.map((t) => ({
        toolSpec: {
          name: t.name,
          description: t.description ?? t.name,
          inputSchema: { json: (t.parameters ?? { type: "object" }) as never },
          ...(t.strict === undefined ? {} : { strict: t.strict }),
        },
      })),
    };
    // "auto" is Converse's default, and models without tool choice refuse it even when explicit.
    if (request.toolChoice?.mode === "required") {
      input.toolConfig.toolChoice =
        tools.length === 1 && request.toolChoice.only !== undefined
          ? { tool: { name: tools[0]?.name } }
          : { any: {} };
    }
  }
  const output: NonNullable<ConverseCommandInput["outputConfig"]> = {};
  const format = request.responseFormat;
  if (format?.type === "json_schema") {
    output.textFormat = {
      type: "json_schema",
      structure: {
        jsonSchema: {
          schema: JSON.stringify(format.schema),
          ...(format.name === undefined ? {} : { name: format.name }),
          ...(format.description === undefined ? {} : { description: format.description }),
        },
      },
    };
  }
  if (typeof request.think === "string") output.effort = request.think;
  if (Object.keys(output).length > 0) input.outputConfig = output;
  if (request.serviceTier !== undefined) input.serviceTier = { type: request.serviceTier };
  if (request.metadata !== undefined) input.requestMetadata = request.metadata;
  return input;
}

function fromBedrockStopReason(reason: BedrockStopReason | string | undefined): StopReason {
  if (reason === "tool_use") return "tool_calls";
  if (reason === "max_tokens" || reason === "model_context_window_exceeded") return "length";
  return "stop";
}

function fromConverseOutput(output: ConverseCommandOutput): ChatResult {
  let text = "";
  let thinking = "";
  const toolCalls: ToolCall[] = [];
  for (const block of output.output?.message?.content ?? []) {
    if (block.text !== undefined) text += block.text;
    if (block.reasoningContent?.reasoningText?.text !== undefined)
      thinking += block.reasoningContent.reasoningText.text;
    if (block.toolUse !== undefined) {
      toolCalls.push({
        id: block.toolUse.toolUseId ?? "",
        name: block.toolUse.name ?? "",
        arguments: (block.toolUse.input ?? {}) as Record<string, unknown>,
      });
    }
  }
  return {
    text,
    thinking,
    toolCalls,
    stopReason: fromBedrockStopReason(output.stopReason),
    usage: { inputTokens: output.usage?.inputTokens ?? 0, outputTokens: output.usage?.outputTokens ?? 0 },
  };
}

/** Turns ConverseStream events into chat events; tool input arrives as JSON text in pieces. */
export class ConverseStreamMapper {
  readonly #tools = new Map<number, { id: string; name: string; input: string }>();
  #stopReason: StopReason = "stop";
  #usage = { inputTokens: 0, outputTokens: 0 };

  push(event: ConverseStreamOutput): ChatEvent[] {
    if (event.contentBlockStart?.start?.toolUse !== undefined) {
      const { toolUseId, name } = event.contentBlockStart.start.toolUse;
      this.#tools.set(event.contentBlockStart.contentBlockIndex ?? 0, {
        id: toolUseId ?? "",
        name: name ?? "",
        input: "",
      });
    } else if (event.contentBlockDelta !== undefined) {
      const { delta, contentBlockIndex } = event.contentBlockDelta;
      if (delta?.text !== undefined && delta.text !== "") return [{ type: "text", text: delta.text }];
      const reasoning = delta?.reasoningContent?.text;
      if (reasoning !== undefined && reasoning !== "") return [{ type: "thinking", text: reasoning }];
      const tool = this.#tools.get(contentBlockIndex ?? 0);
      if (delta?.toolUse?.input !== undefined && tool !== undefined) tool.input += delta.toolUse.input;
    } else if (event.contentBlockStop !== undefined) {
      const index = event.contentBlockStop.contentBlockIndex ?? 0;
      const tool = this.#tools.get(index);
      if (tool !== undefined) {
        this.#tools.delete(index);
        const args = tool.input === "" ? {} : (JSON.parse(tool.input) as Record<string, unknown>);
        return [{ type: "tool_call", call: { id: tool.id, name: tool.name, arguments: args } }];
      }
    } else if (event.messageStop !== undefined) {
      this.#stopReason = fromBedrockStopReason(event.messageStop.stopReason);
    } else if (event.metadata?.usage !== undefined) {
      this.#usage = {
        inputTokens: event.metadata.usage.inputTokens ?? 0,
        outputTokens: event.metadata.usage.outputTokens ?? 0,
      };
    }
    return [];
  }

  end(): ChatEvent {
    return { type: "done", stopReason: this.#stopReason, usage: this.#usage };
  }
}

export class BedrockProvider implements LlmProvider {
  readonly name: string;
  readonly type = "bedrock";
  readonly model: string;
  readonly #client: BedrockRuntimeClient;

  constructor(options: {
    name: string;
    model: string;
    region: string;
    endpoint?: string;
    credentials?: AwsCredentials;
  }) {
    this.name = options.name;
    this.model = options.model;
    this.#client = new BedrockRuntimeClient({
      region: options.region,
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      // The router retries and falls back itself; SDK retries would hide failures from it.
      maxAttempts: 1,
    });
  }

  unhonoured(request: ChatRequest): Unhonoured | undefined {
    return bedrockUnhonoured(request, this.model);
  }

  async chat(request: ChatRequest, signal: AbortSignal): Promise<ChatResult> {
    try {
      const output = await this.#client.send(new ConverseCommand(toConverseInput(request, this.model)), {
        abortSignal: signal,
      });
      return fromConverseOutput(output);
    } catch (error) {
      throw this.#error(error);
    }
  }

  async *chatStream(request: ChatRequest, signal: AbortSignal): AsyncGenerator<ChatEvent> {
    const mapper = new ConverseStreamMapper();
    try {
      const output = await this.#client.send(
        new ConverseStreamCommand(toConverseInput(request, this.model)),
        {
          abortSignal: signal,
        },
      );
      if (output.stream === undefined)
        throw new ProviderError(this.name, "unavailable", "ConverseStream returned no stream");
      for await (const event of output.stream) {
        for (const mapped of mapper.push(event)) yield mapped;
      }
    } catch (error) {
      throw this.#error(error);
    }
    yield mapper.end();
  }

  #error(error: unknown): ProviderError {
    if (error instanceof ProviderError) return error;
    const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    const status = e.$metadata?.httpStatusCode;
    const transport = status === undefined ? classifyTransportError(error) : undefined;
    const errorClass = transport ?? classifyBedrockException(e.name ?? "", status);
    return new ProviderError(
      this.name,
      errorClass,
      `provider "${this.name}" (bedrock, model ${this.model}) failed: ${e.name ?? "Error"}: ${e.message ?? String(error)}`,
      status,
    );
  }
}
