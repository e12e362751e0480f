import { Ollama } from "ollama";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { OllamaServer } from "../testing/ollama-server.ts";
import { baseConfig, llmConfig, startTestSidecar, type TestSidecar } from "../testing/sidecar.ts";
import { fromOllamaChatRequest, ollamaChatRequest } from "./ollama-request.ts";

let upstream: OllamaServer;
let sc: TestSidecar;
let client: Ollama;

beforeAll(async () => {
  upstream = new OllamaServer();
  await upstream.listen();
  sc = await startTestSidecar(
    baseConfig({
      llm: llmConfig([{ name: "local", type: "ollama", endpoint: upstream.url, model: "llama3.2" }]),
    }),
  );
  client = new Ollama({ host: sc.sidecar.agentUrl });
});

afterAll(async () => {
  await sc.close();
  await upstream.close();
});

beforeEach(() => {
  upstream.requests.length = 0;
});

describe("Ollama-native API over an Ollama provider", () => {
  it("reads a body sent without a JSON content type, as Ollama's own curl examples send it", async () => {
    for (const contentType of ["application/x-www-form-urlencoded", "text/plain"]) {
      const response = await fetch(`${sc.sidecar.agentUrl}/api/chat`, {
        method: "POST",
        headers: { "content-type": contentType },
        body: JSON.stringify({
          model: "llama3.2",
          messages: [{ role: "user", content: "curl" }],
          stream: false,
        }),
      });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ message: { content: "You said: curl" }, done: true });
    }
    const broken = await fetch(`${sc.sidecar.agentUrl}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "model=llama3.2",
    });
    expect(broken.status).toBe(400);
  });

  it("streams /api/chat as NDJSON ending with the done fields", async () => {
    const stream = await client.chat({
      model: "llama3.2",
      messages: [{ role: "user", content: "stream me" }],
      stream: true,
    });
    const parts: string[] = [];
    let last: Awaited<ReturnType<typeof client.chat>> | undefined;
    for await (const part of stream) {
      parts.push(part.message.content);
      last = part;
    }
    expect(parts.join("")).toBe("You said: stream me");
    expect(parts.length).toBeGreaterThan(2);
    expect(last).toMatchObject({ done: true, done_reason: "stop", eval_count: 4, model: "llama3.2" });
    expect(last?.prompt_eval_count).toBeGreaterThan(0);
    expect(last?.total_duration).toBeGreaterThan(0);
  });

  it("answers /api/chat without streaming", async () => {
    const answer = await client.chat({
      model: "any",
      messages: [{ role: "user", content: "hi" }],
      stream: false,
    });
    expect(answer.message).toEqual({ role: "assistant", content: "You said: hi" });
    expect(answer.done).toBe(true);
    expect(upstream.requests.at(-1)?.body).toMatchObject({ model: "llama3.2", stream: false });
  });

  it("passes tool calls through and pairs tool results with their call", async () => {
    upstream.enqueue({ text: "", toolCalls: [{ name: "add", arguments: { a: 1, b: 2 } }] });
    const tools = [
      {
        type: "function",
        function: { name: "add", description: "adds", parameters: { type: "object", properties: {} } },
      },
    ];
    const first = await client.chat({
      model: "m",
      messages: [{ role: "user", content: "1+2?" }],
      tools,
      stream: false,
    });
    expect(first.message.tool_calls).toEqual([{ function: { name: "add", arguments: { a: 1, b: 2 } } }]);
    await client.chat({
      model: "m",
      messages: [
        { role: "user", content: "1+2?" },
        first.message,
        { role: "tool", content: "3", tool_name: "add" },
      ],
      tools,
      stream: false,
    });
    expect(upstream.requests.at(-1)?.body.messages).toEqual([
      { role: "user", content: "1+2?" },
      {
        role: "assistant",
        content: "",
        tool_calls: [{ function: { name: "add", arguments: { a: 1, b: 2 } } }],
      },
      { role: "tool", content: "3", tool_name: "add" },
    ]);
  });

  it("streams /api/generate with the system prompt and options mapped", async () => {
    const stream = await client.generate({
      model: "llama3.2",
      prompt: "write",
      system: "you are terse",
      options: { temperature: 0.2, num_predict: 7 },
      stream: true,
    });
    let text = "";
    let done = false;
    for await (const part of stream) {
      text += part.response;
      done = part.done;
    }
    expect(text).toBe("You said: write");
    expect(done).toBe(true);
    expect(upstream.requests.at(-1)?.body).toMatchObject({
      messages: [
        { role: "system", content: "you are terse" },
        { role: "user", content: "write" },
      ],
      options: { temperature: 0.2, num_predict: 7 },
    });
  });

  it("answers /api/embed, /api/tags, /api/show and /api/version", async () => {
    const embedded = await client.embed({ model: "all-minilm", input: ["x", "y"] });
    expect(embedded.embeddings).toHaveLength(2);
    expect(embedded.embeddings[0]).toHaveLength(8);
    const tags = await client.list();
    expect(tags.models.map((m) => m.name)).toEqual(["llama3.2"]);
    const shown = await client.show({ model: "llama3.2" });
    expect(shown.capabilities).toContain("completion");
    const version = await client.version();
    expect(version.version).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it("answers a malformed request with Ollama's error object", async () => {
    const response = await fetch(`${sc.sidecar.agentUrl}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ messages: [] }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: expect.stringContaining("model") });
  });
});

describe("fromOllamaChatRequest", () => {
  it("pairs each tool result with the earliest unanswered call of that tool", () => {
    const request = fromOllamaChatRequest(
      ollamaChatRequest.parse({
        model: "m",
        messages: [
          { role: "user", content: "q" },
          {
            role: "assistant",
            content: "",
            tool_calls: [
              { function: { name: "add", arguments: { a: 1 } } },
              { function: { name: "mul", arguments: { a: 2 } } },
              { function: { name: "add", arguments: { a: 3 } } },
            ],
          },
          { role: "tool", content: "r-mul", tool_name: "mul" },
          { role: "tool", content: "r-add-1", tool_name: "add" },
          { role: "tool", content: "r-add-2", tool_name: "add" },
        ],
      }),
    );
    const calls = request.messages[1]?.toolCalls ?? [];
    expect(request.messages.slice(2).map((m) => m.toolCallId)).toEqual([
      calls[1]?.id,
      calls[0]?.id,
      calls[2]?.id,
    ]);
    expect(new Set(calls.map((c) => c.id)).size).toBe(3);
  });
});
