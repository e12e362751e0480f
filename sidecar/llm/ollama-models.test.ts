// The model lifecycle against the faithful Ollama server: /api/tags and /api/pull as Ollama
// speaks them, with its progress lines, error lines, stalls and a server that is not there.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OllamaServer } from "../testing/ollama-server.ts";
import {
  describeProgress,
  formatBytes,
  fullModelName,
  listsModel,
  type ModelLifecycle,
  type ModelPreparation,
  prepareModel,
  pullModel,
  worthLogging,
} from "./ollama-models.ts";

describe("model names, progress and log lines (pure)", () => {
  it("reads a model without a tag as :latest, as Ollama does", () => {
    expect(fullModelName("llama3.2")).toBe("llama3.2:latest");
    expect(fullModelName("qwen2.5:0.5b")).toBe("qwen2.5:0.5b");
    expect(listsModel(["llama3.2:latest"], "llama3.2")).toBe(true);
    expect(listsModel(["llama3.2:latest"], "llama3.2:1b")).toBe(false);
  });

  it("describes a progress line with the share done in Ollama's units", () => {
    expect(formatBytes(397_821_319)).toBe("397.8 MB");
    expect(formatBytes(512)).toBe("512 B");
    expect(describeProgress({ status: "pulling manifest" })).toBe("pulling manifest");
    expect(
      describeProgress({ status: "pulling dde5aa3fc5ff", total: 2_019_393_189, completed: 909_000_000 }),
    ).toBe("pulling dde5aa3fc5ff: 45 % of 2.0 GB");
  });

  it("logs a pull per step and per tenth of a layer, not per progress line", () => {
    const at = (message: string, completedBytes?: number): ModelLifecycle => ({
      phase: "pulling",
      pull: "IfNotPresent",
      message,
      ...(completedBytes === undefined ? {} : { completedBytes, totalBytes: 1000 }),
      since: "",
      failures: 0,
    });
    expect(worthLogging(undefined, at("pulling m"))).toBe(true);
    expect(
      worthLogging(
        at("pulling m: pulling abc: 10 % of 1 kB", 100),
        at("pulling m: pulling abc: 15 % of 1 kB", 150),
      ),
    ).toBe(false);
    expect(
      worthLogging(
        at("pulling m: pulling abc: 15 % of 1 kB", 150),
        at("pulling m: pulling abc: 20 % of 1 kB", 200),
      ),
    ).toBe(true);
    expect(
      worthLogging(
        at("pulling m: pulling abc: 100 % of 1 kB", 1000),
        at("pulling m: verifying sha256 digest"),
      ),
    ).toBe(true);
    expect(worthLogging(at("pulling m"), { ...at("m is there"), phase: "ready" })).toBe(true);
    expect(worthLogging(at("pulling m:1b"), at("pulling m:1b: pulling manifest"))).toBe(true);
    expect(
      worthLogging(
        at("pulling m:1b: pulling abc: 11 % of 1 kB", 110),
        at("pulling m:1b: pulling abc: 12 % of 1 kB", 120),
      ),
    ).toBe(false);
  });
});

