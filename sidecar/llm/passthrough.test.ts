// Pass-through: an OpenAI chat request to an openai provider and a Messages request to an
// anthropic provider go as the agent sent them (only the model and the credentials changed),
// and the answer's bytes come back as the provider wrote them, chunk for chunk, credentials
// removed; usage is still counted. Then the same providers mixed with the others: fallback
// across types, cool-downs, quotas and /status.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AnthropicServer } from "../testing/anthropic-server.ts";
import { BedrockServer } from "../testing/bedrock-server.ts";
import { OpenAiServer } from "../testing/openai-server.ts";
import { apiKeyDir, baseConfig, llmConfig, startTestSidecar, type TestSidecar } from "../testing/sidecar.ts";

const OPENAI_KEY = "sk-proj-passthrough-key-1234567890";
const ANTHROPIC_KEY = "sk-ant-api03-passthrough-key-abcdef";

let openaiUp: OpenAiServer;
let anthropicUp: AnthropicServer;
let bedrockUp: BedrockServer;
let viaOpenAi: TestSidecar;
let viaAnthropic: TestSidecar;
let mixed: TestSidecar;

beforeAll(async () => {
  openaiUp = new OpenAiServer({ apiKey: OPENAI_KEY });
  anthropicUp = new AnthropicServer({ apiKey: ANTHROPIC_KEY });
  bedrockUp = new BedrockServer();
  await Promise.all([openaiUp.listen(), anthropicUp.listen(), bedrockUp.listen()]);
  const awsDir = mkdtempSync(join(tmpdir(), "passthrough-aws-"));
  writeFileSync(join(awsDir, "AWS_ACCESS_KEY_ID"), "AKIDPASSTHROUGH1");
  writeFileSync(join(awsDir, "AWS_SECRET_ACCESS_KEY"), "passthrough-aws-secret-key");
  const openai = {
    name: "vllm",
    type: "openai",
    endpoint: openaiUp.baseUrl,
    model: "gpt-4o-mini",
    credentialsDir: apiKeyDir(OPENAI_KEY),
  };
  const anthropic = {
    name: "claude",
    type: "anthropic",
    endpoint: anthropicUp.url,
    model: "claude-sonnet-4-5",
    credentialsDir: apiKeyDir(ANTHROPIC_KEY),
  };
  const bedrock = {
    name: "cloud",
    type: "bedrock",
    region: "us-east-1",
    endpoint: bedrockUp.url,
    model: "anthropic.claude-3-5-sonnet-20240620-v1:0",
    credentialsDir: awsDir,
  };
  const once = { retries: { maxAttempts: 1, initialBackoffMs: 1, maxBackoffMs: 1 } };
  [viaOpenAi, viaAnthropic, mixed] = await Promise.all([
    startTestSidecar(baseConfig({ llm: llmConfig([openai], once) })),
    startTestSidecar(baseConfig({ llm: llmConfig([anthropic], once) })),
    startTestSidecar(
      baseConfig({
        llm: llmConfig([openai, anthropic, bedrock], {
          retries: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 2 },
          cooldown: { failures: 2, seconds: 60 },
        }),
      }),
    ),
  ]);
});

afterAll(async () => {
  await Promise.all([viaOpenAi?.close(), viaAnthropic?.close(), mixed?.close()]);
  await Promise.all([openaiUp?.close(), anthropicUp?.close(), bedrockUp?.close()]);
});

