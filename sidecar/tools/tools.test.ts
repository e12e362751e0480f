// Tool discovery, http tool calls and the MCP gateway, with a real MCP client as the agent
// and real MCP servers (plus one that hangs) as the tool servers.
import { mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  startCalculatorServer,
  startHangingServer,
  startStrictServer,
  type TestMcpServer,
} from "../testing/mcp-server.ts";
import { baseConfig, startTestSidecar, type TestSidecar } from "../testing/sidecar.ts";

let calc: TestMcpServer;
let limited: TestMcpServer;
let hanging: TestMcpServer;
let strict: TestMcpServer;
let httpTool: http.Server;
let httpToolUrl: string;
const httpToolRequests: { authorization: string | undefined; body: string }[] = [];
let sc: TestSidecar;

beforeAll(async () => {
  [calc, limited, hanging, strict] = await Promise.all([
    startCalculatorServer(),
    startCalculatorServer(),
    startHangingServer(),
    startStrictServer(),
  ]);
  httpTool = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString();
    });
    req.on("end", () => {
      httpToolRequests.push({ authorization: req.headers.authorization, body });
      if (body.includes("sleep")) return;
      res
        .writeHead(200, { "content-type": "application/json", "x-upstream-session": "upstream-internal" })
        .end(JSON.stringify({ echoed: JSON.parse(body) }));
    });
  });
  await new Promise<void>((resolve) => httpTool.listen(0, "127.0.0.1", resolve));
  httpToolUrl = `http://127.0.0.1:${(httpTool.address() as AddressInfo).port}/run`;
  const dir = mkdtempSync(join(tmpdir(), "tool-secrets-"));
  writeFileSync(join(dir, "calc-token"), "calc-secret\n");
  writeFileSync(join(dir, "http-token"), "http-secret\n");
  const tool = (name: string, url: string, extra: object = {}) => ({
    name,
    version: "1.0.0",
    description: `the ${name} tool`,
    protocol: "mcp",
    url,
    timeoutSeconds: 1,
    ...extra,
  });
  sc = await startTestSidecar(
    baseConfig({
      tools: [
        tool("calc", calc.url, {
          auth: { header: "Authorization", scheme: "Bearer", secretFile: join(dir, "calc-token") },
        }),
        tool("limited", limited.url, { allowedTools: ["add"] }),
        tool("stuck", hanging.url),
        tool("gone", await closedUrl()),
        tool("strict", strict.url),
        {
          name: "echo",
          version: "2.1.0",
          description: "echoes its input",
          protocol: "http",
          url: httpToolUrl,
          inputSchema: { type: "object", properties: { text: { type: "string" } } },
          auth: { header: "X-Api-Key", scheme: "", secretFile: join(dir, "http-token") },
          timeoutSeconds: 1,
        },
      ],
    }),
  );
});

afterAll(async () => {
  await sc.close();
  await Promise.all([calc.close(), limited.close(), hanging.close(), strict.close()]);
  httpTool.closeAllConnections();
  await new Promise((resolve) => httpTool.close(resolve));
});

/** The URL of a port nobody listens on: a tool server that is down. */
async function closedUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}/mcp`;
}

async function mcpClient(): Promise<Client> {
  const client = new Client({ name: "agent", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${sc.sidecar.agentUrl}/mcp`)));
  return client;
}