describe("prepareModel against the faithful Ollama server", () => {
  let server: OllamaServer;
  let reports: ModelLifecycle[];

  beforeEach(async () => {
    server = new OllamaServer({ models: ["llama3.2:latest"], token: "s3cret" });
    await server.listen();
    reports = [];
  });

  afterEach(async () => {
    await server.close();
  });

  function preparation(overrides: Partial<ModelPreparation> = {}): ModelPreparation {
    return {
      provider: "local",
      server: overrides.server ?? { endpoint: server.url, headers: { authorization: "Bearer s3cret" } },
      model: "llama3.2",
      pull: "IfNotPresent",
      checkTimeoutMs: 2_000,
      pullIdleMs: 2_000,
      retry: { initialBackoffMs: 20, maxBackoffMs: 40 },
      report: (lifecycle) => reports.push(lifecycle),
      ...overrides,
    };
  }

  const paths = () => server.requests.map((r) => `${r.method} ${r.path}`);

  it("IfNotPresent: a model the server has is ready after one look at /api/tags, nothing pulled", async () => {
    await prepareModel(preparation(), AbortSignal.timeout(10_000));
    expect(paths()).toEqual(["GET /api/tags"]);
    expect(server.requests[0]?.headers.authorization).toBe("Bearer s3cret");
    expect(reports.map((r) => r.phase)).toEqual(["checking", "ready"]);
    expect(reports.at(-1)?.message).toBe(`llama3.2 is on ${server.url}`);
  });

  it("IfNotPresent: a missing model is pulled, its progress reported, and then listed", async () => {
    await prepareModel(preparation({ model: "qwen2.5:0.5b" }), AbortSignal.timeout(10_000));
    expect(paths()).toEqual(["GET /api/tags", "POST /api/pull"]);
    expect(server.requests[1]?.body).toEqual({ model: "qwen2.5:0.5b", stream: true });
    const pulling = reports.filter((r) => r.phase === "pulling");
    expect(pulling.map((r) => r.message)).toContain("pulling qwen2.5:0.5b: pulling manifest");
    expect(pulling.find((r) => r.completedBytes === 198_910_660)).toMatchObject({
      totalBytes: 397_821_319,
      message: expect.stringMatching(/^pulling qwen2\.5:0\.5b: pulling [0-9a-f]{12}: 50 % of 397\.8 MB$/),
    });
    expect(reports.at(-1)).toMatchObject({
      phase: "ready",
      message: expect.stringMatching(/^qwen2\.5:0\.5b pulled into .* in [0-9.]+ s \(397\.8 MB\)$/),
      failures: 0,
    });
    expect(server.models).toContain("qwen2.5:0.5b");
  });

  it("Always: a model the server has is pulled again", async () => {
    await prepareModel(preparation({ pull: "Always" }), AbortSignal.timeout(10_000));
    expect(paths()).toEqual(["GET /api/tags", "POST /api/pull"]);
    expect(reports.at(-1)?.phase).toBe("ready");
  });

  it("Never: a missing model fails with the reason and is looked for again until it is there", async () => {
    const preparing = prepareModel(
      preparation({ model: "all-minilm", pull: "Never" }),
      AbortSignal.timeout(10_000),
    );
    await expect.poll(() => reports.filter((r) => r.phase === "failed").length).toBeGreaterThanOrEqual(2);
    expect(reports.find((r) => r.phase === "failed")).toMatchObject({
      pull: "Never",
      failures: 1,
      retryAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      message: expect.stringMatching(
        /^all-minilm is not on http:\S+ and pull is Never: pull it there, or set pull to IfNotPresent$/,
      ),
    });
    expect(paths()).not.toContain("POST /api/pull");
    // Someone pulls it by hand: the next look finds it.
    await fetch(`${server.url}/api/pull`, {
      method: "POST",
      headers: { authorization: "Bearer s3cret" },
      body: JSON.stringify({ model: "all-minilm", stream: false }),
    });
    await preparing;
    expect(reports.at(-1)).toMatchObject({ phase: "ready", failures: 0 });
  });

  it("a model the registry lacks fails with Ollama's error line, and is tried again", async () => {
    const controller = new AbortController();
    const preparing = prepareModel(preparation({ model: "no-such-model" }), controller.signal);
    await expect.poll(() => reports.filter((r) => r.phase === "failed").length).toBeGreaterThanOrEqual(2);
    controller.abort();
    await preparing;
    expect(reports.find((r) => r.phase === "failed")?.message).toMatch(
      /^cannot pull no-such-model into http:\S+: pull model manifest: file does not exist$/,
    );
    expect(paths().filter((p) => p === "POST /api/pull").length).toBeGreaterThanOrEqual(2);
  });

  it("a pull that stops sending progress fails at the idle deadline", async () => {
    server.enqueuePull({ hangAfterSteps: 2 });
    const controller = new AbortController();
    const preparing = prepareModel(
      preparation({ model: "qwen2.5:0.5b", pullIdleMs: 300 }),
      controller.signal,
    );
    await expect.poll(() => reports.find((r) => r.phase === "failed")).toBeDefined();
    controller.abort();
    await preparing;
    expect(reports.find((r) => r.phase === "failed")?.message).toMatch(
      /^cannot pull qwen2\.5:0\.5b into http:\S+: the pull of qwen2\.5:0\.5b sent no progress for 0.3 s$/,
    );
  });

  it("a registry failure in the middle of a pull is reported in Ollama's words", async () => {
    server.enqueuePull({ error: "max retries exceeded: unexpected EOF" });
    const controller = new AbortController();
    const preparing = prepareModel(preparation({ model: "qwen2.5:0.5b" }), controller.signal);
    await preparing.then(() => undefined);
    expect(reports.find((r) => r.phase === "failed")?.message).toMatch(
      /^cannot pull qwen2\.5:0\.5b into http:\S+: max retries exceeded: unexpected EOF$/,
    );
    // The second attempt, without the fault, pulls it.
    expect(reports.at(-1)?.phase).toBe("ready");
  });

  it("a server that goes away in the middle of a pull is unreachable, not a refusal", async () => {
    server.enqueuePull({ hangAfterSteps: 1 });
    const controller = new AbortController();
    const preparing = prepareModel(
      preparation({ model: "qwen2.5:0.5b", pullIdleMs: 60_000 }),
      controller.signal,
    );
    await expect
      .poll(() => reports.some((r) => r.phase === "pulling" && r.totalBytes !== undefined))
      .toBe(true);
    await server.close();
    await expect.poll(() => reports.find((r) => r.phase === "unreachable")).toBeDefined();
    controller.abort();
    await preparing;
    expect(reports.find((r) => r.phase === "unreachable")?.message).toMatch(
      /^cannot pull qwen2\.5:0\.5b into http:\S+: /,
    );
  });

  it("cancellation ends a pull under way at once and closes its connection", async () => {
    server.enqueuePull({ hangAfterSteps: 1 });
    const controller = new AbortController();
    const preparing = prepareModel(
      preparation({ model: "qwen2.5:0.5b", pullIdleMs: 60_000 }),
      controller.signal,
    );
    await expect
      .poll(() => reports.some((r) => r.phase === "pulling" && r.totalBytes !== undefined))
      .toBe(true);
    const started = Date.now();
    controller.abort();
    await preparing;
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(reports.at(-1)?.phase).toBe("pulling");
    expect(server.models).not.toContain("qwen2.5:0.5b");
  });

  it("a server that is not there is unreachable, with the connection's error", async () => {
    const endpoint = server.url;
    await server.close();
    const controller = new AbortController();
    const preparing = prepareModel(preparation({ server: { endpoint, headers: {} } }), controller.signal);
    await expect
      .poll(() => reports.filter((r) => r.phase === "unreachable").length)
      .toBeGreaterThanOrEqual(2);
    controller.abort();
    await preparing;
    expect(reports.some((r) => r.phase === "failed")).toBe(false);
    expect(reports.find((r) => r.phase === "unreachable")?.message).toMatch(
      /^cannot list the models of http:\S+: connect ECONNREFUSED \S+$/,
    );
  });

  it("a wrong token fails the check with Ollama's 401", async () => {
    const controller = new AbortController();
    const preparing = prepareModel(
      preparation({ server: { endpoint: server.url, headers: { authorization: "Bearer wrong" } } }),
      controller.signal,
    );
    await expect.poll(() => reports.find((r) => r.phase === "failed")).toBeDefined();
    controller.abort();
    await preparing;
    expect(reports.find((r) => r.phase === "failed")?.message).toMatch(
      /^cannot list the models of http:\S+: GET \/api\/tags answered 401: unauthorized$/,
    );
  });

  it("pullModel yields Ollama's lines and refuses an invalid name with its 400", async () => {
    const target = { endpoint: server.url, headers: { authorization: "Bearer s3cret" } };
    const lines = [];
    for await (const line of pullModel(target, "all-minilm", 2_000, AbortSignal.timeout(5_000)))
      lines.push(line);
    expect(lines.at(-1)).toEqual({ status: "success" });
    const pulling = async () => {
      for await (const _ of pullModel(target, "not a name", 2_000, AbortSignal.timeout(5_000))) {
        // no line comes
      }
    };
    await expect(pulling()).rejects.toThrow("POST /api/pull answered 400: invalid model name");
  });
});