async function post(base: string, path: string, body: object, headers: Record<string, string> = {}) {
  return fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

/** The faithful servers stamp chunks with the second they were made; the rest is deterministic. */
const unstamped = (text: string) => text.replaceAll(/"created":\d+/g, '"created":0');

describe("pass-through", () => {
  it("sends an OpenAI chat request as it came, only the model and the key changed", async () => {
    const body = {
      model: "agent-model",
      messages: [{ role: "user", content: "as it came" }],
      temperature: 0.3,
      max_completion_tokens: 20,
      tool_choice: "none",
      tools: [{ type: "function", function: { name: "f", parameters: { type: "object", properties: {} } } }],
      prompt_cache_key: undefined,
      stop: ["never"],
    };
    const response = await post(viaOpenAi.sidecar.agentUrl, "/v1/chat/completions", body, {
      authorization: "Bearer agent-placeholder",
    });
    expect(response.status).toBe(200);
    const agentGot = await response.text();
    const sent = openaiUp.requests.at(-1);
    expect(JSON.parse(sent?.raw ?? "")).toEqual({
      ...JSON.parse(JSON.stringify(body)),
      model: "gpt-4o-mini",
    });
    expect(sent?.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
    // The answer is the server's body, byte for byte: the same request straight to the server.
    const direct = await post(openaiUp.baseUrl, "/chat/completions", JSON.parse(sent?.raw ?? ""), {
      authorization: `Bearer ${OPENAI_KEY}`,
    });
    expect(unstamped(agentGot)).toBe(unstamped(await direct.text()));
  });

  it("sends fields the sidecar's table refuses to a provider of the agent's API alone", async () => {
    // user, prompt_cache_key and logit_bias reach no Ollama or Converse model: refused there,
    // OpenAI's own fields here.
    const body = {
      model: "m",
      messages: [{ role: "user", content: "held back" }],
      user: "user-42",
      prompt_cache_key: "conversation-7",
      logit_bias: { "50256": -100 },
    };
    const response = await post(viaOpenAi.sidecar.agentUrl, "/v1/chat/completions", body);
    expect(response.status).toBe(200);
    expect(JSON.parse(openaiUp.requests.at(-1)?.raw ?? "")).toEqual({ ...body, model: "gpt-4o-mini" });
    // A field OpenAI does not know either goes all the same, and OpenAI's answer comes back.
    const unknown = await post(viaOpenAi.sidecar.agentUrl, "/v1/chat/completions", {
      ...body,
      no_such_field: 1,
    });
    expect(unknown.status).toBe(400);
    expect(await unknown.text()).toContain("Unrecognized request argument supplied: no_such_field");
    // Where the providers are of other APIs, such a field is refused by name, with no call made.
    const asked = openaiUp.requests.length;
    const refused = await post(viaAnthropic.sidecar.agentUrl, "/v1/chat/completions", body);
    expect(refused.status).toBe(400);
    const error = (await refused.json()) as { error: { param: string; message: string } };
    // The sidecar's own check, as before: the first field its table refuses.
    expect(error.error.param).toBe("logit_bias");
    expect(openaiUp.requests.length).toBe(asked);
  });

  it("skips a provider of another API for a field only the agent's own API takes, across a mixed order", async () => {
    // mixed: vllm (openai), claude (anthropic), cloud (bedrock). A Messages request with an
    // unknown top-level field goes to claude alone.
    const response = await post(
      mixed.sidecar.agentUrl,
      "/v1/messages",
      { model: "m", max_tokens: 20, messages: [{ role: "user", content: "hi" }], container: "c-1" },
      { "anthropic-version": "2023-06-01" },
    );
    expect(response.status).toBe(200);
    expect(((await response.json()) as { model: string }).model).toBe("claude-sonnet-4-5");
    expect(JSON.parse(anthropicUp.requests.at(-1)?.raw ?? "")).toMatchObject({ container: "c-1" });
  });

  it("relays an OpenAI stream chunk for chunk, and counts the usage it had the server add", async () => {
    const body = { model: "m", messages: [{ role: "user", content: "stream me please" }], stream: true };
    const response = await post(viaOpenAi.sidecar.agentUrl, "/v1/chat/completions", body);
    const agentGot = await response.text();
    const sent = JSON.parse(openaiUp.requests.at(-1)?.raw ?? "");
    expect(sent.stream_options).toEqual({ include_usage: true });
    const direct = await post(openaiUp.baseUrl, "/chat/completions", sent, {
      authorization: `Bearer ${OPENAI_KEY}`,
    });
    const directEvents = (await direct.text()).split("\n\n");
    // What the agent got: the server's events, less the usage-only chunk it did not ask for.
    const usageOnly = directEvents.filter((e) => e.includes('"choices":[]'));
    expect(usageOnly).toHaveLength(1);
    expect(unstamped(agentGot)).toBe(
      unstamped(directEvents.filter((e) => !usageOnly.includes(e)).join("\n\n")),
    );
    expect(agentGot.endsWith("data: [DONE]\n\n")).toBe(true);
    const metrics = await (await fetch(`${viaOpenAi.sidecar.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /gen_ai_client_token_usage_sum\{gen_ai_operation_name="chat",provider="vllm",gen_ai_request_model="gpt-4o-mini",gen_ai_token_type="output"\} [1-9]/,
    );
  });

  it("sends a Messages request as it came and relays its event stream as it came", async () => {
    const body = {
      model: "claude-agent",
      max_tokens: 50,
      system: [{ type: "text", text: "be brief", cache_control: { type: "ephemeral" } }],
      messages: [{ role: "user", content: [{ type: "text", text: "hello stream" }] }],
      stream: true,
      metadata: { user_id: "u-1" },
    };
    const response = await post(viaAnthropic.sidecar.agentUrl, "/v1/messages", body, {
      "x-api-key": "agent-placeholder",
      "anthropic-version": "2023-06-01",
    });
    const agentGot = await response.text();
    const sent = anthropicUp.requests.at(-1);
    expect(JSON.parse(sent?.raw ?? "")).toEqual({ ...body, model: "claude-sonnet-4-5" });
    expect(sent?.headers["x-api-key"]).toBe(ANTHROPIC_KEY);
    const direct = await post(`${anthropicUp.url}`, "/v1/messages", JSON.parse(sent?.raw ?? ""), {
      "x-api-key": ANTHROPIC_KEY,
      "anthropic-version": "2023-06-01",
    });
    expect(agentGot).toBe(await direct.text());
    expect(agentGot).toContain("event: message_stop");
  });

  it("sends a Responses request with store: false as it came, whole and streamed; a stored one is translated", async () => {
    const client = new OpenAI({ baseURL: `${viaOpenAi.sidecar.agentUrl}/v1`, apiKey: "x" });
    const whole = await client.responses.create({
      model: "agent-model",
      instructions: "be brief",
      input: "hello responses",
      store: false,
      max_output_tokens: 2,
    });
    expect(whole.output_text).toBe("You said: ");
    expect(whole.status).toBe("incomplete");
    const sent = openaiUp.requests.at(-1);
    expect(sent?.path).toBe("/v1/responses");
    expect(JSON.parse(sent?.raw ?? "")).toEqual({
      model: "gpt-4o-mini",
      instructions: "be brief",
      input: "hello responses",
      store: false,
      max_output_tokens: 2,
    });
    const body = { model: "m", input: [{ role: "user", content: "stream it" }], store: false, stream: true };
    const agentGot = await (await post(viaOpenAi.sidecar.agentUrl, "/v1/responses", body)).text();
    const direct = await post(
      openaiUp.baseUrl,
      "/responses",
      JSON.parse(openaiUp.requests.at(-1)?.raw ?? ""),
      {
        authorization: `Bearer ${OPENAI_KEY}`,
      },
    );
    expect(unstamped(agentGot).replaceAll(/"created_at":\d+/g, "")).toBe(
      unstamped(await direct.text()).replaceAll(/"created_at":\d+/g, ""),
    );
    expect(agentGot).toContain("event: response.completed");
    // Kept by the sidecar for a later previous_response_id: translated to chat completions.
    const stored = await client.responses.create({ model: "m", input: "keep me" });
    expect(stored.output_text).toBe("You said: keep me");
    expect(openaiUp.requests.at(-1)?.path).toBe("/v1/chat/completions");
  });

  it("removes the keys from a passed-through answer that holds them, whole and streamed", async () => {
    const client = new OpenAI({ baseURL: `${viaOpenAi.sidecar.agentUrl}/v1`, apiKey: "x" });
    openaiUp.enqueue({ text: `the key is ${OPENAI_KEY} and ${Buffer.from(OPENAI_KEY).toString("base64")}` });
    const whole = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "k" }],
    });
    expect(JSON.stringify(whole)).not.toContain(OPENAI_KEY);
    expect(whole.choices[0]?.message.content).toContain("[redacted]");
    anthropicUp.enqueue({ text: `the key is ${ANTHROPIC_KEY}` });
    const claude = new Anthropic({ baseURL: viaAnthropic.sidecar.agentUrl, apiKey: "x" });
    const streamed = await claude.messages
      .stream({ model: "m", max_tokens: 50, messages: [{ role: "user", content: "k" }] })
      .finalMessage();
    expect(JSON.stringify(streamed)).not.toContain(ANTHROPIC_KEY);
    expect(JSON.stringify(streamed)).toContain("[redacted]");
  });

  it("keeps the keys out of the errors of upstreams that echo them, before and after a stream started", async () => {
    const client = new OpenAI({ baseURL: `${viaOpenAi.sidecar.agentUrl}/v1`, apiKey: "x", maxRetries: 0 });
    const claude = new Anthropic({ baseURL: viaAnthropic.sidecar.agentUrl, apiKey: "x", maxRetries: 0 });
    // Invalid request: no fallback, the agent gets the upstream's message.
    openaiUp.enqueue({ status: 400, error: "bad", echoAuthorization: true });
    const before = await client.chat.completions
      .create({ model: "m", messages: [{ role: "user", content: "x" }] })
      .then(() => "answered", String);
    expect(before).toContain("[redacted]");
    anthropicUp.enqueue({ status: 400, error: "bad", echoAuthorization: true });
    const messagesBefore = await claude.messages
      .create({ model: "m", max_tokens: 10, messages: [{ role: "user", content: "x" }] })
      .then(() => "answered", String);
    expect(messagesBefore).toContain("[redacted]");
    openaiUp.enqueue({ errorAfterChunks: 1, echoAuthorization: true });
    const midOpenAi = await (
      await post(viaOpenAi.sidecar.agentUrl, "/v1/chat/completions", {
        model: "m",
        messages: [{ role: "user", content: "one two three" }],
        stream: true,
      })
    ).text();
    anthropicUp.enqueue({ errorAfterChunks: 1, echoAuthorization: true });
    const midMessages = await (
      await post(viaAnthropic.sidecar.agentUrl, "/v1/messages", {
        model: "m",
        max_tokens: 20,
        messages: [{ role: "user", content: "one two three" }],
        stream: true,
      })
    ).text();
    expect(midOpenAi).toContain('"error"');
    expect(midMessages).toContain("event: error");
    for (const text of [before, messagesBefore, midOpenAi, midMessages]) {
      for (const key of [OPENAI_KEY, ANTHROPIC_KEY]) {
        expect(text).not.toContain(key);
        expect(text).not.toContain(Buffer.from(key).toString("base64").slice(4, 30));
        expect(text).not.toContain(encodeURIComponent(`Bearer ${key}`));
      }
    }
  });
});

describe("mixed provider types", () => {
  it("falls back from a failing openai provider to anthropic (translated) and to bedrock, then cools it down", async () => {
    const client = new OpenAI({ baseURL: `${mixed.sidecar.agentUrl}/v1`, apiKey: "x", maxRetries: 0 });
    // vllm answers 503 twice (both attempts), claude 529 twice: bedrock answers, translated.
    openaiUp.enqueue({ status: 503 }, { status: 503 });
    anthropicUp.enqueue({ status: 529, error: "Overloaded" }, { status: 529, error: "Overloaded" });
    const first = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(first.model).toBe("anthropic.claude-3-5-sonnet-20240620-v1:0");
    // vllm fails again: claude answers this time, from an OpenAI request translated to Messages.
    openaiUp.enqueue({ status: 500 }, { status: 500 });
    const second = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "again" }],
    });
    expect(second.model).toBe("claude-sonnet-4-5");
    expect(second.choices[0]?.message.content).toBe("You said: again");
    // Two failed requests: vllm cools down and is not asked at all.
    const asked = openaiUp.requests.length;
    const third = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "more" }],
    });
    expect(third.model).toBe("claude-sonnet-4-5");
    expect(openaiUp.requests.length).toBe(asked);
    const status = (await (await fetch(`${mixed.sidecar.metricsUrl}/status`)).json()) as {
      providers: { name: string; state: string }[];
    };
    expect(status.providers.map((p) => [p.name, p.state])).toEqual([
      ["vllm", "unavailable"],
      ["claude", "ok"],
      ["cloud", "ok"],
    ]);
    const metrics = await (await fetch(`${mixed.sidecar.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/agenttype_llm_fallbacks_total\{provider="vllm",reason="failed"\} 2/);
    expect(metrics).toMatch(/agenttype_llm_fallbacks_total\{provider="vllm",reason="cooled_down"\} 1/);
    expect(metrics).toMatch(/agenttype_llm_errors_total\{provider="claude",error_type="unavailable"\} 2/);
  });

  it("falls back from an openai provider whose quota is used up to anthropic, translated", async () => {
    const quota = await startTestSidecar(
      baseConfig({
        llm: llmConfig([
          {
            name: "vllm",
            type: "openai",
            endpoint: openaiUp.baseUrl,
            model: "gpt-4o-mini",
            credentialsDir: apiKeyDir(OPENAI_KEY),
            rateLimit: { requestsPerMinute: 1 },
          },
          {
            name: "claude",
            type: "anthropic",
            endpoint: anthropicUp.url,
            model: "claude-sonnet-4-5",
            credentialsDir: apiKeyDir(ANTHROPIC_KEY),
          },
        ]),
      }),
    );
    try {
      const client = new OpenAI({ baseURL: `${quota.sidecar.agentUrl}/v1`, apiKey: "x" });
      const ask = { model: "m", messages: [{ role: "user" as const, content: "quota" }] };
      expect((await client.chat.completions.create(ask)).model).toBe("gpt-4o-mini");
      expect((await client.chat.completions.create(ask)).model).toBe("claude-sonnet-4-5");
      const metrics = await (await fetch(`${quota.sidecar.metricsUrl}/metrics`)).text();
      expect(metrics).toMatch(/agenttype_llm_fallbacks_total\{provider="vllm",reason="rate_limited"\} 1/);
      expect(metrics).toMatch(
        /gen_ai_client_token_usage_count\{gen_ai_operation_name="chat",provider="claude",gen_ai_request_model="claude-sonnet-4-5",gen_ai_token_type="output"\} 1/,
      );
    } finally {
      await quota.close();
    }
  });

  it("skips a provider that cannot honour a field for one that can, across types", async () => {
    // top_k: OpenAI's chat completions have none, so vllm could not take this request even
    // translated; claude takes it as it came. (The typed SDK no longer offers top_k: plain HTTP.)
    const cannotHonour = async () =>
      Number(
        /agenttype_llm_fallbacks_total\{provider="vllm",reason="cannot_honour"\} (\d+)/.exec(
          await (await fetch(`${mixed.sidecar.metricsUrl}/metrics`)).text(),
        )?.[1] ?? 0,
      );
    const before = await cannotHonour();
    const response = await post(
      mixed.sidecar.agentUrl,
      "/v1/messages",
      { model: "m", max_tokens: 20, top_k: 5, messages: [{ role: "user", content: "top k" }] },
      { "anthropic-version": "2023-06-01" },
    );
    const message = (await response.json()) as { model: string };
    expect(message.model).toBe("claude-sonnet-4-5");
    expect(JSON.parse(anthropicUp.requests.at(-1)?.raw ?? "")).toMatchObject({ top_k: 5 });
    expect(await cannotHonour()).toBe(before + 1);
  });
});
