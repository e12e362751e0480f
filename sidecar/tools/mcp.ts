// The MCP gateway: one Streamable HTTP MCP endpoint for the agent that aggregates the tools of
// every resolved MCP tool server, names prefixed per server and filtered by its allowed list.
// A server that hangs or fails is timed out and set aside for a while; the others still answer.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult, Tool } from "@modelcontextprotocol/sdk/types.js";
import type { SidecarTool } from "../../api/sidecarconfig.ts";
import type { Metrics } from "../metrics.ts";
import { ToolHealth, UNAVAILABLE_MS } from "./health.ts";
import { authHeaders } from "./http.ts";

/**
 * The MCP SDK costs tens of MiB of memory; it is loaded on first use, so an agent without MCP
 * tools never pays for it.
 */
async function loadSdk() {
  const [client, clientTransport, server, serverTransport, types] = await Promise.all([
    import("@modelcontextprotocol/sdk/client/index.js"),
    import("@modelcontextprotocol/sdk/client/streamableHttp.js"),
    import("@modelcontextprotocol/sdk/server/index.js"),
    import("@modelcontextprotocol/sdk/server/streamableHttp.js"),
    import("@modelcontextprotocol/sdk/types.js"),
  ]);
  return {
    Client: client.Client,
    StreamableHTTPClientTransport: clientTransport.StreamableHTTPClientTransport,
    Server: server.Server,
    StreamableHTTPServerTransport: serverTransport.StreamableHTTPServerTransport,
    ...types,
  };
}

let sdkLoading: ReturnType<typeof loadSdk> | undefined;
function sdk(): ReturnType<typeof loadSdk> {
  sdkLoading ??= loadSdk();
  return sdkLoading;
}

/** Separates the tool server's name from its tool's name; tool server names never contain it. */
const PREFIX_SEPARATOR = "__";

export function prefixedName(server: string, tool: string): string {
  return `${server}${PREFIX_SEPARATOR}${tool}`;
}

/** Splits a prefixed name; undefined when it names no server. */
function splitPrefixedName(name: string): { server: string; tool: string } | undefined {
  const at = name.indexOf(PREFIX_SEPARATOR);
  if (at <= 0) return undefined;
  return { server: name.slice(0, at), tool: name.slice(at + PREFIX_SEPARATOR.length) };
}

function isAllowed(tool: SidecarTool, name: string): boolean {
  return tool.allowedTools === undefined || tool.allowedTools.includes(name);
}

/** One MCP tool server, connected on first use and reconnected after a failure. */
class Upstream {
  readonly tool: SidecarTool;
  readonly #headers: Record<string, string>;
  #client: Promise<Client> | undefined;
  #transport: StreamableHTTPClientTransport | undefined;
  readonly health = new ToolHealth();

  constructor(tool: SidecarTool, secret: string | undefined) {
    this.tool = tool;
    this.#headers = authHeaders(tool, secret);
  }

  get timeoutMs(): number {
    return this.tool.timeoutSeconds * 1000;
  }

