// Fault cases of the routing issue, end to end: the stock openai and ollama clients talk to a
// real sidecar, which talks to local servers speaking Ollama's protocol.
import { Ollama } from "ollama";
import OpenAI, { type APIError } from "openai";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { eventually } from "../../tests/fixtures/eventually.ts";
import { OllamaServer } from "../testing/ollama-server.ts";
import { baseConfig, llmConfig, startTestSidecar, type TestSidecar } from "../testing/sidecar.ts";

let primary: OllamaServer;
let secondary: OllamaServer;
let sc: TestSidecar | undefined;
let primaryUrl: string;

beforeEach(async () => {
  primary = new OllamaServer();
  secondary = new OllamaServer();
  await Promise.all([primary.listen(), secondary.listen()]);
  primaryUrl = primary.url;
});

afterEach(async () => {
  await sc?.close();
  sc = undefined;
  await Promise.all([primary.close(), secondary.close()]);
});

function providers(primaryExtra: object = {}) {
  return [
    { name: "primary", type: "ollama", endpoint: primaryUrl, model: "llama3.2", ...primaryExtra },
    { name: "secondary", type: "ollama", endpoint: secondary.url, model: "llama3.2" },
  ];
}

async function start(llm: Record<string, unknown>): Promise<{ openai: OpenAI; ollama: Ollama; url: string }> {
  sc = await startTestSidecar(baseConfig({ llm }));
  const url = sc.sidecar.agentUrl;
  return {
    openai: new OpenAI({ baseURL: `${url}/v1`, apiKey: "x", maxRetries: 0 }),
    ollama: new Ollama({ host: url }),
    url,
  };
}

function chatRequests(server: OllamaServer) {
  return server.requests.filter((r) => r.path === "/api/chat");
}

async function metricsText(): Promise<string> {
  return (await fetch(`${sc?.sidecar.metricsUrl}/metrics`)).text();
}

const ask = { model: "gpt", messages: [{ role: "user" as const, content: "fallback please" }] };

describe("fallback and retries", () => {
  it("falls back when the primary keeps throttling, and the agent gets the secondary's answer", async () => {
    const { openai } = await start(llmConfig(providers()));
    primary.enqueue({ status: 429, error: "server busy" }, { status: 429, error: "server busy" });
    const completion = await openai.chat.completions.create(ask);
    expect(completion.choices[0]?.message.content).toBe("You said: fallback please");
    expect(chatRequests(primary)).toHaveLength(2);
    expect(chatRequests(secondary)).toHaveLength(1);
    const metrics = await metricsText();
    expect(metrics).toMatch(/agenttype_llm_retries_total\{provider="primary"\} 1/);
    expect(metrics).toMatch(/agenttype_llm_fallbacks_total\{provider="primary",reason="failed"\} 1/);
    expect(metrics).toMatch(/agenttype_llm_errors_total\{provider="primary",error_type="throttled"\} 2/);
  });

  it("retries a 5xx on the same provider before falling back", async () => {
    const { ollama } = await start(llmConfig(providers()));
    primary.enqueue({ status: 500, error: "llama runner process has terminated" });
    const answer = await ollama.chat({ ...ask, stream: false });
    expect(answer.message.content).toBe("You said: fallback please");
    expect(chatRequests(primary)).toHaveLength(2);
    expect(chatRequests(secondary)).toHaveLength(0);
  });

  it("falls back on an error object sent in place of the first chunk, without duplicating text", async () => {
    const { ollama } = await start(
      llmConfig(providers(), { retries: { maxAttempts: 1, initialBackoffMs: 1, maxBackoffMs: 1 } }),
    );
    primary.enqueue({ errorAfterChunks: 0 });
    let text = "";
    for await (const part of await ollama.chat({ ...ask, stream: true })) text += part.message.content;
    expect(text).toBe("You said: fallback please");
    expect(chatRequests(secondary)).toHaveLength(1);
  });

  it("falls back when the primary does not answer within its timeout", async () => {
    const { openai } = await start(
      llmConfig(providers({ timeoutSeconds: 1 }), {
        retries: { maxAttempts: 1, initialBackoffMs: 1, maxBackoffMs: 1 },
      }),
    );
    primary.enqueue({ hang: true });
    const started = Date.now();
    const completion = await openai.chat.completions.create(ask);
    expect(completion.choices[0]?.message.content).toBe("You said: fallback please");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(await metricsText()).toMatch(
      /agenttype_llm_errors_total\{provider="primary",error_type="timeout"\} 1/,
    );
  });

  it("falls back when the primary refuses connections", async () => {
    await primary.close();
    const { openai } = await start(llmConfig(providers()));
    const completion = await openai.chat.completions.create({ ...ask, stream: false });
    expect(completion.choices[0]?.message.content).toBe("You said: fallback please");
    expect(await metricsText()).toMatch(
      /agenttype_llm_errors_total\{provider="primary",error_type="connection"\} 2/,
    );
  });

  it("never falls back on a client error: the agent gets the 400", async () => {
    const { openai } = await start(llmConfig(providers()));
    primary.enqueue({ status: 400, error: "invalid option num_ctx" });
    const error = await openai.chat.completions.create(ask).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as Error).message).toContain("invalid option num_ctx");
    expect(chatRequests(primary)).toHaveLength(1);
    expect(chatRequests(secondary)).toHaveLength(0);
  });

  it("never falls back on an auth failure, and says which Secret to check", async () => {
    const { openai } = await start(llmConfig(providers()));
    primary.enqueue({ status: 401, error: "unauthorized" });
    const error = (await openai.chat.completions.create(ask).catch((e: unknown) => e)) as APIError;
    expect(error.status).toBe(502);
    expect(error.message).toContain('credentials Secret of provider "primary"');
    expect(chatRequests(secondary)).toHaveLength(0);
  });

  it("cools down a provider that keeps failing and skips it for the next requests", async () => {
    const { openai } = await start(
      llmConfig(providers(), {
        retries: { maxAttempts: 1, initialBackoffMs: 1, maxBackoffMs: 1 },
        cooldown: { failures: 1, seconds: 60 },
      }),
    );
    primary.enqueue({ status: 503, error: "overloaded" });
    await openai.chat.completions.create(ask);
    await openai.chat.completions.create(ask);
    expect(chatRequests(primary)).toHaveLength(1);
    expect(chatRequests(secondary)).toHaveLength(2);
    expect(await metricsText()).toMatch(
      /agenttype_llm_fallbacks_total\{provider="primary",reason="cooled_down"\} 1/,
    );
  });
});

