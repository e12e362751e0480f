// The client's deadlines against a real HTTP server on loopback that behaves as a hung API
// server does: it accepts the connection and never answers, or answers a watch and then
// stays silent. No mock of fetch: the sockets, timers and aborts are the real ones.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { KubeApiError, KubeClient, type ResourceType } from "./client.ts";

const configMaps: ResourceType = {
  group: "",
  version: "v1",
  plural: "configmaps",
  kind: "ConfigMap",
  namespaced: true,
};

let server: Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** Serves `handler` on 127.0.0.1; returns its URL and the requests it received (method path). */
async function serve(handler: (request: IncomingMessage, response: ServerResponse) => void) {
  const received: string[] = [];
  server = createServer((request, response) => {
    received.push(`${request.method} ${request.url}`);
    handler(request, response);
  });
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, received };
}

const hang = () => {};

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the request to fail");
}

describe("KubeClient deadlines", () => {
  it("ends a request the server never answers with a retryable Timeout naming the request", async () => {
    const { url } = await serve(hang);
    const client = new KubeClient({ server: url }, { requestTimeoutMs: 200 });
    const started = performance.now();
    const error = await failure(client.get(configMaps, "ns", "cm"));
    const took = performance.now() - started;
    expect(error).toBeInstanceOf(KubeApiError);
    expect(error).toMatchObject({ status: 0, reason: "Timeout", retryable: true });
    expect((error as Error).message).toBe("GET /api/v1/namespaces/ns/configmaps/cm: no answer within 200 ms");
    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(2_000);
  });

  it("bounds the whole answer, not only its start", async () => {
    const { url } = await serve((_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.write('{"metadata":');
    });
    const client = new KubeClient({ server: url }, { requestTimeoutMs: 200 });
    expect(await failure(client.list(configMaps, "ns"))).toMatchObject({ reason: "Timeout" });
  });

  it("rethrows the caller's cancellation as it is, and classifies the caller's own timeout", async () => {
    const { url } = await serve(hang);
    const client = new KubeClient({ server: url }, { requestTimeoutMs: 10_000 });
    const caller = new AbortController();
    const stopping = new DOMException("the controller is stopping", "AbortError");
    setTimeout(() => caller.abort(stopping), 50);
    expect(await failure(client.get(configMaps, "ns", "cm", caller.signal))).toBe(stopping);
    const timedOut = await failure(client.get(configMaps, "ns", "cm", AbortSignal.timeout(50)));
    expect(timedOut).toMatchObject({ reason: "Timeout", retryable: true });
  });

  it("reports a refused connection as ConnectionFailed", async () => {
    const { url } = await serve(hang);
    server?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const client = new KubeClient({ server: url }, { requestTimeoutMs: 2_000 });
    const error = await failure(client.get(configMaps, "ns", "cm"));
    expect(error).toMatchObject({ status: 0, reason: "ConnectionFailed" });
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
  });

  it("sends no write once the write window is closed, and ends a write with the window", async () => {
    const { url, received } = await serve(hang);
    let windowMs = 0;
    const client = new KubeClient({ server: url }, { requestTimeoutMs: 10_000 }).withWriteWindow(
      () => windowMs,
    );
    const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cm", namespace: "ns" } };
    expect(await failure(client.apply(configMaps, cm, "test"))).toMatchObject({
      status: 0,
      reason: "WriteWindowClosed",
    });
    expect(await failure(client.delete(configMaps, "ns", "cm"))).toMatchObject({
      reason: "WriteWindowClosed",
    });
    expect(received).toEqual([]);
    // Reads are not writes: they go out whatever the window.
    await failure(client.get(configMaps, "ns", "cm", AbortSignal.timeout(50)));
    expect(received).toEqual(["GET /api/v1/namespaces/ns/configmaps/cm"]);
    // With 150 ms left, a write that hangs ends then, long before the request deadline.
    windowMs = 150;
    const started = performance.now();
    expect(await failure(client.create(configMaps, "ns", cm))).toMatchObject({ reason: "Timeout" });
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it("leaves a watch stream alone once it has started, however long it stays open", async () => {
    const { url } = await serve((_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.flushHeaders();
      const event = (rv: string) =>
        `${JSON.stringify({ type: "BOOKMARK", object: { metadata: { resourceVersion: rv } } })}\n`;
      setTimeout(() => response.write(event("1")), 150);
      setTimeout(() => response.end(event("2")), 450);
    });
    const client = new KubeClient({ server: url }, { requestTimeoutMs: 100 });
    const seen: string[] = [];
    for await (const event of client.watch(configMaps, "ns", {}, new AbortController().signal)) {
      if (event.type === "BOOKMARK") seen.push(event.object.metadata.resourceVersion);
    }
    expect(seen).toEqual(["1", "2"]);
  });

  it("bounds the wait for a watch's answer by the request deadline", async () => {
    const { url } = await serve(hang);
    const client = new KubeClient({ server: url }, { requestTimeoutMs: 100 });
    const watch = client.watch(configMaps, "ns", {}, new AbortController().signal);
    expect(await failure(watch.next())).toMatchObject({ reason: "Timeout" });
  });
});
