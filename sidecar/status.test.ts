// What the sidecar tells the kubelet (/readyz) and the operator (/status) about its providers,
// learnt from real calls: the stock openai and ollama clients talk to a real sidecar, which
// talks to local Ollama-protocol servers that refuse, hang, refuse the credentials or lack the
// model (docs/adr/0007).
import { mkdtempSync, writeFileSync } from "node:fs";
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

/** Waits for /readyz to pass: a sidecar with ollama providers first finds (or pulls) their models. */
async function untilReady(): Promise<void> {
  await expect.poll(readyz, { timeout: 10_000 }).toBe(200);
}

describe("provider status from real calls", () => {
  it("is ready once the model is found, and unknown before any call: readiness waits for evidence", async () => {
    const up = await upstream();
    await start([{ name: "local", type: "ollama", endpoint: up.url, model: "llama3.2" }]);
    await untilReady();
    const { body } = await status();
    expect(body).toMatchObject({
      agent: { name: "demo", namespace: "default" },
      ready: true,
      providers: [
        {
          name: "local",
          type: "ollama",
          where: up.url,
          model: "llama3.2",
          state: "unknown",
          modelLifecycle: { phase: "ready", pull: "IfNotPresent", failures: 0 },
        },
      ],
    });
  });

  it("one provider refusing connections with a working fallback: still ready, the failing one named", async () => {
    const primary = await upstream();
    const secondary = await upstream();
    const { openai } = await start([
      { name: "primary", type: "ollama", endpoint: primary.url, model: "llama3.2" },
      { name: "secondary", type: "ollama", endpoint: secondary.url, model: "llama3.2" },
    ]);
    await untilReady();
    await primary.close();
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
    const first = await upstream();
    const port = Number(new URL(first.url).port);
    const { openai } = await start([
      { name: "local", type: "ollama", endpoint: first.url, model: "llama3.2" },
    ]);
    await untilReady();
    await first.close();
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

describe("the model lifecycle of ollama providers (pull)", () => {
  const metric = async (name: string) => {
    const text = await (await fetch(`${sc?.sidecar.metricsUrl}/metrics`)).text();
    return text.split("\n").find((l) => l.startsWith(`${name}{`));
  };

  it("pulls a missing model before it reports ready, its progress in /readyz, /status, the metrics and the log", async () => {
    const up = await upstream({ models: [], pullSteps: 4, pullStepDelayMs: 150 });
    const { openai } = await start([
      { name: "local", type: "ollama", endpoint: up.url, model: "qwen2.5:0.5b" },
    ]);
    await expect
      .poll(async () => (await fetch(`${sc?.sidecar.metricsUrl}/readyz`)).text(), { timeout: 10_000 })
      .toMatch(
        /^waiting for models: provider local, pulling: pulling qwen2\.5:0\.5b: pulling [0-9a-f]{12}: (25|50|75) % of 397\.8 MB$/,
      );
    expect(await readyz()).toBe(503);
    const pulling = await status();
    expect(pulling.body.ready).toBe(false);
    expect(pulling.body.providers[0]?.modelLifecycle).toMatchObject({
      phase: "pulling",
      pull: "IfNotPresent",
      totalBytes: 397_821_319,
    });
    expect(await metric("agenttype_llm_model_pull_total_bytes")).toBe(
      'agenttype_llm_model_pull_total_bytes{provider="local",gen_ai_request_model="qwen2.5:0.5b"} 397821319',
    );
    expect(await metric("agenttype_llm_model_ready")).toMatch(/ 0$/);

    await untilReady();
    const ready = await status();
    expect(ready.body.providers[0]?.modelLifecycle).toMatchObject({
      phase: "ready",
      message: expect.stringMatching(/^qwen2\.5:0\.5b pulled into http:\S+ in [0-9.]+ s \(397\.8 MB\)$/),
    });
    expect(await metric("agenttype_llm_model_ready")).toMatch(/ 1$/);
    expect(await metric("agenttype_llm_model_pull_completed_bytes")).toMatch(/ 397821319$/);
    const logged = (sc?.logs ?? []).map((l) => JSON.parse(l) as { msg: string; phase?: string });
    const messages = logged.filter((l) => l.phase !== undefined).map((l) => l.msg);
    expect(messages[0]).toBe(`looking for qwen2.5:0.5b in ${up.url}/api/tags`);
    expect(messages).toContain("pulling qwen2.5:0.5b: pulling manifest");
    expect(messages.filter((m) => / \d+ % of /.test(m)).length).toBe(5);
    expect(messages.at(-1)).toMatch(/^qwen2\.5:0\.5b pulled into/);
    const answer = await openai.chat.completions.create({ ...ask, model: "qwen2.5:0.5b" });
    expect(answer.choices[0]?.message.content).toBe("You said: are you there");
  });

  it("a model that cannot be pulled keeps the sidecar not ready, with the model and Ollama's error", async () => {
    const up = await upstream({ models: ["llama3.2:latest"] });
    await start([
      { name: "local", type: "ollama", endpoint: up.url, model: "no-such-model" },
      { name: "spare", type: "ollama", endpoint: up.url, model: "llama3.2" },
    ]);
    await expect.poll(async () => (await status()).body.providers[0]?.modelLifecycle?.phase).toBe("failed");
    const reason = await (await fetch(`${sc?.sidecar.metricsUrl}/readyz`)).text();
    expect(reason).toMatch(
      /^waiting for models: provider local, failed: cannot pull no-such-model into http:\S+: pull model manifest: file does not exist; looked for again at \d{4}-\d\d-\d\dT[\d:.]+Z$/,
    );
    const { body } = await status();
    expect(body.ready).toBe(false);
    expect(body.providers.map((p) => [p.name, p.modelLifecycle?.phase])).toEqual([
      ["local", "failed"],
      ["spare", "ready"],
    ]);
    expect(await metric("agenttype_llm_model_failures_total")).toMatch(
      /^agenttype_llm_model_failures_total\{provider="local",gen_ai_request_model="no-such-model"\} [1-9]/,
    );
    expect(sc?.logs.some((l) => l.includes('"level":40') && l.includes("file does not exist"))).toBe(true);
  });

  it("pull: Never fails on a missing model without pulling, and says how to fix it", async () => {
    const up = await upstream({ models: [] });
    await start([{ name: "local", type: "ollama", endpoint: up.url, model: "llama3.2", pull: "Never" }]);
    await expect.poll(async () => (await status()).body.providers[0]?.modelLifecycle?.phase).toBe("failed");
    expect((await status()).body.providers[0]?.modelLifecycle?.message).toMatch(
      /^llama3\.2 is not on http:\S+ and pull is Never: pull it there, or set pull to IfNotPresent$/,
    );
    expect(up.requests.map((r) => r.path)).not.toContain("/api/pull");
  });

  it("an Ollama server that cannot be reached does not hold readiness: an outage, looked for again", async () => {
    const later = await upstream();
    const port = Number(new URL(later.url).port);
    await later.close();
    await start([{ name: "local", type: "ollama", endpoint: `http://127.0.0.1:${port}`, model: "llama3.2" }]);
    await expect
      .poll(async () => (await status()).body.providers[0]?.modelLifecycle?.phase)
      .toBe("unreachable");
    expect(await readyz()).toBe(200);
    const { body } = await status();
    expect(body.providers[0]).toMatchObject({ state: "unknown" });
    expect(body.providers[0]?.modelLifecycle?.message).toMatch(
      /^cannot list the models of http:\S+: connect ECONNREFUSED \S+$/,
    );
    await upstream({}, port);
    await expect
      .poll(async () => (await status()).body.providers[0]?.modelLifecycle?.phase, { timeout: 10_000 })
      .toBe("ready");
  });

  it("a reload ends the pull under way and prepares the new config's model", async () => {
    const up = await upstream({ models: ["llama3.2:latest"] });
    up.enqueuePull({ hangAfterSteps: 1 });
    await start([{ name: "local", type: "ollama", endpoint: up.url, model: "qwen2.5:0.5b" }]);
    await expect.poll(async () => (await status()).body.providers[0]?.modelLifecycle?.phase).toBe("pulling");
    sc?.writeConfig(
      baseConfig({
        llm: llmConfig([{ name: "local", type: "ollama", endpoint: up.url, model: "llama3.2" }], once),
      }),
    );
    await untilReady();
    await expect.poll(() => up.abandoned).toBe(1);
    expect(up.models).not.toContain("qwen2.5:0.5b");
  });

  it("no credential in a pull's error reaches /readyz or /status", async () => {
    const dir = mkdtempSync(join(tmpdir(), "status-pull-creds-"));
    writeFileSync(join(dir, "token"), TOKEN);
    const up = await upstream({ models: [], token: TOKEN });
    up.enqueuePull({ error: `registry refused the token ${TOKEN}` });
    await start([
      {
        name: "local",
        type: "ollama",
        endpoint: up.url,
        model: "llama3.2",
        credentialsDir: dir,
        pull: "IfNotPresent",
      },
    ]);
    await expect.poll(async () => (await status()).body.providers[0]?.modelLifecycle?.phase).toBe("failed");
    const { text } = await status();
    const reason = await (await fetch(`${sc?.sidecar.metricsUrl}/readyz`)).text();
    expect(text).toContain("registry refused the token [redacted]");
    expect(reason).toContain("registry refused the token [redacted]");
    expect(`${text}${reason}${sc?.logs.join("")}`).not.toContain(TOKEN);
    // The next attempt pulls it.
    await untilReady();
  });
});
