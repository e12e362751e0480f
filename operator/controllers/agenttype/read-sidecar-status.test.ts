// The operator's read of a sidecar's /status over real HTTP: against a real sidecar whose only
// provider refuses connections, and against servers that hang or answer nonsense; then the
// bounds of ADR 0007 (one pod per AgentType, one read per interval, a process-wide budget),
// counted as requests arriving at a real server.
import http from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import type { SidecarStatus } from "../../../api/sidecarstatus.ts";
import { OllamaServer } from "../../../sidecar/testing/ollama-server.ts";
import {
  baseConfig,
  llmConfig,
  startTestSidecar,
  type TestSidecar,
} from "../../../sidecar/testing/sidecar.ts";
import { trimPod } from "./pods-status.ts";
import { modelsVerdict, READ_INTERVAL_MS } from "./providers-status.ts";
import { ProvidersReader, readSidecarStatus, statusUrl } from "./read-sidecar-status.ts";

const never = new AbortController().signal;
let servers: http.Server[] = [];
let sc: TestSidecar | undefined;

afterEach(async () => {
  await sc?.close();
  sc = undefined;
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  servers = [];
});

/** A local server answering every request with `answer`; counts the requests. */
async function server(answer: (res: http.ServerResponse) => void) {
  const hits = { count: 0 };
  const s = http.createServer((req, res) => {
    hits.count++;
    req.resume();
    answer(res);
  });
  servers.push(s);
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  return { port: (s.address() as AddressInfo).port, hits };
}

const okStatus: SidecarStatus = {
  agent: { name: "a", namespace: "ns" },
  ready: false,
  providers: [
    {
      name: "local",
      type: "ollama",
      where: "http://x",
      model: "m",
      state: "timeout",
      consecutiveFailures: 2,
    },
  ],
};

function troubledPod(name: string, ip = "127.0.0.1") {
  return trimPod({
    metadata: { name, namespace: "ns" },
    status: {
      phase: "Running",
      podIP: ip,
      initContainerStatuses: [
        { name: "agenttype-sidecar", ready: false, restartCount: 0, state: { running: { startedAt: "t" } } },
      ],
    },
  } as Parameters<typeof trimPod>[0]);
}

describe("statusUrl", () => {
  it("brackets an IPv6 pod address", () => {
    expect(statusUrl("10.0.0.1", 9090)).toBe("http://10.0.0.1:9090/status");
    expect(statusUrl("fd00::1", 9090)).toBe("http://[fd00::1]:9090/status");
  });
});

