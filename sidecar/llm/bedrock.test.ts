// Bedrock through the real @aws-sdk client, pointed at a local endpoint that frames
// ConverseStream answers as AWS event-stream messages.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ollama } from "ollama";
import OpenAI, { type APIError } from "openai";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BedrockServer } from "../testing/bedrock-server.ts";
import { BMP, GIF, PNG } from "../testing/images.ts";
import { matches } from "../testing/json-schema-match.ts";
import { OllamaServer } from "../testing/ollama-server.ts";
import { baseConfig, llmConfig, startTestSidecar, type TestSidecar } from "../testing/sidecar.ts";
import { toConverseInput } from "./bedrock.ts";

const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY";
const MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0";

let bedrock: BedrockServer;
let fallback: OllamaServer;
let sc: TestSidecar | undefined;
let credentialsDir: string;

beforeEach(async () => {
  bedrock = new BedrockServer();
  fallback = new OllamaServer();
  await Promise.all([bedrock.listen(), fallback.listen()]);
  credentialsDir = mkdtempSync(join(tmpdir(), "bedrock-creds-"));
  writeFileSync(join(credentialsDir, "AWS_ACCESS_KEY_ID"), "AKIDTESTKEY\n");
  writeFileSync(join(credentialsDir, "AWS_SECRET_ACCESS_KEY"), `${SECRET}\n`);
  writeFileSync(join(credentialsDir, "AWS_SESSION_TOKEN"), "session-token-value");
});

afterEach(async () => {
  await sc?.close();
  sc = undefined;
  await Promise.all([bedrock.close(), fallback.close()]);
});

async function start(withFallback = false) {
  const providers: object[] = [
    {
      name: "claude",
      type: "bedrock",
      region: "us-east-1",
      endpoint: bedrock.url,
      model: MODEL,
      credentialsDir,
    },
  ];
  if (withFallback)
    providers.push({ name: "local", type: "ollama", endpoint: fallback.url, model: "llama3.2" });
  sc = await startTestSidecar(
    baseConfig({
      llm: llmConfig(providers, { retries: { maxAttempts: 1, initialBackoffMs: 1, maxBackoffMs: 1 } }),
    }),
  );
  const url = sc.sidecar.agentUrl;
  return {
    openai: new OpenAI({ baseURL: `${url}/v1`, apiKey: "x", maxRetries: 0 }),
    ollama: new Ollama({ host: url }),
    url,
  };
}

const ask = { model: "claude", messages: [{ role: "user" as const, content: "hello bedrock" }] };