  async #connected(): Promise<Client> {
    this.#client ??= (async () => {
      const { Client, StreamableHTTPClientTransport } = await sdk();
      const client = new Client({ name: "agenttype-sidecar", version: "0.1.0" });
      const transport = new StreamableHTTPClientTransport(new URL(this.tool.url), {
        requestInit: { headers: this.#headers },
      });
      this.#transport = transport;
      await client.connect(transport, { timeout: this.timeoutMs });
      return client;
    })();
    return this.#client;
  }

  /**
   * Runs a call on the server with the tool's timeout. A server that did not answer is set
   * aside; one that answered with a JSON-RPC error (bad arguments, say) is alive and is not.
   */
  async use<T>(call: (client: Client) => Promise<T>): Promise<T> {
    try {
      const client = await withTimeout(this.#connected(), this.timeoutMs, this.tool.name);
      const value = await call(client);
      this.health.succeeded();
      return value;
    } catch (error) {
      const { McpError, ErrorCode } = await sdk();
      const answered =
        error instanceof McpError &&
        error.code !== ErrorCode.RequestTimeout &&
        error.code !== ErrorCode.ConnectionClosed;
      if (!answered) {
        this.health.failed(error instanceof Error ? error.message : String(error), Date.now());
        this.close();
      }
      throw error;
    }
  }

  /** Drops the connection, aborting requests still waiting on a server that hangs. */
  close(): void {
    void this.#transport?.close().catch(() => undefined);
    this.#transport = undefined;
    this.#client = undefined;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, server: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`tool server "${server}" did not answer within ${ms / 1000}s`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export interface ToolListing {
  tools: Tool[];
  /** Tool servers left out of the listing, with why. */
  unavailable: { server: string; reason: string }[];
}

export class McpGateway {
  readonly #upstreams = new Map<string, Upstream>();
  readonly #metrics: Metrics;

  constructor(tools: readonly SidecarTool[], secrets: ReadonlyMap<string, string>, metrics: Metrics) {
    this.#metrics = metrics;
    for (const tool of tools) {
      if (tool.protocol === "mcp") this.#upstreams.set(tool.name, new Upstream(tool, secrets.get(tool.name)));
    }
  }

  /** The tools of every available server, listed in parallel so a slow server delays none. */
  async listTools(): Promise<ToolListing> {
    const now = Date.now();
    const unavailable: ToolListing["unavailable"] = [];
    const listings = await Promise.all(
      [...this.#upstreams.values()].map(async (upstream) => {
        const server = upstream.tool.name;
        if (!upstream.health.isAvailable(now)) {
          unavailable.push({ server, reason: upstream.health.reason ?? "unavailable" });
          return [];
        }
        try {
          const listed = await upstream.use((c) => c.listTools(undefined, { timeout: upstream.timeoutMs }));
          return listed.tools
            .filter((t) => isAllowed(upstream.tool, t.name))
            .map((t) => ({ ...t, name: prefixedName(server, t.name) }));
        } catch (error) {
          this.#metrics.toolErrors.inc({ tool: server, error_type: errorType(error) });
          unavailable.push({ server, reason: upstream.health.reason ?? String(error) });
          return [];
        }
      }),
    );
    return { tools: listings.flat(), unavailable };
  }

  async callTool(name: string, args: Record<string, unknown> | undefined): Promise<CallToolResult> {
    const split = splitPrefixedName(name);
    const upstream = split === undefined ? undefined : this.#upstreams.get(split.server);
    if (split === undefined || upstream === undefined || !isAllowed(upstream.tool, split.tool)) {
      const { McpError, ErrorCode } = await sdk();
      throw new McpError(
        ErrorCode.InvalidParams,
        `unknown tool "${name}"; list the tools to see their names`,
      );
    }
    this.#metrics.toolCalls.inc({ tool: upstream.tool.name });
    if (!upstream.health.isAvailable(Date.now())) {
      this.#metrics.toolErrors.inc({ tool: upstream.tool.name, error_type: "unavailable" });
      return {
        isError: true,
        content: [
          {
            type: "text",
            text: `tool server "${upstream.tool.name}" is unavailable (${upstream.health.reason ?? "failed"}); it is tried again within ${UNAVAILABLE_MS / 1000}s`,
          },
        ],
      };
    }
    try {
      const result = await upstream.use((c) =>
        c.callTool({ name: split.tool, arguments: args ?? {} }, undefined, { timeout: upstream.timeoutMs }),
      );
      return result as CallToolResult;
    } catch (error) {
      this.#metrics.toolErrors.inc({ tool: upstream.tool.name, error_type: errorType(error) });
      const reason = error instanceof Error ? error.message : String(error);
      return {
        isError: true,
        content: [{ type: "text", text: `tool server "${upstream.tool.name}" failed: ${reason}` }],
      };
    }
  }

  /** Serves one request of the agent on a fresh stateless MCP server bound to this gateway. */
  async handle(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const { Server, StreamableHTTPServerTransport, ListToolsRequestSchema, CallToolRequestSchema } =
      await sdk();
    const server = new Server(
      { name: "agenttype-sidecar", version: "0.1.0" },
      { capabilities: { tools: {} } },
    );
    server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: (await this.listTools()).tools }));
    server.setRequestHandler(CallToolRequestSchema, async (request) =>
      this.callTool(request.params.name, request.params.arguments),
    );
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on("close", () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  close(): void {
    for (const upstream of this.#upstreams.values()) upstream.close();
  }
}

function errorType(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return /did not answer|timed out|timeout/i.test(message) ? "timeout" : "unavailable";
}