describe("streams", () => {
  it("pass through chunk by chunk instead of being buffered whole", async () => {
    const { openai } = await start(llmConfig(providers()));
    primary.enqueue({ text: "a b c d e f", chunkDelayMs: 80 });
    const started = Date.now();
    const arrivals: number[] = [];
    for await (const chunk of await openai.chat.completions.create({ ...ask, stream: true })) {
      if (chunk.choices[0]?.delta.content) arrivals.push(Date.now() - started);
    }
    expect(arrivals).toHaveLength(6);
    const first = arrivals[0] ?? Number.NaN;
    const last = arrivals.at(-1) ?? Number.NaN;
    expect(last - first).toBeGreaterThanOrEqual(300);
  });

  it("ends with a clear error when the provider dies after the first byte, with no duplicated text (openai)", async () => {
    const { openai } = await start(llmConfig(providers()));
    primary.enqueue({ text: "one two three four", dieAfterChunks: 2 });
    let text = "";
    const error = await (async () => {
      for await (const chunk of await openai.chat.completions.create({ ...ask, stream: true })) {
        text += chunk.choices[0]?.delta.content ?? "";
      }
    })().catch((e: unknown) => e);
    expect(text).toBe("one two ");
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as Error).message).toMatch(/provider "primary" failed after the answer had started/);
    expect(chatRequests(primary)).toHaveLength(1);
    expect(chatRequests(secondary)).toHaveLength(0);
  });

  it("ends with Ollama's error object when the provider dies after the first byte (ollama)", async () => {
    const { ollama } = await start(llmConfig(providers()));
    primary.enqueue({ text: "one two three four", dieAfterChunks: 1 });
    let text = "";
    const error = await (async () => {
      for await (const part of await ollama.chat({ ...ask, stream: true })) text += part.message.content;
    })().catch((e: unknown) => e);
    expect(text).toBe("one ");
    expect((error as Error).message).toMatch(/failed after the answer had started.*not retried/);
    expect(chatRequests(secondary)).toHaveLength(0);
  });
});