describe("Bedrock provider", () => {
  it("answers through Converse, signed with the mounted credentials, reporting usage", async () => {
    const { openai } = await start();
    const completion = await openai.chat.completions.create({ ...ask, max_tokens: 64, temperature: 0.5 });
    expect(completion.choices[0]?.message.content).toBe("You said: hello bedrock");
    expect(completion.usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 });
    expect(completion.model).toBe(MODEL);
    const request = bedrock.requests.at(-1);
    expect(request?.path).toBe(`/model/${MODEL}/converse`);
    expect(request?.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDTESTKEY\/\d{8}\/us-east-1\/bedrock\//,
    );
    expect(request?.headers["x-amz-security-token"]).toBe("session-token-value");
    expect(request?.body).toMatchObject({
      messages: [{ role: "user", content: [{ text: "hello bedrock" }] }],
      inferenceConfig: { maxTokens: 64, temperature: 0.5 },
    });
  });

  it("streams through ConverseStream event by event", async () => {
    const { ollama } = await start();
    const parts: string[] = [];
    let last: { done: boolean; eval_count: number; prompt_eval_count: number } | undefined;
    for await (const part of await ollama.chat({ ...ask, stream: true })) {
      parts.push(part.message.content);
      last = part;
    }
    expect(parts.filter((p) => p !== "")).toEqual(["You ", "said: ", "hello ", "bedrock"]);
    expect(last).toMatchObject({ done: true, eval_count: 4, prompt_eval_count: 12 });
    expect(bedrock.requests.at(-1)?.path).toBe(`/model/${MODEL}/converse-stream`);
  });

  it("maps tool use both ways, streamed and not", async () => {
    const { openai } = await start();
    const tools: OpenAI.ChatCompletionTool[] = [
      {
        type: "function",
        function: { name: "get_weather", description: "Weather", parameters: { type: "object" } },
      },
    ];
    bedrock.enqueue({ text: "Checking.", toolUse: { name: "get_weather", input: { city: "Oslo" } } });
    const first = await openai.chat.completions.create({ ...ask, tools });
    expect(first.choices[0]?.finish_reason).toBe("tool_calls");
    expect(first.choices[0]?.message.tool_calls).toEqual([
      { id: "tooluse_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } },
    ]);
    expect(bedrock.requests.at(-1)?.body.toolConfig).toEqual({
      tools: [
        {
          toolSpec: {
            name: "get_weather",
            description: "Weather",
            inputSchema: { json: { type: "object" } },
          },
        },
      ],
    });

    bedrock.enqueue({ text: "Again.", toolUse: { name: "get_weather", input: { city: "Bergen", days: 2 } } });
    const stream = await openai.chat.completions.create({
      ...ask,
      tools,
      stream: true,
      messages: [
        { role: "system", content: "be useful" },
        ...ask.messages,
        first.choices[0]?.message as OpenAI.ChatCompletionMessageParam,
        { role: "tool", tool_call_id: "tooluse_1", content: "rain" },
      ],
    });
    const calls: unknown[] = [];
    for await (const chunk of stream) calls.push(...(chunk.choices[0]?.delta.tool_calls ?? []));
    expect(calls).toEqual([
      {
        index: 0,
        id: "tooluse_1",
        type: "function",
        function: { name: "get_weather", arguments: '{"city":"Bergen","days":2}' },
      },
    ]);
    expect(bedrock.requests.at(-1)?.body).toMatchObject({
      system: [{ text: "be useful" }],
      messages: [
        { role: "user", content: [{ text: "hello bedrock" }] },
        {
          role: "assistant",
          content: [
            { text: "Checking." },
            { toolUse: { toolUseId: "tooluse_1", name: "get_weather", input: { city: "Oslo" } } },
          ],
        },
        { role: "user", content: [{ toolResult: { toolUseId: "tooluse_1", content: [{ text: "rain" }] } }] },
      ],
    });
  });

  it("falls back when Bedrock answers ThrottlingException", async () => {
    const { openai } = await start(true);
    bedrock.enqueue({ status: 429, exception: "ThrottlingException" });
    const completion = await openai.chat.completions.create(ask);
    expect(completion.choices[0]?.message.content).toBe("You said: hello bedrock");
    expect(completion.model).toBe("llama3.2");
  });

  it("falls back on ModelNotReadyException and ServiceUnavailableException", async () => {
    const { openai } = await start(true);
    bedrock.enqueue({ status: 429, exception: "ModelNotReadyException" });
    expect((await openai.chat.completions.create(ask)).model).toBe("llama3.2");
    bedrock.enqueue({ status: 503, exception: "ServiceUnavailableException" });
    expect((await openai.chat.completions.create(ask)).model).toBe("llama3.2");
  });

  it("falls back on a throttlingException in the stream before any text reached the agent", async () => {
    const { ollama } = await start(true);
    bedrock.enqueue({ streamException: { afterDeltas: 0, type: "throttlingException" } });
    let text = "";
    for await (const part of await ollama.chat({ ...ask, stream: true })) text += part.message.content;
    expect(text).toBe("You said: hello bedrock");
    expect(fallback.requests.filter((r) => r.path === "/api/chat")).toHaveLength(1);
  });

  it("ends the stream with a clear error on a throttlingException after text was sent, without duplicates", async () => {
    const { openai } = await start(true);
    bedrock.enqueue({ streamException: { afterDeltas: 2, type: "throttlingException" } });
    let text = "";
    const error = await (async () => {
      for await (const chunk of await openai.chat.completions.create({ ...ask, stream: true })) {
        text += chunk.choices[0]?.delta.content ?? "";
      }
    })().catch((e: unknown) => e);
    expect(text).toBe("You said: ");
    expect((error as Error).message).toMatch(
      /provider "claude" failed after the answer had started \(throttled\).*ThrottlingException/,
    );
    expect(fallback.agentCalls).toHaveLength(0);
  });

  it("does not fall back on ValidationException: the agent gets a 400", async () => {
    const { openai } = await start(true);
    bedrock.enqueue({ status: 400, exception: "ValidationException" });
    const error = await openai.chat.completions.create(ask).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(fallback.agentCalls).toHaveLength(0);
  });

  it("never shows the agent the provider's credentials or signature", async () => {
    const { url } = await start();
    bedrock.enqueue({ status: 403, exception: "AccessDeniedException" });
    const responses = await Promise.all([
      fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(ask),
      }),
      fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(ask),
      }),
    ]);
    for (const response of responses) {
      const text = `${JSON.stringify([...response.headers])}${await response.text()}`;
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain("AKIDTESTKEY");
      expect(text).not.toContain("session-token-value");
      expect(text).not.toMatch(/AWS4-HMAC|x-amzn-requestid/i);
    }
    expect(responses.map((r) => r.status).sort()).toEqual([200, 502]);
    expect(sc?.logs.join("")).not.toContain(SECRET);
  });
});

