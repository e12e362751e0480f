// What the sidecar tells the kubelet (/readyz) and the operator (/status) about its providers,
// learnt from real calls: the stock openai and ollama clients talk to a real sidecar, which
// talks to local Ollama-protocol servers that refuse, hang, refuse the credentials or lack the
// model (docs/adr/0007).
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { type SidecarStatus, sidecarStatus } from "../api/sidecarstatus.ts";
import { OllamaServer } from "./testing/ollama-server.ts";
import { baseConfig, llmConfig, startTestSidecar, type TestSidecar } from "./testing/sidecar.ts";

const TOKEN = "status-Token-5a4b3c2d1e";
const once = { retries: { maxAttempts: 1, initialBackoffMs: 1, maxBackoffMs: 1 } };
const ask = { model: "any", messages: [{ role: "user" as const, content: "are you there" }] };

let servers: OllamaServer[] = [];
let sc: TestSidecar | undefined;

afterEach(async () => {
  await sc?.close();
  sc = undefined;
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function upstream(options: ConstructorParameters<typeof OllamaServer>[0] = {}, port = 0) {
  const server = new OllamaServer(options);
  servers.push(server);
  await server.listen(port);
  return server;
}

/** A port nothing listens on (it was free a moment ago): connecting to it is refused. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

async function start(providers: object[]) {
  sc = await startTestSidecar(baseConfig({ llm: llmConfig(providers, once) }));
  const url = sc.sidecar.agentUrl;
  return {
    openai: new OpenAI({ baseURL: `${url}/v1`, apiKey: "x", maxRetries: 0 }),
    ollama: new Ollama({ host: url }),
  };
}

async function status(): Promise<{ body: SidecarStatus; text: string }> {
  const response = await fetch(`${sc?.sidecar.metricsUrl}/status`);
  expect(response.status).toBe(200);
  const text = await response.text();
  return { body: sidecarStatus.parse(JSON.parse(text)), text };
}

const readyz = async () => (await fetch(`${sc?.sidecar.metricsUrl}/readyz`)).status;

describe("provider status from real calls", () => {
  it("is ready and unknown before any call: readiness waits for evidence", async () => {
    const up = await upstream();
    await start([{ name: "local", type: "ollama", endpoint: up.url, model: "llama3.2" }]);
    expect(await readyz()).toBe(200);
    const { body } = await status();
    expect(body).toMatchObject({
      agent: { name: "demo", namespace: "default" },
      ready: true,
      providers: [{ name: "local", type: "ollama", where: up.url, model: "llama3.2", state: "unknown" }],
    });
  });

  it("one provider refusing connections with a working fallback: still ready, the failing one named", async () => {
    const port = await closedPort();
    const secondary = await upstream();
    const { openai } = await start([
      { name: "primary", type: "ollama", endpoint: `http://127.0.0.1:${port}`, model: "llama3.2" },
      { name: "secondary", type: "ollama", endpoint: secondary.url, model: "llama3.2" },
    ]);
    const answer = await openai.chat.completions.create(ask);
    expect(answer.choices[0]?.message.content).toBe("You said: are you there");
    expect(await readyz()).toBe(200);
    const { body } = await status();
    expect(body.ready).toBe(true);
    expect(body.providers.map((p) => [p.name, p.state])).toEqual([
      ["primary", "unreachable"],
      ["secondary", "ok"],
    ]);
    expect(body.providers[0]?.lastError?.message).toContain("ECONNREFUSED");
  });

  it("every provider unreachable: /readyz fails; the upstream back and one call later it passes again", async () => {
    const port = await closedPort();
    const { openai } = await start([
      { name: "local", type: "ollama", endpoint: `http://127.0.0.1:${port}`, model: "llama3.2" },
    ]);
    const error = await openai.chat.completions.create(ask).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(await readyz()).toBe(503);
    const down = await status();
    expect(down.body.ready).toBe(false);
    expect(down.body.providers[0]).toMatchObject({ state: "unreachable", consecutiveFailures: 1 });
    expect(down.body.providers[0]?.lastError).toMatchObject({ errorClass: "connection" });

    await upstream({}, port);
    await openai.chat.completions.create(ask);
    expect(await readyz()).toBe(200);
    const back = await status();
    expect(back.body.providers[0]).toMatchObject({ state: "ok", consecutiveFailures: 0 });
    expect(back.body.providers[0]?.lastError?.errorClass).toBe("connection");
  });

  it("an upstream that hangs: timeout, within the provider's timeout", async () => {
    const up = await upstream();
    const { ollama } = await start([
      { name: "local", type: "ollama", endpoint: up.url, model: "llama3.2", timeoutSeconds: 1 },
    ]);
    up.enqueue({ hang: true });
    const started = Date.now();
    await expect(ollama.chat({ ...ask, stream: false })).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(4000);
    expect(await readyz()).toBe(503);
    const { body } = await status();
    expect(body.providers[0]).toMatchObject({ state: "timeout", lastError: { errorClass: "timeout" } });
    expect(body.providers[0]?.lastError?.message).toContain("no answer within 1s");
  });

  it("credentials refused: unauthorized, and the credential the upstream echoed is redacted", async () => {
    const up = await upstream();
    const dir = mkdtempSync(join(tmpdir(), "status-creds-"));
    writeFileSync(join(dir, "token"), TOKEN);
    const { openai } = await start([
      { name: "local", type: "ollama", endpoint: up.url, model: "llama3.2", credentialsDir: dir },
    ]);
    up.enqueue({ status: 401, error: "invalid token", echoAuthorization: true });
    await expect(openai.chat.completions.create(ask)).rejects.toBeInstanceOf(OpenAI.APIError);
    expect(await readyz()).toBe(503);
    const { body, text } = await status();
    expect(body.providers[0]).toMatchObject({ state: "unauthorized", lastError: { errorClass: "auth" } });
    expect(body.providers[0]?.lastError?.message).toContain("invalid token");
    expect(body.providers[0]?.lastError?.message).toContain("[redacted]");
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(Buffer.from(`Bearer ${TOKEN}`).toString("base64").slice(8, 24));
  });

  it("a model the upstream does not have: model-missing, with the upstream's words", async () => {
    const up = await upstream({ models: ["llama3.2:latest"] });
    const { ollama } = await start([{ name: "local", type: "ollama", endpoint: up.url, model: "qwen3:8b" }]);
    await expect(ollama.chat({ ...ask, stream: true })).rejects.toThrow();
    expect(await readyz()).toBe(503);
    const { body } = await status();
    expect(body.providers[0]).toMatchObject({ state: "model-missing", model: "qwen3:8b" });
    expect(body.providers[0]?.lastError?.message).toContain('model "qwen3:8b" not found');
  });
});
