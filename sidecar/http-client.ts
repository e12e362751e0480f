// Outgoing HTTP for providers and tools: node:http with keep-alive pools, because the proxy's
// added latency budget is well under a millisecond and fetch costs more per request.
import http, { type IncomingMessage } from "node:http";
import https from "node:https";

const agents = {
  "http:": new http.Agent({ keepAlive: true, maxSockets: 256 }),
  "https:": new https.Agent({ keepAlive: true, maxSockets: 256 }),
};

/**
 * How long a new connection may take to open, apart from the request's own timeout: a dead or
 * black-holed upstream costs this, not a whole request timeout per attempt.
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 3_000;

export interface OutgoingRequest {
  method: "GET" | "POST";
  headers?: Record<string, string>;
  body?: string;
  signal: AbortSignal;
  connectTimeoutMs?: number;
}

/** Where a request goes, parsed once rather than per request. */
export interface Target {
  https: boolean;
  hostname: string;
  port: number;
  path: string;
}

export function target(url: string): Target {
  const parsed = new URL(url);
  const https = parsed.protocol === "https:";
  return {
    https,
    // URL keeps the brackets of an IPv6 literal; the socket API wants the bare address.
    hostname: parsed.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: parsed.port === "" ? (https ? 443 : 80) : Number(parsed.port),
    path: `${parsed.pathname}${parsed.search}`,
  };
}

/** Sends a request and resolves with the response once its headers arrived. */
export function send(to: Target, request: OutgoingRequest): Promise<IncomingMessage> {
  const transport = to.https ? https : http;
  const agent = to.https ? agents["https:"] : agents["http:"];
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...request.headers };
    if (request.body !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = Buffer.byteLength(request.body);
    }
    const options = {
      hostname: to.hostname,
      port: to.port,
      path: to.path,
      method: request.method,
      headers,
      agent,
    };
    const req = transport.request(options, (res) => {
      // Readers see the response's errors through iteration; this keeps an abort that lands
      // after the reader stopped from surfacing as an uncaught exception.
      res.on("error", () => undefined);
      resolve(res);
    });
    req.on("error", reject);
    // Cancelled by one abort listener that destroys the request, response and all, rather than
    // through http.request's `signal` option, which also watches each request's end of stream:
    // measured, that option alone cost about a tenth of a bare proxy's CPU per request.
    const { signal } = request;
    const onAbort = () => req.destroy(abortError(signal.reason));
    if (signal.aborted) onAbort();
    else {
      signal.addEventListener("abort", onAbort, { once: true });
      req.once("close", () => signal.removeEventListener("abort", onAbort));
    }
    req.on("socket", (socket) => {
      // A reused keep-alive socket is connected already; only a new one can hang in connect.
      if (!socket.connecting) return;
      const limit = request.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
      const timer = setTimeout(() => {
        const error = Object.assign(
          new Error(`could not connect to ${to.hostname}:${to.port} within ${limit / 1000} s`),
          { code: "ETIMEDOUT" },
        );
        req.destroy(error);
      }, limit);
      timer.unref();
      socket.once("connect", () => clearTimeout(timer));
      socket.once("close", () => clearTimeout(timer));
    });
    req.end(request.body);
  });
}

/** The error an aborted request fails with, as node:http's own `signal` option makes it. */
function abortError(reason: unknown): Error {
  return Object.assign(new Error("The operation was aborted", { cause: reason }), {
    name: "AbortError",
    code: "ABORT_ERR",
  });
}

/**
 * The whole body as text; rejects past `limit` bytes so a runaway server cannot fill memory.
 * Events rather than async iteration: this runs once per proxied request, and the stream
 * iterator costs measurably more.
 */
export function readText(response: IncomingMessage, limit = 64 * 1024 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) response.destroy(new Error(`response larger than ${limit} bytes`));
      else chunks.push(chunk);
    });
    response.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    response.on("error", reject);
    response.on("close", () => {
      if (!response.complete) reject(new Error("the connection closed before the response was complete"));
    });
  });
}

/** Non-empty lines of a newline-delimited body, as they arrive. */
export async function* lines(response: IncomingMessage): AsyncGenerator<string> {
  response.setEncoding("utf8");
  let pending = "";
  for await (const chunk of response as AsyncIterable<string>) {
    pending += chunk;
    let newline = pending.indexOf("\n");
    while (newline >= 0) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line !== "") yield line;
      newline = pending.indexOf("\n");
    }
  }
  if (pending.trim() !== "") yield pending.trim();
}
