// The client's answers to the API server's errors, through its public methods against a
// loopback HTTP server that answers as the API server does (a Status object, or plain text
// from a proxy in between).
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isGone, isNotFound, KubeApiError, KubeClient } from "./client.ts";
import { resources } from "./resources.ts";

interface Answer {
  status: number;
  body: string;
  type?: string;
}

let server: Server;
let client: KubeClient;
/** What the server answers next, and what it was asked. */
let answer: Answer = { status: 200, body: "{}" };
let asked: { method?: string; url?: string; headers: IncomingMessage["headers"]; body: string }[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      asked.push({ method: request.method, url: request.url, headers: request.headers, body });
      response.writeHead(answer.status, { "content-type": answer.type ?? "application/json" });
      response.end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  client = new KubeClient({ server: `http://127.0.0.1:${port}`, token: () => "t0ken" });
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const status = (code: number, reason: string, message: string): Answer => ({
  status: code,
  body: JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", code, reason, message }),
});

async function failure(call: () => Promise<unknown>): Promise<KubeApiError> {
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KubeApiError);
  return error as KubeApiError;
}

const getAgent = () => client.get(resources.agentType, "ns", "a");

describe("KubeClient error answers", () => {
  const cases: [number, string, boolean][] = [
    [400, "BadRequest", false],
    [401, "Unauthorized", false],
    [403, "Forbidden", false],
    [404, "NotFound", false],
    [409, "Conflict", true],
    [410, "Expired", false],
    [422, "Invalid", false],
    [429, "TooManyRequests", true],
    [500, "InternalError", true],
    [503, "ServiceUnavailable", true],
    [504, "Timeout", true],
  ];
  for (const [code, reason, retryable] of cases) {
    it(`${code} ${reason}: KubeApiError with the Status's reason and message, retryable ${retryable}`, async () => {
      answer = status(code, reason, `agenttypes.agenttype.dev "a" says ${reason}`);
      const error = await failure(getAgent);
      expect(error.status).toBe(code);
      expect(error.reason).toBe(reason);
      expect(error.message).toBe(`agenttypes.agenttype.dev "a" says ${reason}`);
      expect(error.retryable).toBe(retryable);
      expect(isNotFound(error)).toBe(code === 404);
      expect(isGone(error)).toBe(code === 410);
    });
  }

  it("a body that is not a Status: the HTTP code stands for the reason, the text for the message", async () => {
    answer = { status: 502, body: "upstream connect error", type: "text/plain" };
    const error = await failure(getAgent);
    expect([error.status, error.reason, error.message, error.retryable]).toEqual([
      502,
      "502",
      "upstream connect error",
      true,
    ]);
  });

  it("a Status without a reason: the HTTP code stands for it", async () => {
    answer = { status: 500, body: JSON.stringify({ kind: "Status", message: "etcdserver: leader changed" }) };
    const error = await failure(getAgent);
    expect([error.reason, error.message]).toEqual(["500", "etcdserver: leader changed"]);
  });

  it("every verb maps errors the same way", async () => {
    answer = status(422, "Invalid", "spec.replicas: Invalid value");
    const object = { metadata: { name: "a", namespace: "ns" } };
    for (const call of [
      () => client.list(resources.agentType, "ns"),
      () => client.create(resources.agentType, "ns", object),
      () => client.replace(resources.agentType, object),
      () => client.apply(resources.agentType, object, "test"),
      () => client.delete(resources.agentType, "ns", "a"),
    ]) {
      const error = await failure(call);
      expect([error.status, error.reason]).toEqual([422, "Invalid"]);
    }
  });

  it("no server listening: status 0, ConnectionFailed, retryable, naming the request", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const offline = new KubeClient({ server: `http://127.0.0.1:${port}` });
    const error = await failure(() => offline.get(resources.deployment, "ns", "d"));
    expect([error.status, error.reason, error.retryable]).toEqual([0, "ConnectionFailed", true]);
    expect(error.message).toMatch(/^GET \/apis\/apps\/v1\/namespaces\/ns\/deployments\/d: /);
  });
});

describe("KubeClient requests", () => {
  it("send the bearer token, and server-side apply as the field manager, forced", async () => {
    asked = [];
    answer = { status: 200, body: JSON.stringify({ metadata: { name: "a" } }) };
    await client.apply(resources.agentType, { metadata: { name: "a", namespace: "ns" } }, "me", "status");
    expect(asked).toHaveLength(1);
    const [request] = asked;
    expect(request?.method).toBe("PATCH");
    expect(request?.url).toBe(
      "/apis/agenttype.dev/v1alpha1/namespaces/ns/agenttypes/a/status?fieldManager=me&force=true",
    );
    expect(request?.headers.authorization).toBe("Bearer t0ken");
    expect(request?.headers["content-type"]).toBe("application/apply-patch+yaml");
    expect(JSON.parse(request?.body ?? "")).toEqual({ metadata: { name: "a", namespace: "ns" } });
  });
});
