import { execFile } from "node:child_process";
import { mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import OpenAI from "openai";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { eventually } from "../tests/fixtures/eventually.ts";
import { parseConfig } from "./config.ts";
import { Sidecar } from "./server.ts";
import { OllamaServer } from "./testing/ollama-server.ts";
import { baseConfig, llmConfig, startTestSidecar, type TestSidecar } from "./testing/sidecar.ts";

const run = promisify(execFile);
// These start processes, servers and pollers; a loaded machine (CI, a cluster build beside
// them) can take seconds to do so, which is not what they test.
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function upstream(models?: string[]): Promise<OllamaServer> {
  const server = new OllamaServer(models === undefined ? {} : { models });
  await server.listen();
  cleanups.push(() => server.close());
  return server;
}

async function sidecarWith(config: object): Promise<TestSidecar> {
  const sc = await startTestSidecar(config);
  cleanups.unshift(() => sc.close());
  return sc;
}

describe("parseConfig", () => {
  it("names every offending field the way Kubernetes users know them", () => {
    const result = parseConfig(
      JSON.stringify(
        baseConfig({
          llm: llmConfig([{ name: "b", type: "bedrock", model: "m" }]),
          memory: { type: "sometimes", maxBytes: 1 },
          surprise: true,
        }),
      ),
      "/etc/agenttype/sidecar.json",
    );
    expect(result.ok).toBe(false);
    const message = result.ok ? "" : result.message;
    expect(message).toContain("/etc/agenttype/sidecar.json");
    expect(message).toContain("llm.providers[0].region: a bedrock provider needs a region");
    expect(message).toContain("memory.type:");
    expect(message).toContain("surprise: unknown field");
  });

  it("fills the defaults the operator may leave out", () => {
    const result = parseConfig(JSON.stringify(baseConfig()), "x");
    expect(result.ok && result.config.listen).toEqual({
      port: 4000,
      metricsPort: 9090,
      metricsHost: "127.0.0.1",
    });
    expect(result.ok && result.config.tools).toEqual([]);
  });
});

describe("starting", { timeout: 30_000 }, () => {
  it("refuses to start on a bad config, exiting non-zero with the field named", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sidecar-bad-"));
    const path = join(dir, "sidecar.json");
    writeFileSync(
      path,
      JSON.stringify(baseConfig({ llm: llmConfig([{ name: "o", type: "ollama", model: "m" }]) })),
    );
    const failure = await run(process.execPath, ["sidecar/main.ts", "--config", path]).catch(
      (e: { code: number; stdout: string }) => e,
    );
    expect(failure).toMatchObject({ code: 1 });
    expect((failure as { stdout: string }).stdout).toContain(
      "llm.providers[0].endpoint: an ollama or openai provider needs an endpoint",
    );
  });

  it("refuses to start when a provider's credentials are missing, naming the field", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sidecar-creds-"));
    writeFileSync(join(dir, "AWS_ACCESS_KEY_ID"), "AKID");
    const configPath = join(dir, "sidecar.json");
    writeFileSync(
      configPath,
      JSON.stringify(
        baseConfig({
          llm: llmConfig([
            { name: "b", type: "bedrock", model: "m", region: "us-east-1", credentialsDir: dir },
          ]),
        }),
      ),
    );
    await expect(
      Sidecar.start({ configPath, logger: pino({ level: "silent" }), port: 0, metricsPort: 0 }),
    ).rejects.toThrow(/llm\.providers\[0\]\.credentialsDir: .* AWS_SECRET_ACCESS_KEY/);
  });
});

