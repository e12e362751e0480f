// Anthropic's Messages API through the sidecar with the official @anthropic-ai/sdk, untuned (as
// ANTHROPIC_BASE_URL and a placeholder key set it up), over the faithful Ollama and Bedrock
// servers: answers, the exact stream event sequence, a tool round trip, images, count_tokens,
// and the errors in Anthropic's shape with the field named.

import Anthropic, { APIError } from "@anthropic-ai/sdk";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { BedrockServer } from "../../testing/bedrock-server.ts";
import { PNG } from "../../testing/images.ts";
import { matches } from "../../testing/json-schema-match.ts";
import type { OllamaServer } from "../../testing/ollama-server.ts";
import type { TestSidecar } from "../../testing/sidecar.ts";
import { startTwoProviders, type TwoProviders } from "../../testing/two-providers.ts";

let ollama: OllamaServer;
let bedrock: BedrockServer;
let viaOllama: TestSidecar;
let viaBedrock: TestSidecar;
let providers: TwoProviders;
let client: Anthropic;
let claude: Anthropic;

beforeAll(async () => {
  providers = await startTwoProviders({ bedrockAttempts: 1 });
  ({ ollama, bedrock, viaOllama, viaBedrock } = providers);
  // What the pod's environment gives an agent: the base URL and a placeholder key.
  client = new Anthropic({ baseURL: viaOllama.sidecar.agentUrl, apiKey: "agenttype-placeholder" });
  claude = new Anthropic({ baseURL: viaBedrock.sidecar.agentUrl, apiKey: "agenttype-placeholder" });
});

afterAll(() => providers.close());

beforeEach(() => {
  ollama.requests.length = 0;
  bedrock.requests.length = 0;
});

const upstream = () => ollama.requests.at(-1)?.body ?? {};
const converse = () => bedrock.requests.at(-1)?.body ?? {};

const weather: Anthropic.Tool = {
  name: "get_weather",
  description: "Weather of a city",
  input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};

/** The message of an error body in Anthropic's shape. */
function reason(error: APIError): string {
  return (error.error as { error: { message: string } }).error.message;
}

async function failure(client: Anthropic, params: Record<string, unknown>): Promise<APIError> {
  const error = await client.messages
    .create({
      model: "claude-sonnet-5",
      max_tokens: 100,
      messages: [{ role: "user", content: "hi" }],
      ...params,
    } as Anthropic.MessageCreateParamsNonStreaming)
    .catch((e: unknown) => e);
  expect(error).toBeInstanceOf(APIError);
  return error as APIError;
}