describe("an agent that goes away", () => {
  it("makes the sidecar abandon the provider's stream too", async () => {
    const { url } = await start(llmConfig(providers()));
    primary.enqueue({ text: "a b c d e f g h i j", chunkDelayMs: 50 });
    const controller = new AbortController();
    const response = await fetch(`${url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...ask, stream: true }),
      signal: controller.signal,
    });
    const reader = response.body?.getReader();
    await reader?.read();
    controller.abort();
    await eventually(
      "the primary to see the request abandoned",
      async () => primary.abandoned === 1,
      10_000,
      20,
    );
    await eventually(
      "the cancelled request to be counted",
      async () =>
        /agenttype_llm_requests_total\{api="ollama",outcome="cancelled"\} 1/.test(await metricsText()),
      10_000,
      20,
    );
    expect(await metricsText()).toMatch(/agenttype_llm_requests_in_flight 0/);
    expect(chatRequests(secondary)).toHaveLength(0);
  });
});

describe("rate limits", () => {
  it("answers 429 with Retry-After when the agent's requests/min budget is used up", async () => {
    const { openai, url } = await start(llmConfig(providers(), { rateLimit: { requestsPerMinute: 2 } }));
    await openai.chat.completions.create(ask);
    await openai.chat.completions.create(ask);
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(ask),
    });
    expect(response.status).toBe(429);
    const retryAfter = Number(response.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(20);
    expect(retryAfter).toBeLessThanOrEqual(30);
    expect(((await response.json()) as { error: { message: string } }).error.message).toContain(
      "llm.rateLimit",
    );
    const ollamaError = await new Ollama({ host: url })
      .chat({ ...ask, stream: false })
      .catch((e: unknown) => e);
    expect((ollamaError as { status_code?: number }).status_code).toBe(429);
    expect(chatRequests(primary)).toHaveLength(2);
    expect(await metricsText()).toMatch(/agenttype_llm_rate_limited_total\{scope="agent"\} 2/);
  });

  it("corrects the tokens estimate after the call, so the budget counts real usage", async () => {
    const { openai } = await start(llmConfig(providers(), { rateLimit: { tokensPerMinute: 1000 } }));
    // Each request is estimated at 900+ tokens (its max_tokens) but uses about 10.
    for (let i = 0; i < 3; i++) {
      const completion = await openai.chat.completions.create({ ...ask, max_tokens: 900 });
      expect(completion.choices[0]?.message.content).toBe("You said: fallback please");
    }
  });

  it("gives a failed request's token estimate back to the budget", async () => {
    const { openai } = await start(
      llmConfig(providers(), {
        rateLimit: { tokensPerMinute: 1000 },
        retries: { maxAttempts: 1, initialBackoffMs: 1, maxBackoffMs: 1 },
      }),
    );
    primary.enqueue({ status: 503 });
    secondary.enqueue({ status: 503 });
    const failed = await openai.chat.completions.create({ ...ask, max_tokens: 900 }).catch((e: unknown) => e);
    expect((failed as APIError).status).toBe(503);
    const completion = await openai.chat.completions.create({ ...ask, max_tokens: 900 });
    expect(completion.choices[0]?.message.content).toBe("You said: fallback please");
  });

  it("refuses a request whose estimate exceeds what is left of the tokens/min budget", async () => {
    const { openai } = await start(llmConfig(providers(), { rateLimit: { tokensPerMinute: 1000 } }));
    const results = await Promise.allSettled([
      openai.chat.completions.create({ ...ask, max_tokens: 900 }),
      openai.chat.completions.create({ ...ask, max_tokens: 900 }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    const refused = results.find((r) => r.status === "rejected");
    expect(refused?.reason).toBeInstanceOf(OpenAI.RateLimitError);
  });

  it("moves to the next provider when a provider's own quota is used up", async () => {
    const { openai } = await start(llmConfig(providers({ rateLimit: { requestsPerMinute: 1 } })));
    await openai.chat.completions.create(ask);
    await openai.chat.completions.create(ask);
    expect(chatRequests(primary)).toHaveLength(1);
    expect(chatRequests(secondary)).toHaveLength(1);
    expect(await metricsText()).toMatch(
      /agenttype_llm_fallbacks_total\{provider="primary",reason="rate_limited"\} 1/,
    );
  });
});