describe("fields over Bedrock", () => {
  const upstream = () => bedrock.requests.at(-1)?.body ?? {};
  const schema = {
    type: "object",
    properties: { city: { type: "string" }, days: { type: "integer" } },
    required: ["city", "days"],
    additionalProperties: false,
  };

  async function refused(openai: OpenAI, params: Record<string, unknown>): Promise<APIError> {
    const before = bedrock.requests.length;
    const error = await openai.chat.completions
      .create({ ...ask, ...params } as OpenAI.ChatCompletionCreateParamsNonStreaming)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(bedrock.requests).toHaveLength(before);
    return error as APIError;
  }

  it("maps json_schema to outputConfig, and the answer fits the schema", async () => {
    const { openai } = await start();
    const completion = await openai.chat.completions.create({
      ...ask,
      response_format: { type: "json_schema", json_schema: { name: "trip", description: "a trip", schema } },
    });
    expect(upstream().outputConfig).toEqual({
      textFormat: {
        type: "json_schema",
        structure: { jsonSchema: { schema: JSON.stringify(schema), name: "trip", description: "a trip" } },
      },
    });
    expect(matches(JSON.parse(completion.choices[0]?.message.content ?? ""), schema)).toBe(true);
  });

  it("maps tool_choice required and a named function to toolChoice, and the model calls the tool", async () => {
    const { openai } = await start();
    const tools: OpenAI.ChatCompletionTool[] = [
      { type: "function", function: { name: "a", parameters: { type: "object" } } },
      {
        type: "function",
        function: {
          name: "b",
          strict: true,
          parameters: { type: "object", properties: { n: { type: "integer" } } },
        },
      },
    ];
    const any = await openai.chat.completions.create({ ...ask, tools, tool_choice: "required" });
    expect((upstream().toolConfig as { toolChoice: unknown }).toolChoice).toEqual({ any: {} });
    expect(any.choices[0]?.finish_reason).toBe("tool_calls");
    const named = await openai.chat.completions.create({
      ...ask,
      tools,
      tool_choice: { type: "function", function: { name: "b" } },
    });
    expect(upstream().toolConfig).toEqual({
      tools: [
        {
          toolSpec: {
            name: "b",
            description: "b",
            inputSchema: { json: { type: "object", properties: { n: { type: "integer" } } } },
            strict: true,
          },
        },
      ],
      toolChoice: { tool: { name: "b" } },
    });
    const call = named.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === "function" && [call.function.name, JSON.parse(call.function.arguments)]).toEqual([
      "b",
      { n: 1 },
    ]);
  });

  it("sends images as image blocks, and refuses formats Converse does not take", async () => {
    const { openai, ollama } = await start();
    const completion = await openai.chat.completions.create({
      ...ask,
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "look" },
            { type: "image_url", image_url: { url: `data:image/gif;base64,${GIF}` } },
          ],
        },
      ],
    });
    const blocks = (upstream().messages as { content: unknown[] }[])[0]?.content;
    expect(blocks).toEqual([{ image: { format: "gif", source: { bytes: GIF } } }, { text: "look" }]);
    expect(completion.choices[0]?.message.content).toBe("You said: look (and 1 gif image(s))");
    const bmp = await ollama
      .chat({ model: "m", messages: [{ role: "user", content: "x", images: [PNG, BMP] }] })
      .catch((e: unknown) => e);
    expect(bmp).toMatchObject({
      status_code: 400,
      error:
        'provider "claude" (bedrock) cannot honour messages[0].images: Converse takes png, jpeg, gif and webp images only',
    });
  });

  it("maps reasoning effort, service tier, metadata, stop and limits; top_k for Anthropic models", async () => {
    const { openai, ollama } = await start();
    const cut = await openai.chat.completions.create({
      ...ask,
      messages: [{ role: "user", content: "one two three four" }],
      reasoning_effort: "high",
      service_tier: "flex",
      metadata: { team: "search" },
      stop: ["three"],
      max_completion_tokens: 50,
      temperature: 0.2,
      top_p: 0.5,
    });
    expect(upstream()).toMatchObject({
      outputConfig: { effort: "high" },
      serviceTier: { type: "flex" },
      requestMetadata: { team: "search" },
      inferenceConfig: { stopSequences: ["three"], maxTokens: 50, temperature: 0.2, topP: 0.5 },
    });
    expect(cut.choices[0]?.message.content).toBe("You said: one two ");
    await ollama.chat({
      model: "m",
      messages: ask.messages,
      options: { top_k: 40, num_predict: 3 },
      stream: false,
    });
    expect(upstream()).toMatchObject({
      additionalModelRequestFields: { top_k: 40 },
      inferenceConfig: { maxTokens: 3 },
    });
  });

  it("refuses what Converse has not, naming the field and the provider", async () => {
    const { openai, ollama } = await start();
    const seed = await refused(openai, { seed: 7 });
    expect(seed.message).toBe('400 provider "claude" (bedrock) cannot honour seed: Converse has no seed');
    expect(seed.param).toBe("seed");
    expect((await refused(openai, { response_format: { type: "json_object" } })).param).toBe(
      "response_format",
    );
    expect((await refused(openai, { logprobs: true })).param).toBe("logprobs");
    expect((await refused(openai, { frequency_penalty: 1 })).param).toBe("frequency_penalty");
    expect((await refused(openai, { reasoning_effort: "minimal" })).param).toBe("reasoning_effort");
    const numCtx = await ollama
      .chat({ model: "m", messages: ask.messages, options: { num_ctx: 8192 } })
      .catch((e: unknown) => e);
    expect(numCtx).toMatchObject({
      status_code: 400,
      error: 'provider "claude" (bedrock) cannot honour options.num_ctx: Converse has no such setting',
    });
    const history: OpenAI.ChatCompletionMessageParam[] = [
      ...ask.messages,
      {
        role: "assistant",
        tool_calls: [{ id: "t1", type: "function", function: { name: "a", arguments: "{}" } }],
      },
      { role: "tool", tool_call_id: "t1", content: "done" },
    ];
    const none = await refused(openai, {
      messages: history,
      tools: [{ type: "function", function: { name: "a" } }],
      tool_choice: "none",
    });
    expect(none.param).toBe("tool_choice");
    // Defaults ask for nothing and pass: penalties of 0, think false.
    await openai.chat.completions.create({
      ...ask,
      frequency_penalty: 0,
      presence_penalty: 0,
      reasoning_effort: "none",
    });
    expect(upstream().outputConfig).toBeUndefined();
  });

  it("skips a provider that cannot honour a field rather than dropping it, and says so in the metrics", async () => {
    const { openai, url } = await start(true);
    const completion = await openai.chat.completions.create({ ...ask, seed: 7 });
    expect(completion.model).toBe("llama3.2");
    expect(bedrock.requests).toHaveLength(0);
    expect(fallback.requests.at(-1)?.body.options).toEqual({ seed: 7 });
    const metrics = await (await fetch(`${sc?.sidecar.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/agenttype_llm_fallbacks_total\{provider="claude",reason="cannot_honour"\} 1/);
    // And the other way round: strict tools only Converse holds to their schema.
    const strictTool = {
      type: "function" as const,
      function: { name: "f", strict: true, parameters: { type: "object", properties: {} } },
    };
    await openai.chat.completions.create({ ...ask, tools: [strictTool] });
    expect(bedrock.requests).toHaveLength(1);
    const both = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...ask, seed: 1, tools: [strictTool] }),
    });
    expect(both.status).toBe(400);
    expect(await both.json()).toEqual({
      error: {
        message:
          'provider "claude" (bedrock) cannot honour seed: Converse has no seed; provider "local" (ollama) cannot honour tools[0].function.strict: Ollama does not hold a tool call\'s arguments to the tool\'s schema',
        type: "invalid_request_error",
        param: "seed",
        code: "unsupported_parameter",
      },
    });
  });
});

describe("toConverseInput", () => {
  it("merges consecutive turns of one role, as Converse requires alternating roles", () => {
    const input = toConverseInput(
      {
        messages: [
          { role: "user", content: "a" },
          { role: "user", content: "b" },
          {
            role: "assistant",
            content: "",
            toolCalls: [
              { id: "t1", name: "f", arguments: {} },
              { id: "t2", name: "g", arguments: {} },
            ],
          },
          { role: "tool", content: "r1", toolCallId: "t1" },
          { role: "tool", content: "r2", toolCallId: "t2" },
        ],
        stop: ["END"],
        fields: {},
      },
      "m",
    );
    expect(input.messages?.map((m) => m.role)).toEqual(["user", "assistant", "user"]);
    expect(input.messages?.[0]?.content).toEqual([{ text: "a" }, { text: "b" }]);
    expect(input.messages?.[2]?.content?.map((c) => c.toolResult?.toolUseId)).toEqual(["t1", "t2"]);
    expect(input.inferenceConfig).toEqual({ stopSequences: ["END"] });
  });
});
