// The wrapper as an agent meets it: the built preload under the real node, the shim under the
// real python3 and env.sh under sh, each against a local HTTP server that answers like the
// sidecar's agent API.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { type Exited, exec } from "../tests/fixtures/exec.ts";
import { buildWrapper } from "./build.ts";

const out = mkdtempSync(join(tmpdir(), "agenttype-wrapper-"));
const PRELOAD = join(out, "node/register.cjs");
const PYTHON = join(out, "python");

interface Recorded {
  method: string;
  url: string;
  body: string;
}

/**
 * The sidecar's agent API, enough of it: not ready until `readyAt`, then tools and memory. With
 * `readyDelayMs`, `readyAt` is that long after the first readiness check, so the agent is seen
 * to wait however slowly a loaded machine starts it.
 */
class FakeSidecar {
  readonly requests: Recorded[] = [];
  readyAt = 0;
  readyDelayMs = 0;
  readonly memory = new Map<string, unknown>();
  readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      this.requests.push({ method: req.method ?? "", url: req.url ?? "", body });
      const json = (status: number, value: unknown) => {
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
      };
      const url = new URL(req.url ?? "/", "http://x");
      if (url.pathname === "/api/version") {
        if (this.readyDelayMs > 0 && this.readyAt === 0) this.readyAt = Date.now() + this.readyDelayMs;
        return Date.now() >= this.readyAt
          ? json(200, { version: "0.12.6" })
          : json(503, { error: "starting" });
      }
      if (req.method === "GET" && url.pathname === "/tools") {
        return json(200, {
          tools: [{ name: "calculator", version: "2.1.0", protocol: "http", available: true }],
        });
      }
      if (req.method === "POST" && url.pathname === "/tools/calculator/invoke") {
        const { expression } = JSON.parse(body) as { expression: string };
        return json(200, { result: expression === "6*7" ? 42 : null });
      }
      if (url.pathname.startsWith("/memory/")) {
        const key = decodeURIComponent(url.pathname.slice("/memory/".length));
        if (req.method === "PUT") {
          this.memory.set(key, JSON.parse(body));
          return json(200, { key, updatedAt: "now" });
        }
        if (!this.memory.has(key)) return json(404, { error: `no memory under key "${key}"` });
        return json(200, { key, value: this.memory.get(key), updatedAt: "now" });
      }
      return json(404, { error: "not found" });
    });
  });
  url = "";

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
}

const sidecar = new FakeSidecar();

beforeAll(async () => {
  buildWrapper(out);
  await sidecar.start();
});

afterAll(() => {
  sidecar.server.close();
  rmSync(out, { recursive: true, force: true });
});

beforeEach(() => {
  sidecar.requests.length = 0;
  sidecar.readyAt = 0;
  sidecar.readyDelayMs = 0;
  sidecar.memory.clear();
});

/** Runs a program with the pod contract's environment pointing at `origin`. */
function run(
  cmd: string,
  args: string[],
  extraEnv: Record<string, string>,
  origin = sidecar.url,
): Promise<Exited> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    AGENTTYPE_TOOLS_URL: `${origin}/tools`,
    AGENTTYPE_MEMORY_URL: `${origin}/memory`,
    OPENAI_BASE_URL: `${origin}/v1`,
    ...extraEnv,
  };
  return exec(cmd, args, { env });
}

const nodeEnv = { NODE_OPTIONS: `--require ${PRELOAD}` };
const pythonEnv = { PYTHONPATH: PYTHON };
/** A port nothing listens on: the sidecar that never comes. */
const DEAD = "http://127.0.0.1:9";