describe("readSidecarStatus", () => {
  it("reads a real sidecar whose only provider refuses connections", async () => {
    const closed = await server(() => undefined);
    const port = closed.port;
    await new Promise((resolve) => servers.pop()?.close(resolve));
    sc = await startTestSidecar(
      baseConfig({
        llm: llmConfig([{ name: "local", type: "ollama", endpoint: `http://127.0.0.1:${port}`, model: "m" }]),
      }),
    );
    const openai = new OpenAI({ baseURL: `${sc.sidecar.agentUrl}/v1`, apiKey: "x", maxRetries: 0 });
    await openai.chat.completions
      .create({ model: "m", messages: [{ role: "user", content: "hi" }] })
      .catch(() => 0);
    const status = await readSidecarStatus(`${sc.sidecar.metricsUrl}/status`, never);
    expect(status.ready).toBe(false);
    expect(status.providers[0]).toMatchObject({ name: "local", state: "unreachable" });
    expect(status.providers[0]?.lastError?.message).toContain("ECONNREFUSED");
  });

  it("reads a real sidecar whose model cannot be pulled into ModelsReady=False, naming model and error", async () => {
    const ollama = new OllamaServer({ models: [] });
    await ollama.listen();
    try {
      sc = await startTestSidecar(
        baseConfig({
          llm: llmConfig([{ name: "local", type: "ollama", endpoint: ollama.url, model: "no-such-model" }]),
        }),
      );
      const url = `${sc.sidecar.metricsUrl}/status`;
      await expect
        .poll(async () => (await readSidecarStatus(url, never)).providers[0]?.modelLifecycle?.phase)
        .toBe("failed");
      const status = await readSidecarStatus(url, never);
      expect(status.ready).toBe(false);
      const verdict = modelsVerdict({ sidecarsReady: false, read: { pod: "a-1", at: 0, status } });
      expect(verdict).toMatchObject({ status: "False", reason: "ModelPullFailed" });
      expect(verdict.message).toMatch(
        /^pod a-1: provider local \(ollama http:\S+\), model no-such-model: cannot pull no-such-model into http:\S+: pull model manifest: file does not exist$/,
      );
    } finally {
      await ollama.close();
    }
  });

  it("gives up on a sidecar that does not answer within the deadline", async () => {
    const { port } = await server(() => undefined);
    const started = Date.now();
    await expect(readSidecarStatus(statusUrl("127.0.0.1", port), never, 300)).rejects.toThrow(
      `http://127.0.0.1:${port}/status: no answer within 300 ms`,
    );
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("says what is wrong with an answer that is not a status", async () => {
    const html = await server((res) => res.writeHead(200).end("<html>"));
    await expect(readSidecarStatus(statusUrl("127.0.0.1", html.port), never)).rejects.toThrow("not JSON");
    const shape = await server((res) => res.writeHead(200).end(JSON.stringify({ ready: "yes" })));
    await expect(readSidecarStatus(statusUrl("127.0.0.1", shape.port), never)).rejects.toThrow(
      /does not understand: .*ready/,
    );
    const failed = await server((res) => res.writeHead(500).end("{}"));
    await expect(readSidecarStatus(statusUrl("127.0.0.1", failed.port), never)).rejects.toThrow(
      "answered HTTP 500",
    );
  });

  it("stops when the caller cancels, with the caller's reason", async () => {
    const { port } = await server(() => undefined);
    const stop = new AbortController();
    const reading = readSidecarStatus(statusUrl("127.0.0.1", port), stop.signal);
    stop.abort(new Error("shutting down"));
    await expect(reading).rejects.toThrow("shutting down");
  });
});

describe("ProvidersReader bounds", () => {
  it("reads one pod per AgentType, once per interval, and none while sidecars are ready", async () => {
    const { port, hits } = await server((res) => res.writeHead(200).end(JSON.stringify(okStatus)));
    let now = 1_000_000;
    const reader = new ProvidersReader({ now: () => now });
    const pods = [troubledPod("a-2"), troubledPod("a-1"), troubledPod("a-0")];
    const first = await reader.observe("ns/a", pods, port, never);
    expect(first).toMatchObject({ sidecarsReady: false, read: { pod: "a-0", status: okStatus } });
    now += READ_INTERVAL_MS - 1;
    expect(await reader.observe("ns/a", pods, port, never)).toEqual(first);
    expect(hits.count).toBe(1);
    now += 1;
    await reader.observe("ns/a", pods, port, never);
    expect(hits.count).toBe(2);
    expect(await reader.observe("ns/a", [], port, never)).toEqual({ sidecarsReady: true });
    expect(reader.remembered).toBe(0);
    expect(hits.count).toBe(2);
  });

  it("defers reads past the process-wide budget, showing the last read meanwhile", async () => {
    const { port, hits } = await server((res) => res.writeHead(200).end(JSON.stringify(okStatus)));
    let now = 0;
    const reader = new ProvidersReader({ now: () => now, perSecond: 1 / 60, burst: 1 });
    expect(await reader.observe("ns/a", [troubledPod("a-0")], port, never)).toMatchObject({
      sidecarsReady: false,
    });
    expect(await reader.observe("ns/b", [troubledPod("b-0")], port, never)).toBeUndefined();
    expect(hits.count).toBe(1);
    now += READ_INTERVAL_MS;
    const stale = await reader.observe("ns/a", [troubledPod("a-0")], port, never);
    expect(stale).toMatchObject({ sidecarsReady: false, read: { at: 0 } });
    expect(hits.count).toBe(1);
  });

  it("reports a sidecar it cannot reach as unreadable, and remembers that too", async () => {
    const closed = await server(() => undefined);
    const port = closed.port;
    await new Promise((resolve) => servers.pop()?.close(resolve));
    const reader = new ProvidersReader();
    const observed = await reader.observe("ns/a", [troubledPod("a-0")], port, never);
    expect(observed).toMatchObject({ sidecarsReady: false, read: { pod: "a-0" } });
    expect(
      observed !== undefined && !observed.sidecarsReady && "error" in observed.read && observed.read.error,
    ).toMatch(/ECONNREFUSED/);
    expect(reader.remembered).toBe(1);
  });
});