describe("MCP gateway", () => {
  it("aggregates the servers' tools with prefixed names, filtered by the allowed list, past a hanging and a dead server", async () => {
    const client = await mcpClient();
    const started = Date.now();
    const { tools } = await client.listTools();
    const elapsed = Date.now() - started;
    expect(tools.map((t) => t.name).sort()).toEqual([
      "calc__add",
      "calc__multiply",
      "limited__add",
      "strict__divide",
    ]);
    expect(tools.find((t) => t.name === "calc__add")?.description).toBe("Adds two numbers.");
    expect(elapsed).toBeLessThan(2500);
    // The hanging server is now set aside: the next listing does not wait for it at all.
    const again = Date.now();
    await client.listTools();
    expect(Date.now() - again).toBeLessThan(500);
    await client.close();
  });

  it("forwards calls to the right server with the tool's credential added", async () => {
    const client = await mcpClient();
    const result = await client.callTool({ name: "calc__multiply", arguments: { a: 6, b: 7 } });
    expect(result.content).toEqual([{ type: "text", text: "42" }]);
    expect(calc.authorizations.at(-1)).toBe("Bearer calc-secret");
    expect(limited.authorizations.every((a) => a === undefined)).toBe(true);
    await client.close();
  });

  it("keeps a server that rejects bad arguments available", async () => {
    const client = await mcpClient();
    const bad = await client.callTool({ name: "calc__add", arguments: { a: "two" } });
    expect(bad.isError).toBe(true);
    const good = await client.callTool({ name: "calc__add", arguments: { a: 2, b: 2 } });
    expect(good.content).toEqual([{ type: "text", text: "4" }]);
    // A JSON-RPC error is an answer too: the server stays in the listing and callable.
    const refused = await client.callTool({ name: "strict__divide", arguments: { a: 1, b: 0 } });
    expect(refused).toMatchObject({
      isError: true,
      content: [{ text: expect.stringContaining("b must not be 0") }],
    });
    const divided = await client.callTool({ name: "strict__divide", arguments: { a: 6, b: 3 } });
    expect(divided.content).toEqual([{ type: "text", text: "2" }]);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("strict__divide");
    await client.close();
  });

  it("refuses tools outside the allowed list and reports a hanging server as a tool error", async () => {
    const client = await mcpClient();
    const unknown = await client
      .callTool({ name: "limited__multiply", arguments: { a: 1, b: 2 } })
      .catch((e: unknown) => e);
    // The client prefixes the JSON-RPC code itself: once, not twice.
    expect((unknown as Error).message).toBe(
      'MCP error -32602: unknown tool "limited__multiply"; list the tools to see their names',
    );
    const stuck = await client.callTool({ name: "stuck__anything", arguments: {} });
    expect(stuck.isError).toBe(true);
    expect(stuck.content).toEqual([
      { type: "text", text: expect.stringMatching(/^tool server "stuck" (is unavailable|failed)/) },
    ]);
    await client.close();
  });
});

describe("tool discovery and http tools", () => {
  it("lists the resolved tools with version, description and input schema, and which are down", async () => {
    const response = await fetch(`${sc.sidecar.agentUrl}/tools`);
    const { tools } = (await response.json()) as { tools: Record<string, unknown>[] };
    expect(tools.map((t) => [t.name, t.version, t.available])).toEqual([
      ["calc", "1.0.0", true],
      ["limited", "1.0.0", true],
      ["stuck", "1.0.0", false],
      ["gone", "1.0.0", false],
      ["strict", "1.0.0", true],
      ["echo", "2.1.0", true],
    ]);
    expect(tools[3]?.unavailableReason).toMatch(/ECONNREFUSED|fetch failed/);
    expect(tools[5]?.inputSchema).toEqual({ type: "object", properties: { text: { type: "string" } } });
    expect(tools[0]?.tools).toEqual([
      expect.objectContaining({ name: "calc__add", description: "Adds two numbers." }),
      expect.objectContaining({ name: "calc__multiply" }),
    ]);
    expect(JSON.stringify(tools)).not.toContain("secret");
  });

  it("invokes an http tool with its credential injected and no upstream header returned", async () => {
    const response = await fetch(`${sc.sidecar.agentUrl}/tools/echo/invoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: "hi" }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ echoed: { text: "hi" } });
    expect(response.headers.get("x-upstream-session")).toBeNull();
    expect(httpToolRequests.at(-1)?.authorization).toBeUndefined();
    expect(httpToolRequests.at(-1)).toMatchObject({ body: '{"text":"hi"}' });
  });

  it("times out an http tool that does not answer, naming it, and sets it aside", async () => {
    const response = await fetch(`${sc.sidecar.agentUrl}/tools/echo/invoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: "sleep" }),
    });
    expect(response.status).toBe(504);
    expect(await response.json()).toEqual({ error: 'tool "echo" did not answer within 1s' });
    // Set aside: the next call fails at once instead of waiting out the timeout again.
    const started = Date.now();
    const again = await fetch(`${sc.sidecar.agentUrl}/tools/echo/invoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: "hi" }),
    });
    expect(again.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(500);
    const { tools } = (await (await fetch(`${sc.sidecar.agentUrl}/tools`)).json()) as {
      tools: { name: string; available: boolean }[];
    };
    expect(tools.find((t) => t.name === "echo")?.available).toBe(false);
  });

  it("invokes an MCP tool by its prefixed name", async () => {
    const response = await fetch(`${sc.sidecar.agentUrl}/tools/calc__add/invoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ a: 2, b: 3 }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ content: [{ type: "text", text: "5" }] });
  });

  it("answers an MCP tool server's failure as a failure with its reason, never as an unknown tool", async () => {
    const response = await fetch(`${sc.sidecar.agentUrl}/tools/gone__add/invoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ a: 1, b: 2 }),
    });
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({
      isError: true,
      content: [{ text: expect.stringMatching(/^tool server "gone" (is unavailable|failed)/) }],
    });
  });

  it("answers 404 for a tool the agent does not have", async () => {
    const response = await fetch(`${sc.sidecar.agentUrl}/tools/nope/invoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(response.status).toBe(404);
  });
});
