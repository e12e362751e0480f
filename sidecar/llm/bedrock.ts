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
  type Message,
} from "@aws-sdk/client-bedrock-runtime";
import type { ChatEvent, ChatRequest, ChatResult, StopReason, ToolCall } from "./chat.ts";
import { classifyBedrockException, classifyTransportError, ProviderError } from "./errors.ts";
import type { LlmProvider } from "./provider.ts";

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/**
 * Converse wants system prompts apart, strictly alternating user/assistant turns, and tool
 * results as user content; consecutive messages of one role are merged to satisfy it.
 */
export function toConverseInput(request: ChatRequest, modelId: string): ConverseCommandInput {
  const system = request.messages.filter((m) => m.role === "system").map((m) => ({ text: m.content }));
  const messages: Message[] = [];
  for (const m of request.messages) {
    if (m.role === "system") continue;
    const role = m.role === "assistant" ? "assistant" : "user";
    const content: ContentBlock[] = [];
    if (m.role === "tool") {
      content.push({ toolResult: { toolUseId: m.toolCallId ?? "", content: [{ text: m.content }] } });
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
  if (request.tools !== undefined && request.tools.length > 0) {
    input.toolConfig = {
      tools: request.tools.map((t) => ({
        toolSpec: {
          name: t.name,
          description: t.description ?? t.name,
          inputSchema: { json: (t.parameters ?? { type: "object" }) as never },
        },
      })),
    };
  }
  return input;
}

function fromBedrockStopReason(reason: BedrockStopReason | string | undefined): StopReason {
  if (reason === "tool_use") return "tool_calls";
  if (reason === "max_tokens" || reason === "model_context_window_exceeded") return "length";
  return "stop";
}

function fromConverseOutput(output: ConverseCommandOutput): ChatResult {
  let text = "";
  const toolCalls: ToolCall[] = [];
  for (const block of output.output?.message?.content ?? []) {
    if (block.text !== undefined) text += block.text;
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
