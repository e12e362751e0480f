// AgentType's Node preload, loaded into the agent by `NODE_OPTIONS=--require
// /opt/agenttype/node/register.cjs` (built from this file by wrapper/build.ts: types stripped,
// nothing bundled). It waits, bounded, for the sidecar, changes nothing else in the agent, and
// exports a small tools/memory client for agents that want one:
//   const agenttype = require("/opt/agenttype/node/register.cjs");
// Written for any Node >= 16 that an agent image may carry: CommonJS, builtins only, and every
// step guarded, so a preload problem never stops the agent.
type Http = typeof import("node:http");
type WorkerThreads = typeof import("node:worker_threads");

const http: Http = require("node:http");

const DEFAULT_WAIT_MS = 30_000;
const READY_ENV = "AGENTTYPE_SIDECAR_READY";

/** Where the sidecar's agent API is: the origin of the contract's URLs, set by the operator. */
function sidecarOrigin(): string {
  const candidates = [process.env.AGENTTYPE_TOOLS_URL, process.env.AGENTTYPE_MEMORY_URL];
  for (const value of candidates) {
    if (value) {
      try {
        return new URL(value).origin;
      } catch {
        // not a URL: try the next one
      }
    }
  }
  return "http://127.0.0.1:4000";
}

function log(level: "warn" | "info", message: string): void {
  const wanted = process.env.AGENTTYPE_WRAPPER_LOG || "warn";
  if (wanted === "off" || (level === "info" && wanted !== "info")) return;
  try {
    require("node:fs").writeSync(2, `agenttype: ${message}\n`);
  } catch {
    // stderr closed: nothing to tell
  }
}

// The worker polls the sidecar's cheapest route until it answers 200, then wakes the main
// thread, which blocks in Atomics.wait: a preload must finish before the agent's code runs.
const POLL = `
const http = require("node:http");
const { workerData } = require("node:worker_threads");
const { url, deadline, flag } = workerData;
const done = (v) => { Atomics.store(flag, 0, v); Atomics.notify(flag, 0); };
const attempt = () => {
  if (Date.now() >= deadline) return done(2);
  const retry = () => setTimeout(attempt, 50);
  const req = http.get(url, { timeout: 500 }, (res) => {
    res.resume();
    if (res.statusCode === 200) done(1); else retry();
  });
  req.on("timeout", () => req.destroy());
  req.on("error", retry);
};
attempt();
`;

/** Blocks until the sidecar answers or `waitMs` passed; true when it answered. */
function waitForSidecar(waitMs: number): boolean {
  const threads: WorkerThreads = require("node:worker_threads");
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new threads.Worker(POLL, {
    eval: true,
    // The agent's flags (e.g. --input-type=module) would change how the poller is parsed.
    execArgv: [],
    workerData: { url: `${sidecarOrigin()}/api/version`, deadline: Date.now() + waitMs, flag },
    stdout: true,
    stderr: true,
  });
  worker.unref();
  // The worker gives up at the deadline; the margin covers its own start.
  Atomics.wait(flag, 0, 0, waitMs + 1000);
  void worker.terminate();
  return Atomics.load(flag, 0) === 1;
}

function preload(): void {
  // Workers the agent starts inherit the preload; the main thread has waited already.
  if (!require("node:worker_threads").isMainThread) return;
  // Child processes inherit NODE_OPTIONS and this variable: they need not wait again.
  if (process.env[READY_ENV] === "1") return;
  const parsed = Number.parseInt(process.env.AGENTTYPE_WAIT_MS || "", 10);
  const waitMs = Number.isFinite(parsed) && parsed >= 0 ? parsed : DEFAULT_WAIT_MS;
  if (waitMs === 0) return;
  const started = Date.now();
  if (waitForSidecar(waitMs)) {
    process.env[READY_ENV] = "1";
    log("info", `sidecar ready after ${Date.now() - started} ms (node ${process.version})`);
  } else {
    log("warn", `sidecar at ${sidecarOrigin()} not ready after ${waitMs} ms; starting the agent anyway`);
  }
}

try {
  preload();
} catch (error) {
  log("warn", `preload skipped: ${(error as Error).message}`);
}

// ---- the client ---------------------------------------------------------------------------

interface Tool {
  name: string;
  version: string;
  description: string;
  protocol: "http" | "mcp";
  available: boolean;
  inputSchema?: Record<string, unknown>;
  tools?: { name: string; description: string; inputSchema: unknown }[];
}

class SidecarError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(method: string, path: string, status: number, body: unknown) {
    const detail =
      body !== null && typeof body === "object" && "error" in body
        ? String(body.error)
        : JSON.stringify(body);
    super(`${method} ${path}: the sidecar answered ${status}: ${detail}`);
    this.name = "SidecarError";
    this.status = status;
    this.body = body;
  }
}

/** One JSON request to the sidecar; resolves with the parsed body, rejects on status >= 400. */
function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const url = new URL(path, sidecarOrigin());
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method,
        headers: payload
          ? { "content-type": "application/json", "content-length": String(payload.length) }
          : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          try {
            parsed = text === "" ? undefined : JSON.parse(text);
          } catch {
            // not JSON: keep the text
          }
          const status = res.statusCode || 0;
          if (status >= 400 && status !== 404) reject(new SidecarError(method, url.pathname, status, parsed));
          else resolve({ status, body: parsed });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

const memoryPath = (key: string) => `/memory/${key.split("/").map(encodeURIComponent).join("/")}`;

function found<T>(answer: { status: number; body: unknown }, path: string): T {
  if (answer.status === 404) throw new SidecarError("request", path, 404, answer.body);
  return answer.body as T;
}

const tools = {
  /** The tools this agent was given (GET /tools). */
  async list(): Promise<Tool[]> {
    return found<{ tools: Tool[] }>(await call("GET", "/tools"), "/tools").tools;
  },
  /** Calls a tool with its input; resolves with the tool's answer. */
  async invoke(name: string, input: unknown): Promise<unknown> {
    const path = `/tools/${encodeURIComponent(name)}/invoke`;
    return found(await call("POST", path, input), path);
  },
};

const memory = {
  /** Stores a JSON value under a key (keys may contain `/`). */
  async put(key: string, value: unknown): Promise<void> {
    await call("PUT", memoryPath(key), value);
  },
  /** The value under a key, or undefined when there is none. */
  async get(key: string): Promise<unknown> {
    const answer = await call("GET", memoryPath(key));
    return answer.status === 404 ? undefined : (answer.body as { value: unknown }).value;
  },
  /** Deletes a key; false when there was none. */
  async delete(key: string): Promise<boolean> {
    return (await call("DELETE", memoryPath(key))).status !== 404;
  },
  /** Keys under a prefix. */
  async list(prefix = ""): Promise<{ key: string; bytes: number; updatedAt: string }[]> {
    const answer = await call("GET", `/memory?prefix=${encodeURIComponent(prefix)}`);
    return (answer.body as { items: { key: string; bytes: number; updatedAt: string }[] }).items;
  },
  /** Entries whose values contain the words. */
  async search(words: string): Promise<{ key: string; value: unknown; updatedAt: string }[]> {
    const answer = await call("GET", `/memory?q=${encodeURIComponent(words)}`);
    return (answer.body as { items: { key: string; value: unknown; updatedAt: string }[] }).items;
  },
};

/** Whether the sidecar answered before the agent started. */
const sidecarReady = (): boolean => process.env[READY_ENV] === "1";

module.exports = { tools, memory, sidecarReady, SidecarError };
