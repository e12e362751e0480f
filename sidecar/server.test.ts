// What the whole sidecar promises at its edges: loopback only, body limits, health and
// metrics, and logs without prompts unless debugging.
import OpenAI from "openai";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OllamaServer } from "./testing/ollama-server.ts";
import { baseConfig, llmConfig, startTestSidecar, type TestSidecar } from "./testing/sidecar.ts";

let upstream: OllamaServer;
let sc: TestSidecar | undefined;

beforeEach(async () => {
  upstream = new OllamaServer();
  await upstream.listen();
});

afterEach(async () => {
  await sc?.close();
  sc = undefined;
  await upstream.close();
});

const PROMPT = "my very private prompt about project zebra";

async function withSidecar(debug = false): Promise<TestSidecar> {
  sc = await startTestSidecar(
    baseConfig({
      llm: llmConfig([{ name: "local", type: "ollama", endpoint: upstream.url, model: "llama3.2" }]),
    }),
    { debug },
  );
  return sc;
}

describe("sidecar edges", () => {
  it("serves the agent API on loopback only", async () => {
    const { sidecar } = await withSidecar();
    expect(new URL(sidecar.agentUrl).hostname).toBe("127.0.0.1");
  });

  it("refuses bodies over the limit before touching a provider", async () => {
    const { sidecar } = await withSidecar();
    const response = await fetch(`${sidecar.agentUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "m",
        messages: [{ role: "user", content: "x".repeat(9 * 1024 * 1024) }],
      }),
    });
    expect(response.status).toBe(413);
    expect(upstream.agentCalls).toHaveLength(0);
  });

  it("answers health checks and exports gen_ai metrics with tokens, durations and time to first chunk", async () => {
    const { sidecar } = await withSidecar();
    expect((await fetch(`${sidecar.metricsUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${sidecar.metricsUrl}/readyz`)).status).toBe(200);
    const openai = new OpenAI({ baseURL: `${sidecar.agentUrl}/v1`, apiKey: "x", maxRetries: 0 });
    for await (const _ of await openai.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "count" }],
      stream: true,
    })) {
      // Drain the stream.
    }
    const metrics = await (await fetch(`${sidecar.metricsUrl}/metrics`)).text();
    const labels = 'gen_ai_operation_name="chat",provider="local",gen_ai_request_model="llama3.2"';
    expect(metrics).toContain(`gen_ai_client_token_usage_sum{${labels},gen_ai_token_type="output"} 3`);
    expect(metrics).toContain(`gen_ai_client_operation_duration_seconds_count{${labels}} 1`);
    expect(metrics).toContain(`gen_ai_client_operation_time_to_first_chunk_seconds_count{${labels}} 1`);
    expect(metrics).toMatch(/agenttype_llm_requests_total\{api="openai",outcome="ok"\} 1/);
    expect(metrics).toMatch(/agenttype_llm_requests_in_flight 0/);
    expect(metrics).toMatch(/process_resident_memory_bytes \d+/);
  });

  it("keeps prompts and completions out of the logs, even of failed requests", async () => {
    const { sidecar, logs } = await withSidecar();
    upstream.enqueue({ status: 400, error: "bad" });
    const openai = new OpenAI({ baseURL: `${sidecar.agentUrl}/v1`, apiKey: "x", maxRetries: 0 });
    await openai.chat.completions
      .create({ model: "m", messages: [{ role: "user", content: PROMPT }] })
      .catch(() => undefined);
    await openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: PROMPT }] });
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.join("")).not.toContain("zebra");
  });

  it("logs request bodies when the debug flag is set", async () => {
    const { sidecar, logs } = await withSidecar(true);
    const openai = new OpenAI({ baseURL: `${sidecar.agentUrl}/v1`, apiKey: "x", maxRetries: 0 });
    await openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: PROMPT }] });
    expect(logs.join("")).toContain("zebra");
  });
});
