// The anthropic provider against the faithful Anthropic server, driven by the official
// clients as the agent: `@anthropic-ai/sdk` (Messages, streaming, a tool round trip) and the
// `openai` SDK (chat completions translated to Messages). The key travels as x-api-key with
// the configured anthropic-version; the agents hold a placeholder.
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AnthropicServer } from "../testing/anthropic-server.ts";
import { PNG } from "../testing/images.ts";
import { matches } from "../testing/json-schema-match.ts";
import { apiKeyDir, baseConfig, llmConfig, startTestSidecar, type TestSidecar } from "../testing/sidecar.ts";

const API_KEY = "sk-ant-api03-provider-test-abcdefghij";
const WEATHER = { type: "object" as const, properties: { city: { type: "string" } }, required: ["city"] };

let upstream: AnthropicServer;
let sidecar: TestSidecar;
let claude: Anthropic;

beforeAll(async () => {
  upstream = new AnthropicServer({ apiKey: API_KEY });
  await upstream.listen();
  const dir = apiKeyDir(`${API_KEY}\n`);
  sidecar = await startTestSidecar(
    baseConfig({
      llm: llmConfig([
        {
          name: "claude",
          type: "anthropic",
          endpoint: upstream.url,
          model: "claude-sonnet-4-5",
          anthropicVersion: "2023-06-01",
          credentialsDir: dir,
          headers: { "anthropic-beta": "token-efficient-tools-2025-02-19" },
        },
      ]),
    }),
  );
  claude = new Anthropic({ baseURL: sidecar.sidecar.agentUrl, apiKey: "agenttype-placeholder" });
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

describe("anthropic provider", () => {
  it("answers the Anthropic SDK with the configured model, key, version and headers", async () => {
    const message = await claude.messages.create({
      model: "claude-whatever",
      max_tokens: 100,
      system: "be brief",
      messages: [{ role: "user", content: "hello claude" }],
      stop_sequences: ["never"],
    });
    expect(message.content).toMatchObject([{ type: "text", text: "You said: hello claude" }]);
    expect(message.model).toBe("claude-sonnet-4-5");
    expect(message.stop_reason).toBe("end_turn");
    expect(message.usage.output_tokens).toBe(4);
    const request = last();
    expect(request.headers["x-api-key"]).toBe(API_KEY);
    expect(request.headers["anthropic-version"]).toBe("2023-06-01");
    expect(request.headers["anthropic-beta"]).toBe("token-efficient-tools-2025-02-19");
    expect(request.headers.authorization).toBeUndefined();
    expect(request.body).toMatchObject({ model: "claude-sonnet-4-5", max_tokens: 100, system: "be brief" });
  });

  it("streams a forced tool call, then takes its result and an image in the next turn", async () => {
    const stream = claude.messages.stream({
      model: "m",
      max_tokens: 100,
      messages: [{ role: "user", content: "weather?" }],
      tools: [{ name: "weather", input_schema: WEATHER }],
      tool_choice: { type: "any" },
    });
    const first = await stream.finalMessage();
    expect(first.stop_reason).toBe("tool_use");
    const use = first.content.find((b) => b.type === "tool_use");
    expect(use?.name).toBe("weather");
    expect(matches(use?.input, WEATHER)).toBe(true);
    const second = await claude.messages.create({
      model: "m",
      max_tokens: 100,
      tools: [{ name: "weather", input_schema: WEATHER }],
      messages: [
        { role: "user", content: "weather?" },
        { role: "assistant", content: first.content.filter((b) => b.type === "tool_use") },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: use?.id ?? "", content: "sunny" },
            { type: "image", source: { type: "base64", media_type: "image/png", data: PNG } },
            { type: "text", text: "and this picture" },
          ],
        },
      ],
    });
    expect(second.content).toMatchObject([
      { type: "text", text: "You said: and this picture (and 1 image(s))" },
    ]);
  });

  it("answers the openai SDK's streamed chat completion, max_tokens defaulted for Messages", async () => {
    const openai = new OpenAI({ baseURL: `${sidecar.sidecar.agentUrl}/v1`, apiKey: "agenttype-placeholder" });
    const stream = await openai.chat.completions.create({
      model: "gpt-anything",
      messages: [
        { role: "developer", content: "be brief" },
        { role: "user", content: "hello from openai" },
      ],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe("You said: hello from openai");
    expect(usage?.completion_tokens).toBe(5);
    expect(usage?.prompt_tokens).toBeGreaterThan(0);
    expect(last().body).toMatchObject({ max_tokens: 4096, system: "be brief", stream: true });
  });

  it("holds the answer to a json_schema through output_config.format", async () => {
    const openai = new OpenAI({ baseURL: `${sidecar.sidecar.agentUrl}/v1`, apiKey: "x" });
    const schema = { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] };
    const completion = await openai.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "ok?" }],
      response_format: { type: "json_schema", json_schema: { name: "ok", schema } },
    });
    expect(matches(JSON.parse(completion.choices[0]?.message.content ?? ""), schema)).toBe(true);
  });

  it("refuses a seed by name, the Messages API having none", async () => {
    const openai = new OpenAI({ baseURL: `${sidecar.sidecar.agentUrl}/v1`, apiKey: "x", maxRetries: 0 });
    const error = await openai.chat.completions
      .create({ model: "m", messages: [{ role: "user", content: "x" }], seed: 1 })
      .then(
        () => undefined,
        (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
      );
    expect(error?.status).toBe(400);
    expect(error?.message).toContain('provider "claude" (anthropic) cannot honour seed');
  });

  it("gives the agent Anthropic's invalid_request_error as a 400", async () => {
    upstream.enqueue({ status: 400, error: "messages: text content blocks must be non-empty" });
    const error = await claude.messages
      .create({ model: "m", max_tokens: 10, messages: [{ role: "user", content: "x" }] })
      .then(
        () => undefined,
        (e: unknown) => e as InstanceType<typeof Anthropic.APIError>,
      );
    expect(error?.status).toBe(400);
    expect(error?.message).toContain("text content blocks must be non-empty");
  });
});
