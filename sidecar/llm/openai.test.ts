// The openai provider against the faithful OpenAI server, with every agent API the sidecar
// serves driven by its official client: OpenAI chat completions and embeddings (the `openai`
// SDK), Responses (`responses.create`), Anthropic Messages (`@anthropic-ai/sdk`) and Ollama's
// API (the `ollama` client). The API key reaches the server; the agents hold a placeholder.
import Anthropic from "@anthropic-ai/sdk";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { matches } from "../testing/json-schema-match.ts";
import { OpenAiServer } from "../testing/openai-server.ts";
import { apiKeyDir, baseConfig, llmConfig, startTestSidecar, type TestSidecar } from "../testing/sidecar.ts";

const API_KEY = "sk-proj-openai-provider-test-0123456789";
const WEATHER = {
  type: "object",
  properties: { city: { type: "string" } },
  required: ["city"],
};

let upstream: OpenAiServer;
let sidecar: TestSidecar;
let openai: OpenAI;

beforeAll(async () => {
  upstream = new OpenAiServer({ apiKey: API_KEY });
  await upstream.listen();
  const dir = apiKeyDir(`${API_KEY}\n`);
  sidecar = await startTestSidecar(
    baseConfig({
      llm: llmConfig([
        {
          name: "vllm",
          type: "openai",
          endpoint: upstream.baseUrl,
          model: "gpt-4o-mini",
          credentialsDir: dir,
          headers: { "OpenAI-Organization": "org-agenttype" },
        },
      ]),
    }),
  );
  openai = new OpenAI({ baseURL: `${sidecar.sidecar.agentUrl}/v1`, apiKey: "agenttype-placeholder" });
});

afterAll(async () => {
  await sidecar?.close();
  await upstream?.close();
});

function last() {
  const request = upstream.requests.at(-1);
  if (request === undefined) throw new Error("the upstream got no request");
  return request;
}