describe("reloading", { timeout: 30_000 }, () => {
  it("applies a changed config and keeps the last good one when the new one is invalid", async () => {
    const [a, b] = [await upstream(["model-a:latest"]), await upstream()];
    const sc = await sidecarWith(
      baseConfig({ llm: llmConfig([{ name: "a", type: "ollama", endpoint: a.url, model: "model-a" }]) }),
    );
    const openai = new OpenAI({ baseURL: `${sc.sidecar.agentUrl}/v1`, apiKey: "x", maxRetries: 0 });
    const ask = { model: "m", messages: [{ role: "user" as const, content: "hi" }] };
    expect((await openai.chat.completions.create(ask)).model).toBe("model-a");

    sc.writeConfig(
      baseConfig({ llm: llmConfig([{ name: "b", type: "ollama", endpoint: b.url, model: "llama3.2" }]) }),
    );
    await eventually(
      "the reloaded config",
      async () => sc.sidecar.config.llm?.providers[0]?.name === "b",
      10_000,
      20,
    );
    expect((await openai.chat.completions.create(ask)).model).toBe("llama3.2");

    sc.writeConfig(baseConfig({ llm: llmConfig([{ name: "c", type: "bedrock", model: "x" }]) }));
    await eventually(
      "the reload to be refused",
      async () => sc.logs.some((l) => l.includes("config reload refused")),
      10_000,
      20,
    );
    expect(sc.logs.join("")).toContain("llm.providers[0].region: a bedrock provider needs a region");
    expect((await openai.chat.completions.create(ask)).model).toBe("llama3.2");
    const metrics = await (await fetch(`${sc.sidecar.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/agenttype_config_reloads_total\{result="invalid"\} 1/);
  });

  it("lets a stream in flight finish on the config it started with", async () => {
    const [a, b] = [await upstream(), await upstream()];
    const sc = await sidecarWith(
      baseConfig({ llm: llmConfig([{ name: "a", type: "ollama", endpoint: a.url, model: "llama3.2" }]) }),
    );
    const openai = new OpenAI({ baseURL: `${sc.sidecar.agentUrl}/v1`, apiKey: "x", maxRetries: 0 });
    a.enqueue({ text: "slow words from the old config", chunkDelayMs: 60 });
    const stream = await openai.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "go" }],
      stream: true,
    });
    let text = "";
    let reloaded = false;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (!reloaded) {
        reloaded = true;
        sc.writeConfig(
          baseConfig({ llm: llmConfig([{ name: "b", type: "ollama", endpoint: b.url, model: "llama3.2" }]) }),
        );
        await eventually(
          "the reloaded config",
          async () => sc.sidecar.config.llm?.providers[0]?.name === "b",
          10_000,
          20,
        );
      }
    }
    expect(text).toBe("slow words from the old config");
    const after = await openai.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "new" }],
    });
    expect(after.choices[0]?.message.content).toBe("You said: new");
    expect(b.requests.filter((r) => r.path === "/api/chat")).toHaveLength(1);
    expect(a.requests.filter((r) => r.path === "/api/chat")).toHaveLength(1);
  });
});

describe("budgets across reloads", { timeout: 30_000 }, () => {
  it("keeps a used-up budget when a reload leaves its limit alone, and starts afresh when the limit changes", async () => {
    const up = await upstream();
    const config = (timeoutSeconds: number, requestsPerMinute: number) =>
      baseConfig({
        llm: llmConfig([{ name: "o", type: "ollama", endpoint: up.url, model: "llama3.2" }], {
          timeoutSeconds,
          rateLimit: { requestsPerMinute },
        }),
      });
    const sc = await sidecarWith(config(5, 2));
    const openai = new OpenAI({ baseURL: `${sc.sidecar.agentUrl}/v1`, apiKey: "x", maxRetries: 0 });
    const ask = () =>
      openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] });
    const status = (p: Promise<unknown>) =>
      p.then(
        () => 200,
        (e: { status?: number }) => e.status,
      );
    expect([await status(ask()), await status(ask()), await status(ask())]).toEqual([200, 200, 429]);

    sc.writeConfig(config(6, 2));
    await eventually(
      "the reloaded config",
      async () => sc.sidecar.config.llm?.timeoutSeconds === 6,
      10_000,
      20,
    );
    expect(await status(ask())).toBe(429);

    sc.writeConfig(config(6, 3));
    await eventually(
      "the reloaded config",
      async () => sc.sidecar.config.llm?.rateLimit?.requestsPerMinute === 3,
      10_000,
      20,
    );
    expect(await status(ask())).toBe(200);
  });
});

describe("credential rotation", { timeout: 30_000 }, () => {
  it("picks up a rotated provider token without a restart", async () => {
    const up = new OllamaServer();
    await up.listen();
    cleanups.push(() => up.close());
    const credentialsDir = mkdtempSync(join(tmpdir(), "rotate-"));
    writeFileSync(join(credentialsDir, "token"), "old-token");
    const sc = await sidecarWith(
      baseConfig({
        llm: llmConfig([{ name: "o", type: "ollama", endpoint: up.url, model: "llama3.2", credentialsDir }]),
      }),
    );
    const openai = new OpenAI({ baseURL: `${sc.sidecar.agentUrl}/v1`, apiKey: "x", maxRetries: 0 });
    const ask = { model: "m", messages: [{ role: "user" as const, content: "hi" }] };
    await openai.chat.completions.create(ask);
    // Kubernetes writes the new Secret beside the old and swaps it in with a rename.
    writeFileSync(join(credentialsDir, "token.new"), "new-token");
    renameSync(join(credentialsDir, "token.new"), join(credentialsDir, "token"));
    await eventually(
      "the config to be reloaded",
      async () => sc.logs.some((l) => l.includes("config reloaded")),
      10_000,
      20,
    );
    await openai.chat.completions.create(ask);
    expect(up.agentCalls.map((r) => r.headers.authorization)).toEqual([
      "Bearer old-token",
      "Bearer new-token",
    ]);
    // The model checks of the first config and of the reloaded one carry their token too.
    await eventually("the reloaded config's model check", async () => up.requests.length === 4, 10_000, 20);
    const checks = up.requests.filter((r) => r.path === "/api/tags").map((r) => r.headers.authorization);
    expect(checks).toEqual(["Bearer old-token", "Bearer new-token"]);
  });
});