describe("node preload", () => {
  test("the agent starts once the sidecar is ready, and its output is its own", async () => {
    sidecar.readyDelayMs = 600;
    const r = await run("node", ["-e", "console.log('agent started at', Date.now())"], nodeEnv);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const started = Number(/agent started at (\d+)/.exec(r.stdout)?.[1]);
    expect(started).toBeGreaterThanOrEqual(sidecar.readyAt);
    expect(r.stdout.trim().split("\n")).toHaveLength(1);
    expect(sidecar.requests.filter((q) => q.url === "/api/version").length).toBeGreaterThan(1);
  });

  test("a sidecar that never answers delays the agent by the bound only, with a warning", async () => {
    const r = await run("node", ["-e", "console.log('ran')"], { ...nodeEnv, AGENTTYPE_WAIT_MS: "400" }, DEAD);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("ran");
    expect(r.stderr).toContain("agenttype: sidecar at http://127.0.0.1:9 not ready after 400 ms");
    expect(r.ms).toBeLessThan(3000);
  });

  test("an ES module agent runs with the preload, and child processes do not wait again", async () => {
    const program = [
      "import { execFileSync } from 'node:child_process';",
      "console.log('esm', process.env.AGENTTYPE_SIDECAR_READY);",
      "console.log(execFileSync(process.execPath, ['-e', 'console.log(\"child\")']).toString().trim());",
    ].join("\n");
    const r = await run("node", ["--input-type=module", "-e", program], {
      ...nodeEnv,
      AGENTTYPE_WRAPPER_LOG: "info",
    });
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n")).toEqual(["esm 1", "child"]);
    expect(r.stderr.match(/sidecar ready after \d+ ms \(node v/g)).toHaveLength(1);
    expect(sidecar.requests.filter((q) => q.url === "/api/version")).toHaveLength(1);
  });

  test("the client lists and invokes tools and reads and writes memory", async () => {
    const program = `
      const agenttype = require(${JSON.stringify(PRELOAD)});
      (async () => {
        const tools = await agenttype.tools.list();
        const answer = await agenttype.tools.invoke("calculator", { expression: "6*7" });
        await agenttype.memory.put("runs/first", { answer });
        const back = await agenttype.memory.get("runs/first");
        const missing = await agenttype.memory.get("nope");
        const failed = await agenttype.tools.invoke("nope", {}).catch((e) => e.name + " " + e.status);
        console.log(JSON.stringify({ tools: tools.map((t) => t.name), answer, back, missing, failed,
          ready: agenttype.sidecarReady() }));
      })();`;
    const r = await run("node", ["-e", program], nodeEnv);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({
      tools: ["calculator"],
      answer: { result: 42 },
      back: { answer: { result: 42 } },
      failed: "SidecarError 404",
      ready: true,
    });
    expect(sidecar.memory.get("runs/first")).toEqual({ answer: { result: 42 } });
    expect(sidecar.requests.map((q) => `${q.method} ${q.url}`)).toContain("PUT /memory/runs/first");
  });
});

describe("python shim", () => {
  test("the agent starts once the sidecar is ready, and its output is its own", async () => {
    sidecar.readyDelayMs = 600;
    const r = await run(
      "python3",
      ["-c", "import time; print('agent started at', int(time.time()*1000))"],
      pythonEnv,
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const started = Number(/agent started at (\d+)/.exec(r.stdout)?.[1]);
    expect(started).toBeGreaterThanOrEqual(sidecar.readyAt);
    expect(sidecar.requests.filter((q) => q.url === "/api/version").length).toBeGreaterThan(1);
  });

  test("a sidecar that never answers delays the agent by the bound only, with a warning", async () => {
    const r = await run("python3", ["-c", "print('ran')"], { ...pythonEnv, AGENTTYPE_WAIT_MS: "400" }, DEAD);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("ran");
    expect(r.stderr).toContain("agenttype: sidecar at 127.0.0.1:9 not ready after 400 ms");
    expect(r.ms).toBeLessThan(3000);
  });

  test("the image's own sitecustomize still runs", async () => {
    const own = mkdtempSync(join(tmpdir(), "agenttype-site-"));
    writeFileSync(join(own, "sitecustomize.py"), "import builtins\nbuiltins.IMAGE_SITE = 'loaded'\n");
    const r = await run("python3", ["-c", "print(IMAGE_SITE)"], { PYTHONPATH: `${PYTHON}:${own}` });
    rmSync(own, { recursive: true });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("loaded");
  });

  test("the client lists and invokes tools and reads and writes memory", async () => {
    const program = [
      "import agenttype, json",
      "tools = [t['name'] for t in agenttype.tools()]",
      "answer = agenttype.invoke('calculator', {'expression': '6*7'})",
      "agenttype.memory_put('runs/first', {'answer': answer})",
      "try:\n    agenttype.invoke('nope', {})\nexcept agenttype.SidecarError as e:\n    failed = e.status",
      "print(json.dumps({'tools': tools, 'answer': answer, 'back': agenttype.memory_get('runs/first'),",
      "  'missing': agenttype.memory_get('nope'), 'failed': failed, 'ready': agenttype.sidecar_ready()}))",
    ].join("\n");
    const r = await run("python3", ["-c", program], pythonEnv);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({
      tools: ["calculator"],
      answer: { result: 42 },
      back: { answer: { result: 42 } },
      missing: null,
      failed: 404,
      ready: true,
    });
  });
});

describe("a runtime other than the hint", () => {
  test("a python agent given the node preload, and a node agent given the python shim, start normally", async () => {
    const py = await run(
      "python3",
      ["-c", "print('python ok')"],
      { ...nodeEnv, AGENTTYPE_WAIT_MS: "200" },
      DEAD,
    );
    expect([py.code, py.stdout.trim(), py.stderr]).toEqual([0, "python ok", ""]);
    const js = await run(
      "node",
      ["-e", "console.log('node ok')"],
      { ...pythonEnv, AGENTTYPE_WAIT_MS: "200" },
      DEAD,
    );
    expect([js.code, js.stdout.trim(), js.stderr]).toEqual([0, "node ok", ""]);
  });
});

describe("env.sh", () => {
  test("waits for the sidecar, then its functions reach tools and memory", async () => {
    sidecar.readyAt = Date.now() + 300;
    const dir = join(out, "sh");
    mkdirSync(dir, { recursive: true });
    const script = [
      `. ${join(out, "env.sh")}`,
      'echo "ready=$AGENTTYPE_SIDECAR_READY"',
      "agenttype_tools; echo",
      `agenttype_invoke calculator '{"expression":"6*7"}'; echo`,
      `agenttype_memory_put notes/a '{"n":1}' >/dev/null`,
      "agenttype_memory_get notes/a; echo",
    ].join("\n");
    const r = await run("sh", ["-c", script], {});
    expect(r.stderr).toBe("");
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toBe("ready=1");
    expect(JSON.parse(lines[1] ?? "")).toMatchObject({ tools: [{ name: "calculator" }] });
    expect(JSON.parse(lines[2] ?? "")).toEqual({ result: 42 });
    expect(JSON.parse(lines[3] ?? "")).toMatchObject({ key: "notes/a", value: { n: 1 } });
  });
});