describe("openai provider, translated from each agent API", () => {
  it("answers the openai SDK's chat completion with the configured model, key and headers", async () => {
    const completion = await openai.chat.completions.create({
      model: "whatever-the-agent-names",
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "hello there" },
      ],
      temperature: 0.2,
      max_tokens: 50,
    });
    expect(completion.choices[0]?.message.content).toBe("You said: hello there");
    expect(completion.model).toBe("gpt-4o-mini");
    // Four words, four chunks: the faithful server counts a word as a token.
    expect(completion.usage?.completion_tokens).toBe(4);
    const request = last();
    expect(request.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(request.headers["openai-organization"]).toBe("org-agenttype");
    expect(request.body).toMatchObject({ model: "gpt-4o-mini", temperature: 0.2 });
  });

  it("streams a chat completion and a tool call round trip", async () => {
    const stream = await openai.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "what is the weather" }],
      tools: [{ type: "function", function: { name: "weather", parameters: WEATHER } }],
      tool_choice: "required",
      stream: true,
      stream_options: { include_usage: true },
    });
    const calls: { id: string; name: string; arguments: string }[] = [];
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      for (const call of chunk.choices[0]?.delta.tool_calls ?? []) {
        const entry = calls[call.index] ?? { id: "", name: "", arguments: "" };
        entry.id += call.id ?? "";
        entry.name += call.function?.name ?? "";
        entry.arguments += call.function?.arguments ?? "";
        calls[call.index] = entry;
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expect(finish).toBe("tool_calls");
    expect(calls).toHaveLength(1);
    expect(calls[0]?.name).toBe("weather");
    expect(matches(JSON.parse(calls[0]?.arguments ?? ""), WEATHER)).toBe(true);
    expect(usage?.prompt_tokens).toBeGreaterThan(0);
    const call = calls[0] as { id: string; name: string; arguments: string };
    const answer = await openai.chat.completions.create({
      model: "m",
      messages: [
        { role: "user", content: "what is the weather" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: call.id, type: "function", function: { name: call.name, arguments: call.arguments } },
          ],
        },
        { role: "tool", tool_call_id: call.id, content: "sunny" },
        { role: "user", content: "thanks" },
      ],
      tools: [{ type: "function", function: { name: "weather", parameters: WEATHER } }],
    });
    expect(answer.choices[0]?.message.content).toBe("You said: thanks");
  });

  it("holds the answer to a json_schema response_format", async () => {
    const schema = { type: "object", properties: { n: { type: "integer" } }, required: ["n"] };
    const completion = await openai.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "a number" }],
      response_format: { type: "json_schema", json_schema: { name: "num", schema } },
    });
    expect(matches(JSON.parse(completion.choices[0]?.message.content ?? ""), schema)).toBe(true);
  });

  it("answers the Responses API through chat completions", async () => {
    const response = await openai.responses.create({
      model: "m",
      instructions: "be brief",
      input: "hello responses",
      max_output_tokens: 40,
    });
    expect(response.output_text).toBe("You said: hello responses");
    expect(last().body).toMatchObject({ messages: [{ role: "system" }, { role: "user" }], max_tokens: 40 });
  });

  it("answers the Anthropic SDK's Messages request, streamed", async () => {
    const client = new Anthropic({ baseURL: sidecar.sidecar.agentUrl, apiKey: "agenttype-placeholder" });
    const stream = client.messages.stream({
      model: "claude-anything",
      max_tokens: 64,
      system: "be brief",
      messages: [{ role: "user", content: "hello from anthropic" }],
    });
    const message = await stream.finalMessage();
    expect(message.content).toEqual([{ type: "text", text: "You said: hello from anthropic" }]);
    expect(message.usage.output_tokens).toBe(5);
    expect(last().body).toMatchObject({ model: "gpt-4o-mini", max_tokens: 64, stream: true });
  });

  it("answers the ollama client's chat", async () => {
    const ollama = new Ollama({ host: sidecar.sidecar.agentUrl });
    const answer = await ollama.chat({
      model: "llama3.2",
      messages: [{ role: "user", content: "hello from ollama" }],
      options: { temperature: 0.1, num_predict: 10, seed: 7 },
      stream: false,
    });
    expect(answer.message.content).toBe("You said: hello from ollama");
    expect(last().body).toMatchObject({ temperature: 0.1, max_tokens: 10, seed: 7 });
  });

  it("refuses by name what OpenAI's chat completions cannot hold, before calling", async () => {
    const before = upstream.requests.length;
    const ollama = new Ollama({ host: sidecar.sidecar.agentUrl });
    const refused = await ollama
      .chat({
        model: "m",
        messages: [{ role: "user", content: "x" }],
        options: { num_ctx: 8192 },
        stream: false,
      })
      .catch((error: Error) => error);
    expect(String(refused)).toContain('provider "vllm" (openai) cannot honour options.num_ctx');
    expect(upstream.requests.length).toBe(before);
  });

  it("embeds through /v1/embeddings", async () => {
    const answer = await openai.embeddings.create({ model: "m", input: ["one", "two"], dimensions: 4 });
    expect(answer.data.map((d) => d.embedding.length)).toEqual([4, 4]);
    expect(last().body).toMatchObject({ model: "gpt-4o-mini", input: ["one", "two"], dimensions: 4 });
  });

  it("gives the agent a 502 naming the provider when the key is refused", async () => {
    const dir = apiKeyDir("sk-wrong-key-000000000000");
    const wrong = await startTestSidecar(
      baseConfig({
        llm: llmConfig([
          {
            name: "vllm",
            type: "openai",
            endpoint: upstream.baseUrl,
            model: "gpt-4o-mini",
            credentialsDir: dir,
          },
        ]),
      }),
    );
    try {
      const client = new OpenAI({ baseURL: `${wrong.sidecar.agentUrl}/v1`, apiKey: "x", maxRetries: 0 });
      const error = await client.chat.completions
        .create({ model: "m", messages: [{ role: "user", content: "hi" }] })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.APIError);
      expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
      expect(String((error as Error).message)).toContain('provider "vllm" (openai');
      expect(String((error as Error).message)).not.toContain("sk-wrong-key-000000000000");
    } finally {
      await wrong.close();
    }
  });
});