describe("Anthropic Messages API over an Ollama provider", () => {
  it("answers a message with the system prompt, sampling fields and usage reaching Ollama", async () => {
    const message = await client.messages.create({
      model: "claude-sonnet-5",
      max_tokens: 50,
      system: [{ type: "text", text: "Be brief.", cache_control: { type: "ephemeral" } }],
      messages: [{ role: "user", content: "hello sidecar" }],
      stop_sequences: ["STOP"],
      // Sampling fields of the API that this SDK's types no longer list but older clients send.
      ...{ temperature: 0.2, top_k: 40, top_p: 0.9 },
    });
    expect(message.type).toBe("message");
    expect(message.role).toBe("assistant");
    expect(message.model).toBe("llama3.2");
    expect(message.id).toMatch(/^msg_/);
    expect(message.content).toEqual([{ type: "text", text: "You said: hello sidecar" }]);
    expect(message.stop_reason).toBe("end_turn");
    expect(message.usage.output_tokens).toBe(4);
    expect(message.usage.input_tokens).toBeGreaterThan(0);
    expect(upstream()).toMatchObject({
      model: "llama3.2",
      stream: false,
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "hello sidecar" },
      ],
      options: { num_predict: 50, temperature: 0.2, top_k: 40, top_p: 0.9, stop: ["STOP"] },
    });
  });

  it("answers the beta endpoint Claude Code calls (?beta=true, anthropic-beta header) the same", async () => {
    const message = await client.beta.messages.create({
      model: "claude-sonnet-5",
      max_tokens: 50,
      messages: [{ role: "user", content: "beta hello" }],
      betas: ["interleaved-thinking-2025-05-14"],
    });
    expect(message.content).toEqual([{ type: "text", text: "You said: beta hello" }]);
  });

  it("stops at max_tokens and says so", async () => {
    const message = await client.messages.create({
      model: "m",
      max_tokens: 2,
      messages: [{ role: "user", content: "one two three" }],
    });
    expect(message.stop_reason).toBe("max_tokens");
    expect(message.content).toEqual([{ type: "text", text: "You said: " }]);
  });

  it("streams the exact event sequence, and the SDK's stream helper assembles the message", async () => {
    const stream = await client.messages.create({
      model: "m",
      max_tokens: 100,
      messages: [{ role: "user", content: "one two" }],
      stream: true,
    });
    const events: Anthropic.RawMessageStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    expect(events.map((e) => e.type)).toEqual([
      "message_start",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    const deltas = events.flatMap((e) =>
      e.type === "content_block_delta" && e.delta.type === "text_delta" ? [e.delta.text] : [],
    );
    expect(deltas).toEqual(["You ", "said: ", "one ", "two"]);
    const last = events.at(-2);
    expect(last?.type === "message_delta" && last.delta.stop_reason).toBe("end_turn");
    expect(last?.type === "message_delta" && last.usage.output_tokens).toBe(4);

    const helper = client.messages.stream({
      model: "m",
      max_tokens: 100,
      messages: [{ role: "user", content: "three four" }],
    });
    const texts: string[] = [];
    helper.on("text", (text) => texts.push(text));
    const final = await helper.finalMessage();
    expect(texts.join("")).toBe("You said: three four");
    expect(final.content).toEqual([{ type: "text", text: "You said: three four" }]);
    expect(final.usage.input_tokens).toBeGreaterThan(0);
    expect(upstream().stream).toBe(true);
  });

  it("sends ping after message_start on the wire, as Anthropic does", async () => {
    const response = await fetch(`${viaOllama.sidecar.agentUrl}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: JSON.stringify({
        model: "m",
        max_tokens: 10,
        stream: true,
        messages: [{ role: "user", content: "x" }],
      }),
    });
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const names = [...(await response.text()).matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    expect(names.slice(0, 3)).toEqual(["message_start", "ping", "content_block_start"]);
    expect(names.at(-1)).toBe("message_stop");
  });

  it("runs a tool round trip: tool_use out, tool_result back, paired by the tool's name", async () => {
    ollama.enqueue({ text: "", toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }] });
    const messages: Anthropic.MessageParam[] = [{ role: "user", content: "weather in Paris?" }];
    const first = await client.messages.create({ model: "m", max_tokens: 100, messages, tools: [weather] });
    expect(first.stop_reason).toBe("tool_use");
    const use = first.content.find((b): b is Anthropic.ToolUseBlock => b.type === "tool_use");
    expect(use).toMatchObject({ name: "get_weather", input: { city: "Paris" } });
    expect(upstream().tools).toEqual([
      {
        type: "function",
        function: { name: "get_weather", description: "Weather of a city", parameters: weather.input_schema },
      },
    ]);
    if (use === undefined) throw new Error("no tool_use block");
    messages.push({ role: "assistant", content: first.content });
    messages.push({
      role: "user",
      content: [
        { type: "tool_result", tool_use_id: use.id, content: "sunny, 21 C" },
        { type: "text", text: "and tomorrow?" },
      ],
    });
    const second = await client.messages.create({ model: "m", max_tokens: 100, messages, tools: [weather] });
    expect(second.content).toEqual([{ type: "text", text: "You said: and tomorrow?" }]);
    expect(upstream().messages).toEqual([
      { role: "user", content: "weather in Paris?" },
      {
        role: "assistant",
        content: "",
        tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris" } } }],
      },
      { role: "tool", content: "sunny, 21 C", tool_name: "get_weather" },
      { role: "user", content: "and tomorrow?" },
    ]);
  });

  it("streams a tool call as a tool_use block with its input as JSON, which the SDK parses", async () => {
    ollama.enqueue({ text: "", toolCalls: [{ name: "get_weather", arguments: { city: "Oslo" } }] });
    const stream = client.messages.stream({
      model: "m",
      max_tokens: 100,
      messages: [{ role: "user", content: "weather in Oslo?" }],
      tools: [weather],
    });
    const jsonDeltas: string[] = [];
    stream.on("inputJson", (partial) => jsonDeltas.push(partial));
    const final = await stream.finalMessage();
    expect(jsonDeltas).toEqual(['{"city":"Oslo"}']);
    expect(final.stop_reason).toBe("tool_use");
    expect(final.content).toEqual([
      { type: "tool_use", id: expect.any(String), name: "get_weather", input: { city: "Oslo" } },
    ]);
  });

  it("sends a failed tool's result as a failure, and a tool result's image along with it", async () => {
    await client.messages.create({
      model: "m",
      max_tokens: 100,
      tools: [weather],
      messages: [
        { role: "user", content: "weather?" },
        { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "get_weather", input: {} }] },
        {
          role: "user",
          content: [
            {
              type: "tool_result",
              tool_use_id: "toolu_1",
              is_error: true,
              content: [
                { type: "text", text: "city is required" },
                { type: "image", source: { type: "base64", media_type: "image/png", data: PNG } },
              ],
            },
          ],
        },
      ],
    });
    expect((upstream().messages as object[]).at(-1)).toEqual({
      role: "tool",
      content: "the tool failed: city is required",
      images: [PNG],
      tool_name: "get_weather",
    });
  });

  it("passes image blocks to Ollama, which sees them", async () => {
    const message = await client.messages.create({
      model: "m",
      max_tokens: 100,
      messages: [
        {
          role: "user",
          content: [
            { type: "image", source: { type: "base64", media_type: "image/png", data: PNG } },
            { type: "text", text: "what is this?" },
          ],
        },
      ],
    });
    expect((upstream().messages as object[])[0]).toEqual({
      role: "user",
      content: "what is this?",
      images: [PNG],
    });
    expect(message.content).toEqual([{ type: "text", text: "You said: what is this? (and 1 png image(s))" }]);
  });

  it("maps output_config.format to Ollama's format, and the answer fits the schema", async () => {
    const schema = {
      type: "object",
      properties: { city: { type: "string" }, days: { type: "integer" } },
      required: ["city", "days"],
      additionalProperties: false,
    };
    const message = await client.messages.create({
      model: "m",
      max_tokens: 100,
      messages: [{ role: "user", content: "forecast" }],
      output_config: { format: { type: "json_schema", schema } },
    });
    expect(upstream().format).toEqual(schema);
    const block = message.content[0];
    expect(matches(JSON.parse(block?.type === "text" ? block.text : ""), schema)).toBe(true);
  });

  it("maps adaptive thinking and effort to Ollama's think, and answers with a thinking block", async () => {
    const message = await client.messages.create({
      model: "m",
      max_tokens: 100,
      messages: [{ role: "user", content: "why?" }],
      thinking: { type: "adaptive" },
      output_config: { effort: "low" },
    });
    expect(upstream().think).toBe("low");
    expect(message.content[0]).toEqual({
      type: "thinking",
      thinking: 'Thinking about "why?" at low effort.',
      signature: "",
    });
    await client.messages.create({
      model: "m",
      max_tokens: 100,
      messages: [{ role: "user", content: "why?" }],
      thinking: { type: "disabled" },
    });
    expect(upstream().think).toBe(false);
  });

  it("counts tokens with the sidecar's estimate, without calling the provider", async () => {
    const counted = await client.messages.countTokens({
      model: "m",
      system: "Be brief.",
      messages: [{ role: "user", content: "x".repeat(400) }],
      tools: [weather],
    });
    expect(counted.input_tokens).toBeGreaterThan(100);
    expect(counted.input_tokens).toBeLessThan(200);
    expect(ollama.requests).toHaveLength(0);
  });

  it("refuses what Ollama cannot honour with Anthropic's error shape naming the field", async () => {
    const forced = await failure(client, { tools: [weather], tool_choice: { type: "any" } });
    expect(forced).toBeInstanceOf(Anthropic.BadRequestError);
    expect(forced.error).toEqual({
      type: "error",
      error: {
        type: "invalid_request_error",
        message:
          'provider "local" (ollama) cannot honour tool_choice: Ollama cannot make the model call a tool',
      },
    });
    const single = await failure(client, {
      tools: [weather],
      tool_choice: { type: "auto", disable_parallel_tool_use: true },
    });
    expect(reason(single)).toContain("cannot honour tool_choice.disable_parallel_tool_use");
    const tagged = await failure(client, { metadata: { user_id: "u-1" } });
    expect(reason(tagged)).toContain("cannot honour metadata.user_id");
    expect(ollama.requests).toHaveLength(0);
  });

  it("refuses invalid and unhonourable fields by name before any provider call", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ max_tokens: undefined }, "max_tokens"],
      [{ temperature: 1.5 }, "temperature"],
      [
        { thinking: { type: "enabled", budget_tokens: 1024 } },
        "thinking: thinking budgets reach no provider",
      ],
      [{ thinking: { type: "disabled" }, output_config: { effort: "high" } }, "output_config.effort"],
      [{ tools: [{ type: "web_search_20250305", name: "web_search" }] }, "tools[0].type: server tools"],
      [{ tools: [weather], tool_choice: { type: "tool", name: "nope" } }, 'no tool named "nope"'],
      [
        {
          messages: [
            {
              role: "user",
              content: [{ type: "image", source: { type: "url", url: "https://example.com/a.png" } }],
            },
          ],
        },
        "does not fetch remote images",
      ],
      [
        {
          messages: [{ role: "user", content: [{ type: "document", source: { type: "text", data: "x" } }] }],
        },
        "documents reach no provider",
      ],
      [
        { messages: [{ role: "user", content: [{ type: "text", text: "x", citations: [{ type: "x" }] }] }] },
        "messages[0].content[0].citations: citations reach no provider",
      ],
      [
        { tools: [{ ...weather, defer_loading: true }] },
        "tools[0].defer_loading: deferred tool loading needs Anthropic's tool search",
      ],
      [{ container: "c-1" }, "container"],
      [{ frequency_penalty: 1 }, "frequency_penalty: unknown field"],
    ];
    for (const [params, words] of cases) {
      const error = await failure(client, params);
      expect(error.status).toBe(400);
      expect(reason(error)).toContain(words);
      expect((error.error as { error: { type: string } }).error.type).toBe("invalid_request_error");
    }
    expect(ollama.requests).toHaveLength(0);
  });

  it("answers its own errors in Anthropic's shape: bad JSON, unknown path", async () => {
    const bad = await fetch(`${viaOllama.sidecar.agentUrl}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({
      type: "error",
      error: { type: "invalid_request_error", message: expect.stringContaining("not valid JSON") },
    });
    const large = await fetch(`${viaOllama.sidecar.agentUrl}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "m",
        max_tokens: 1,
        messages: [{ role: "user", content: "x".repeat(9 * 1024 * 1024) }],
      }),
    });
    expect(large.status).toBe(413);
    expect(await large.json()).toMatchObject({
      type: "error",
      error: {
        type: "request_too_large",
        message: expect.stringContaining("larger than the sidecar's limit"),
      },
    });
    const unknown = await fetch(`${viaOllama.sidecar.agentUrl}/v1/messages/batches`, { method: "POST" });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ type: "error", error: { type: "not_found_error" } });
  });

  it("ends a stream that fails after it started with Anthropic's error event", async () => {
    ollama.enqueue({ errorAfterChunks: 2 });
    const stream = await client.messages.create({
      model: "m",
      max_tokens: 100,
      messages: [{ role: "user", content: "one two three" }],
      stream: true,
    });
    const seen: string[] = [];
    const error = await (async () => {
      for await (const event of stream) seen.push(event.type);
    })().catch((e: unknown) => e);
    expect(seen.slice(0, 2)).toEqual(["message_start", "content_block_start"]);
    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).message).toContain("failed after the answer had started");
  });
});

describe("Anthropic Messages API over a Bedrock provider", () => {
  it("maps system, tools, tool_choice and a tool round trip to Converse", async () => {
    const first = await claude.messages.create({
      model: "claude-sonnet-5",
      max_tokens: 200,
      system: "You forecast.",
      messages: [{ role: "user", content: "weather in Rome?" }],
      tools: [weather],
      tool_choice: { type: "tool", name: "get_weather" },
      metadata: { user_id: "agent-7" },
      ...{ top_k: 5 },
    });
    expect(converse()).toMatchObject({
      system: [{ text: "You forecast." }],
      inferenceConfig: { maxTokens: 200 },
      additionalModelRequestFields: { top_k: 5 },
      requestMetadata: { user_id: "agent-7" },
      toolConfig: { toolChoice: { tool: { name: "get_weather" } } },
    });
    const use = first.content.find((b): b is Anthropic.ToolUseBlock => b.type === "tool_use");
    expect(first.stop_reason).toBe("tool_use");
    if (use === undefined) throw new Error("no tool_use block");
    const second = await claude.messages.create({
      model: "claude-sonnet-5",
      max_tokens: 200,
      tools: [weather],
      messages: [
        { role: "user", content: "weather in Rome?" },
        { role: "assistant", content: first.content },
        {
          role: "user",
          content: [{ type: "tool_result", tool_use_id: use.id, content: "no such city", is_error: true }],
        },
      ],
    });
    expect(second.stop_reason).toBe("end_turn");
    expect((converse().messages as { content: object[] }[]).at(-1)?.content).toEqual([
      { toolResult: { toolUseId: use.id, content: [{ text: "no such city" }], status: "error" } },
    ]);
  });

  it("streams a Converse answer with text and a tool call in the exact event sequence", async () => {
    bedrock.enqueue({ text: "Let me check. ", toolUse: { name: "get_weather", input: { city: "Rome" } } });
    const stream = await claude.messages.create({
      model: "m",
      max_tokens: 200,
      messages: [{ role: "user", content: "weather in Rome?" }],
      tools: [weather],
      stream: true,
    });
    const events: Anthropic.RawMessageStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    const shape = events.map((e) =>
      "index" in e
        ? `${e.type}:${e.index}`
        : e.type === "message_delta"
          ? `${e.type}:${e.delta.stop_reason}`
          : e.type,
    );
    expect(shape).toEqual([
      "message_start",
      "content_block_start:0",
      "content_block_delta:0",
      "content_block_delta:0",
      "content_block_delta:0",
      "content_block_stop:0",
      "content_block_start:1",
      "content_block_delta:1",
      "content_block_stop:1",
      "message_delta:tool_use",
      "message_stop",
    ]);
    const start = events[6];
    expect(start?.type === "content_block_start" && start.content_block).toMatchObject({
      type: "tool_use",
      name: "get_weather",
      input: {},
    });
  });

  it("maps images to image blocks and effort to Converse's outputConfig.effort", async () => {
    const message = await claude.messages.create({
      model: "m",
      max_tokens: 200,
      output_config: { effort: "high" },
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "see" },
            { type: "image", source: { type: "base64", media_type: "image/png", data: PNG } },
          ],
        },
      ],
    });
    expect(converse().outputConfig).toEqual({ effort: "high" });
    expect(message.content).toContainEqual({ type: "text", text: "You said: see (and 1 png image(s))" });
  });

  it("refuses what Converse cannot honour, naming the field", async () => {
    const adaptive = await failure(claude, { thinking: { type: "adaptive" } });
    expect(reason(adaptive)).toContain('provider "claude" (bedrock) cannot honour thinking');
    const thought = await failure(claude, {
      messages: [
        { role: "user", content: "a" },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "hmm", signature: "sig" },
            { type: "text", text: "b" },
          ],
        },
        { role: "user", content: "c" },
      ],
    });
    expect(reason(thought)).toContain("cannot honour messages[1].content");
    expect(bedrock.requests).toHaveLength(0);
  });
});
