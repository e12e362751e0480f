// Real MCP tool servers for tests, built with @modelcontextprotocol/sdk and served over
// Streamable HTTP on loopback, and a server that accepts connections and never answers.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import {
  CallToolRequestSchema,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
} from "@modelcontextprotocol/sdk/types.js";
import * as z from "zod";
import { echoed } from "./ollama-server.ts";

export interface TestMcpServer {
  url: string;
  /** Authorization headers the server received, to check the sidecar injected the credential. */
  authorizations: (string | undefined)[];
  close(): Promise<void>;
}

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`),
    ),
  );
}

function closer(server: http.Server): () => Promise<void> {
  return () => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(() => resolve()));
  };
}

/**
 * Serves a fresh MCP server per request over stateless Streamable HTTP on loopback, recording
 * the Authorization header of each request.
 */
async function serveMcp(build: (req: http.IncomingMessage) => McpServer | Server): Promise<TestMcpServer> {
  const authorizations: (string | undefined)[] = [];
  const server = http.createServer(async (req, res) => {
    authorizations.push(req.headers.authorization);
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const body: unknown =
      chunks.length === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString("utf8"));
    const mcp = build(req);
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on("close", () => {
      void transport.close();
      void mcp.close();
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res, body);
  });
  return { url: await listen(server), authorizations, close: closer(server) };
}

/** A calculator MCP server with tools `add` and `multiply`, stateless. */
export function startCalculatorServer(): Promise<TestMcpServer> {
  return serveMcp(() => {
    const mcp = new McpServer({ name: "calculator", version: "1.0.0" });
    mcp.registerTool(
      "add",
      { description: "Adds two numbers.", inputSchema: { a: z.number(), b: z.number() } },
      async ({ a, b }) => ({ content: [{ type: "text", text: String(a + b) }] }),
    );
    mcp.registerTool(
      "multiply",
      { description: "Multiplies two numbers.", inputSchema: { a: z.number(), b: z.number() } },
      async ({ a, b }) => ({ content: [{ type: "text", text: String(a * b) }] }),
    );
    return mcp;
  });
}

/**
 * A server on the SDK's low-level Server, which answers bad input with a JSON-RPC error rather
 * than a tool result, as servers not built on McpServer do: tool `divide`, refusing b = 0.
 */
export function startStrictServer(): Promise<TestMcpServer> {
  return serveMcp(() => {
    const mcp = new Server({ name: "strict", version: "1.0.0" }, { capabilities: { tools: {} } });
    mcp.setRequestHandler(ListToolsRequestSchema, async () => ({
      tools: [{ name: "divide", description: "Divides a by b.", inputSchema: { type: "object" } }],
    }));
    mcp.setRequestHandler(CallToolRequestSchema, async (request) => {
      const { a, b } = (request.params.arguments ?? {}) as { a: number; b: number };
      if (b === 0) throw new McpError(ErrorCode.InvalidParams, "b must not be 0");
      return { content: [{ type: "text", text: String(a / b) }] };
    });
    return mcp;
  });
}

/**
 * A careless server that echoes the request's Authorization header: in its tool's description,
 * in the result of tool `whoami` and in the JSON-RPC error of tool `fail`.
 */
export function startEchoingServer(): Promise<TestMcpServer> {
  return serveMcp((req) => {
    const echo = echoed("Authorization", req.headers.authorization);
    const mcp = new Server({ name: "echoing", version: "1.0.0" }, { capabilities: { tools: {} } });
    mcp.setRequestHandler(ListToolsRequestSchema, async () => ({
      tools: [
        { name: "whoami", description: `Says who you are (${echo}).`, inputSchema: { type: "object" } },
        { name: "fail", description: "Always fails.", inputSchema: { type: "object" } },
      ],
    }));
    mcp.setRequestHandler(CallToolRequestSchema, async (request) => {
      if (request.params.name === "fail") throw new McpError(ErrorCode.InvalidRequest, `denied (${echo})`);
      return { content: [{ type: "text", text: `you are ${echo}` }] };
    });
    return mcp;
  });
}

/** A server that reads requests and never answers them, like a tool server stuck in a loop. */
export async function startHangingServer(): Promise<TestMcpServer> {
  const authorizations: (string | undefined)[] = [];
  const server = http.createServer((req) => {
    authorizations.push(req.headers.authorization);
    req.resume();
  });
  return { url: await listen(server), authorizations, close: closer(server) };
}
