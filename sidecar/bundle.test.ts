// The sidecar as its image ships it: bundled by sidecar/build.ts and started as the Dockerfile's
// ENTRYPOINT starts it, in a process of its own. The other sidecar tests run the sources; this
// one proves the bundle, including the chunks loaded on demand (AWS SDK, MCP SDK), works.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../tests/fixtures/eventually.ts";
import { freePort } from "../tests/fixtures/ports.ts";
import { buildSidecar, SIDECAR_NODE_FLAGS } from "./build.ts";
import { BedrockServer } from "./testing/bedrock-server.ts";
import { startCalculatorServer, type TestMcpServer } from "./testing/mcp-server.ts";
import { OllamaServer } from "./testing/ollama-server.ts";

const root = new URL("../", import.meta.url).pathname;
let dir: string;
let ollama: OllamaServer;
let bedrock: BedrockServer;
let calc: TestMcpServer;
let child: ChildProcess;
let output = "";
let agentUrl: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "sidecar-bundle-"));
  ollama = new OllamaServer();
  bedrock = new BedrockServer();
  [calc] = await Promise.all([startCalculatorServer(), ollama.listen(), bedrock.listen()]);
  await buildSidecar(join(dir, "dist"));
  const credentials = join(dir, "aws");
  mkdirSync(credentials);
  writeFileSync(join(credentials, "AWS_ACCESS_KEY_ID"), "AKIDTESTKEY");
  writeFileSync(join(credentials, "AWS_SECRET_ACCESS_KEY"), "secret");
  const [port, metricsPort] = [await freePort(), await freePort()];
  writeFileSync(
    join(dir, "sidecar.json"),
    JSON.stringify({
      agent: { name: "bundled", namespace: "default" },
      listen: { port, metricsPort, metricsHost: "127.0.0.1" },
      llm: {
        providers: [
          { name: "local", type: "ollama", endpoint: ollama.url, model: "llama3.2" },
          {
            name: "claude",
            type: "bedrock",
            region: "us-east-1",
            endpoint: bedrock.url,
            model: "anthropic.claude",
            credentialsDir: credentials,
          },
        ],
        retries: { maxAttempts: 1 },
        timeoutSeconds: 10,
      },
      tools: [
        {
          name: "calc",
          version: "1.0.0",
          description: "calculator",
          protocol: "mcp",
          url: calc.url,
          timeoutSeconds: 5,
        },
      ],
      memory: { type: "persistent", path: join(dir, "memory"), maxBytes: 10_000 },
    }),
  );
  child = spawn(
    process.execPath,
    [...SIDECAR_NODE_FLAGS, join(dir, "dist/main.mjs"), "--config", join(dir, "sidecar.json")],
    // No node_modules where the image runs it: resolve nothing from the repository's.
    { cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout?.on("data", (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    output += c.toString();
  });
  agentUrl = `http://127.0.0.1:${port}`;
  await eventually(
    "the bundled sidecar to be ready",
    async () => {
      if (child.exitCode !== null) throw new Error(`the sidecar exited ${child.exitCode}: ${output}`);
      return (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).ok;
    },
    15_000,
  );
  // Bundling and a cold start take a few seconds on a busy machine.
}, 60_000);

afterAll(async () => {
  child?.kill();
  await Promise.all([ollama?.close(), bedrock?.close(), calc?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

describe("the bundled sidecar", () => {
  it("is what the image starts, with the same Node flags", () => {
    const dockerfile = readFileSync(join(root, "Dockerfile"), "utf8");
    const entrypoint = JSON.stringify(["node", ...SIDECAR_NODE_FLAGS, "sidecar/main.mjs"]);
    expect(dockerfile.replaceAll(", ", ",")).toContain(`ENTRYPOINT ${entrypoint}`);
  });

  it("streams from Ollama and answers from Bedrock (a chunk loaded on demand)", async () => {
    const agent = new Ollama({ host: agentUrl });
    const parts: string[] = [];
    for await (const part of await agent.chat({
      model: "llama3.2",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    }))
      parts.push(part.message.content);
    expect(parts.join("")).toBe("You said: hi");

    ollama.enqueue({ status: 503, error: "overloaded" });
    const openai = new OpenAI({ baseURL: `${agentUrl}/v1`, apiKey: "x", maxRetries: 0 });
    const completion = await openai.chat.completions.create({
      model: "any",
      messages: [{ role: "user", content: "hello bedrock" }],
    });
    expect(completion.choices[0]?.message.content).toBe("You said: hello bedrock");
    expect(bedrock.requests.at(-1)?.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDTESTKEY\//,
    );
  });

  it("serves MCP tools through the gateway (the MCP SDK's chunk)", async () => {
    const client = new Client({ name: "agent", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${agentUrl}/mcp`)));
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(["calc__add", "calc__multiply"]);
    const result = await client.callTool({ name: "calc__add", arguments: { a: 2, b: 3 } });
    expect(result.content).toEqual([{ type: "text", text: "5" }]);
    await client.close();
  });

  it("keeps memory in SQLite", async () => {
    const put = await fetch(`${agentUrl}/memory/plan`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ step: 1 }),
    });
    expect(put.status).toBeLessThan(300);
    expect(await (await fetch(`${agentUrl}/memory/plan`)).json()).toMatchObject({ value: { step: 1 } });
  });
});
