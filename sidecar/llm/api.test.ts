// The errors the sidecar makes itself come back in the shape of the API that was called, so
// the stock clients show the reason: OpenAI's {error: {message, type, param, code}} and
// Ollama's {error: "..."}.
import { Ollama } from "ollama";
import OpenAI, { APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OllamaServer } from "../testing/ollama-server.ts";
import { baseConfig, llmConfig, startTestSidecar, type TestSidecar } from "../testing/sidecar.ts";

let upstream: OllamaServer;
let sc: TestSidecar;
let bare: TestSidecar;
let url: string;

const HUGE = "x".repeat(9 * 1024 * 1024);

beforeAll(async () => {
  upstream = new OllamaServer();
  await upstream.listen();
  [sc, bare] = await Promise.all([
    startTestSidecar(
      baseConfig({
        llm: llmConfig([{ name: "local", type: "ollama", endpoint: upstream.url, model: "llama3.2" }]),
      }),
    ),
    startTestSidecar(baseConfig()),
  ]);
  url = sc.sidecar.agentUrl;
});

afterAll(async () => {
  await Promise.all([sc.close(), bare.close()]);
  await upstream.close();
});

function send(path: string, body: string, contentType = "application/json"): Promise<Response> {
  return fetch(`${url}${path}`, { method: "POST", headers: { "content-type": contentType }, body });
}

describe("errors of the OpenAI API", () => {
  it("tells the openai client that a body is too large, and by how much it may be", async () => {
    const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: "x", maxRetries: 0 });
    const error = await openai.chat.completions
      .create({ model: "m", messages: [{ role: "user", content: HUGE }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).status).toBe(413);
    expect((error as APIError).message).toBe(
      "413 the request body is larger than the sidecar's limit of 8388608 bytes (8 MiB)",
    );
    expect(upstream.agentCalls).toHaveLength(0);
  });

  it("answers a body that is not JSON, or not sent as JSON, in OpenAI's error object", async () => {
    const broken = await send("/v1/chat/completions", '{"model": "m", "messages": [');
    expect(broken.status).toBe(400);
    expect(await broken.json()).toEqual({
      error: {
        message: expect.stringMatching(/^the request body is not valid JSON: /),
        type: "invalid_request_error",
        param: null,
        code: "invalid_json",
      },
    });
    const text = await send("/v1/chat/completions", "<hello/>", "application/xml");
    expect(text.status).toBe(415);
    expect(await text.json()).toMatchObject({
      error: {
        message: 'the request body\'s content type "application/xml" is not application/json',
        code: "unsupported_media_type",
      },
    });
  });

  it("names the invalid field as param, and an unknown path in OpenAI's error object", async () => {
    const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: "x", maxRetries: 0 });
    const error = (await openai.chat.completions
      .create({ model: "m", messages: [{ role: "user", content: "x" }], temperature: "hot" as never })
      .catch((e: unknown) => e)) as APIError;
    expect(error.status).toBe(400);
    expect(error.param).toBe("temperature");
    const unknown = await send("/v1/no/such/thing", "{}");
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({
      error: {
        message: "the OpenAI API of the sidecar has no POST /v1/no/such/thing",
        type: "invalid_request_error",
        param: null,
        code: "unknown_url",
      },
    });
  });

  it("says that no LLM is configured, through the openai client", async () => {
    const openai = new OpenAI({ baseURL: `${bare.sidecar.agentUrl}/v1`, apiKey: "x", maxRetries: 0 });
    const error = (await openai.chat.completions
      .create({ model: "m", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e)) as APIError;
    expect(error.status).toBe(503);
    expect(error.message).toBe("503 this agent has no LLM configured (the AgentType has no spec.llm)");
  });
});

describe("errors of the Ollama API", () => {
  it("tells the ollama client that a body is too large", async () => {
    const ollama = new Ollama({ host: url });
    const error = await ollama
      .chat({ model: "m", messages: [{ role: "user", content: HUGE }] })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      status_code: 413,
      error: "the request body is larger than the sidecar's limit of 8388608 bytes (8 MiB)",
    });
  });

  it("answers a body that is not JSON, an invalid field and an unknown path in Ollama's error object", async () => {
    const broken = await send("/api/chat", '{"model": ', "application/x-www-form-urlencoded");
    expect(broken.status).toBe(400);
    expect(await broken.json()).toEqual({
      error: expect.stringMatching(/^the request body is not valid JSON: /),
    });
    const ollama = new Ollama({ host: url });
    const invalid = await ollama
      .chat({ model: "m", messages: [{ role: "wizard", content: "x" }], stream: false })
      .catch((e: unknown) => e);
    expect(invalid).toMatchObject({ status_code: 400, error: expect.stringContaining("messages[0].role") });
    const unknown = await fetch(`${url}/api/nothing`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: "the Ollama API of the sidecar has no GET /api/nothing" });
  });

  it("says that no LLM is configured, through the ollama client", async () => {
    const ollama = new Ollama({ host: bare.sidecar.agentUrl });
    const error = await ollama.generate({ model: "m", prompt: "x", stream: false }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      status_code: 503,
      error: "this agent has no LLM configured (the AgentType has no spec.llm)",
    });
  });
});
