import OpenAI, { type APIError } from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { OllamaServer } from "../testing/ollama-server.ts";
import { baseConfig, llmConfig, startTestSidecar, type TestSidecar } from "../testing/sidecar.ts";

let ollama: OllamaServer;
let sc: TestSidecar;
let client: OpenAI;

beforeAll(async () => {
  ollama = new OllamaServer({ token: "ollama-secret-token" });
  await ollama.listen();
  const dir = (await import("node:fs")).mkdtempSync(`${(await import("node:os")).tmpdir()}/creds-`);
  (await import("node:fs")).writeFileSync(`${dir}/token`, "ollama-secret-token\n");
  sc = await startTestSidecar(
    baseConfig({
      llm: llmConfig([
        { name: "local", type: "ollama", endpoint: ollama.url, model: "llama3.2", credentialsDir: dir },
      ]),
    }),
  );
  client = new OpenAI({ baseURL: `${sc.sidecar.agentUrl}/v1`, apiKey: "unused", maxRetries: 0 });
});

afterAll(async () => {
  await sc.close();
  await ollama.close();
});

beforeEach(() => {
  ollama.requests.length = 0;
});

describe("OpenAI-compatible API over an Ollama provider", () => {
  it("answers a chat completion with usage, sending the provider's token upstream only", async () => {
    const completion = await client.chat.completions.create({
      model: "gpt-4o",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "hello sidecar" },
      ],
      max_tokens: 50,
    });
    expect(completion.choices[0]?.message.content).toBe("You said: hello sidecar");
    expect(completion.choices[0]?.finish_reason).toBe("stop");
    expect(completion.model).toBe("llama3.2");
    expect(completion.usage?.completion_tokens).toBe(4);
    expect(completion.usage?.prompt_tokens).toBeGreaterThan(0);
    const upstream = ollama.requests.at(-1);
    expect(upstream?.headers.authorization).toBe("Bearer ollama-secret-token");
    expect(upstream?.body).toMatchObject({
      model: "llama3.2",
      stream: false,
      options: { num_predict: 50 },
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "hello sidecar" },
      ],
    });
  });

  it("streams chunk by chunk with the usage chunk when asked", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: "one two three four" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const pieces: string[] = [];
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (choice?.delta.content) pieces.push(choice.delta.content);
      if (choice?.finish_reason) finish = choice.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(pieces).toEqual(["You ", "said: ", "one ", "two ", "three ", "four"]);
    expect(finish).toBe("stop");
    expect(usage?.completion_tokens).toBe(6);
    expect(ollama.requests.at(-1)?.body.stream).toBe(true);
  });

  it("maps tool definitions, tool calls and tool results both ways", async () => {
    ollama.enqueue({ text: "", toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }] });
    const tools: OpenAI.ChatCompletionTool[] = [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Weather of a city",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
      },
    ];
    const first = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "weather in Paris?" }],
      tools,
    });
    const call = first.choices[0]?.message.tool_calls?.[0];
    expect(first.choices[0]?.finish_reason).toBe("tool_calls");
    expect(call?.type === "function" && call.function.name).toBe("get_weather");
    expect(call?.type === "function" && JSON.parse(call.function.arguments)).toEqual({ city: "Paris" });
    expect(ollama.requests.at(-1)?.body.tools).toEqual([
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Weather of a city",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
      },
    ]);
    if (call === undefined) throw new Error("no tool call");
    await client.chat.completions.create({
      model: "m",
      messages: [
        { role: "user", content: "weather in Paris?" },
        first.choices[0]?.message as OpenAI.ChatCompletionMessageParam,
        { role: "tool", tool_call_id: call.id, content: "sunny" },
      ],
      tools,
    });
    expect(ollama.requests.at(-1)?.body.messages).toEqual([
      { role: "user", content: "weather in Paris?" },
      {
        role: "assistant",
        content: "",
        tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris" } } }],
      },
      { role: "tool", content: "sunny", tool_name: "get_weather" },
    ]);
  });

  it("streams tool calls as indexed deltas", async () => {
    ollama.enqueue({ text: "", toolCalls: [{ name: "lookup", arguments: { q: "x" } }] });
    const stream = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "look it up" }],
      tools: [{ type: "function", function: { name: "lookup", parameters: { type: "object" } } }],
      stream: true,
    });
    const calls: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      calls.push(...(chunk.choices[0]?.delta.tool_calls ?? []));
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      index: 0,
      type: "function",
      function: { name: "lookup", arguments: '{"q":"x"}' },
    });
    expect(finish).toBe("tool_calls");
  });

  it("never returns the provider's token or upstream headers to the agent, even on upstream errors", async () => {
    ollama.enqueue({ status: 500, error: "boom" }, { status: 500, error: "boom" });
    const responses: Response[] = [];
    for (const stream of [false, true, false]) {
      responses.push(
        await fetch(`${sc.sidecar.agentUrl}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "m", stream, messages: [{ role: "user", content: "x" }] }),
        }),
      );
    }
    expect(responses.map((r) => r.status)).toEqual([503, 200, 200]);
    for (const response of responses) {
      const text = `${JSON.stringify([...response.headers])}${await response.text()}`;
      expect(text).not.toContain("ollama-secret-token");
      expect(text).not.toMatch(/authorization|bearer/i);
    }
    expect(sc.logs.join("")).not.toContain("ollama-secret-token");
  });

  it("lists the providers' models", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["llama3.2"]);
  });

  it("answers embeddings in the base64 form the openai client asks for by default", async () => {
    const result = await client.embeddings.create({ model: "text-embedding-3-small", input: ["a", "b"] });
    expect(result.data).toHaveLength(2);
    expect(result.data[0]?.embedding).toHaveLength(8);
    const norm = Math.hypot(...(result.data[0]?.embedding ?? []));
    expect(norm).toBeCloseTo(1, 5);
    const floats = await client.embeddings.create({ model: "x", input: "a", encoding_format: "float" });
    expect(floats.data[0]?.embedding[0]).toBeCloseTo(result.data[0]?.embedding[0] ?? Number.NaN, 5);
  });

  it("refuses an invalid request with the field named and without calling the provider", async () => {
    const error = await client.chat.completions
      .create({ model: "m", messages: [] as OpenAI.ChatCompletionMessageParam[] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as APIError).message).toContain("messages");
    expect(ollama.requests).toHaveLength(0);
  });
});
