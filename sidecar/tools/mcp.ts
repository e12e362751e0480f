// The MCP gateway: one Streamable HTTP MCP endpoint for the agent that aggregates the tools of
// every resolved MCP tool server, names prefixed per server and filtered by its allowed list.
// A server that hangs or fails is timed out and set aside for a while; the others still answer.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { CallToolResult, Tool } from "@modelcontextprotocol/sdk/types.js";
import type { SidecarTool } from "../../api/sidecarconfig.ts";
import { Cooldown } from "../cooldown.ts";
import { deadline, untilAborted } from "../deadline.ts";
import type { Metrics } from "../metrics.ts";
import type { Redactor } from "../redact.ts";
import { setAside, TOOL_COOLDOWN, ToolError } from "./errors.ts";
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

/**
 * An error the MCP SDK's server sends as it is. Unlike McpError, its message has no
 * "MCP error <code>:" prefix: the agent's client adds that itself, and would show it twice.
 */
class JsonRpcError extends Error {
  readonly code: number;

  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

/** One MCP tool server, connected on first use and reconnected after a failure. */
class Upstream {
  readonly tool: SidecarTool;
  readonly #headers: Record<string, string>;
  #client: Promise<Client> | undefined;
  #transport: StreamableHTTPClientTransport | undefined;
  readonly cooldown = new Cooldown(TOOL_COOLDOWN);

  constructor(tool: SidecarTool, secret: string | undefined) {
    this.tool = tool;
    this.#headers = authHeaders(tool, secret);
  }

  get timeoutMs(): number {
    return this.tool.timeoutSeconds * 1000;
  }

  async #connected(options: RequestOptions): Promise<Client> {
    this.#client ??= (async () => {
      const { Client, StreamableHTTPClientTransport } = await sdk();
      const client = new Client({ name: "agenttype-sidecar", version: "0.1.0" });
      const transport = new StreamableHTTPClientTransport(new URL(this.tool.url), {
        requestInit: { headers: this.#headers },
      });
      this.#transport = transport;
      await client.connect(transport, options);
      return client;
    })();
    return this.#client;
  }

  /**
   * Runs a call on the server within the tool's timeout. A server that did not answer is set
   * aside and the failure thrown as a ToolError; one that answered with a JSON-RPC error (bad
   * arguments, say) is alive, is not set aside, and its McpError is thrown as it is.
   */
  async use<T>(call: (client: Client, options: RequestOptions) => Promise<T>): Promise<T> {
    // Loading the SDK is the sidecar's own work, not the server's: it is not timed against the tool.
    const { McpError, ErrorCode } = await sdk();
    const seconds = this.tool.timeoutSeconds;
    const bound = deadline(
      this.timeoutMs,
      () => new ToolError("timeout", `tool server "${this.tool.name}" did not answer within ${seconds}s`),
    );
    // The SDK's own request timeout (60 s unless told) is put past the deadline, which decides.
    const options: RequestOptions = { signal: bound.signal, timeout: this.timeoutMs + 1000 };
    try {
      const client = await untilAborted(this.#connected(options), bound.signal);
      const value = await call(client, options);
      this.cooldown.succeeded();
      return value;
    } catch (error) {
      const answered =
        error instanceof McpError &&
        error.code !== ErrorCode.RequestTimeout &&
        error.code !== ErrorCode.ConnectionClosed;
      if (answered) throw error;
      const failure =
        error instanceof ToolError
          ? error
          : error instanceof McpError && error.code === ErrorCode.RequestTimeout
            ? new ToolError("timeout", `tool server "${this.tool.name}" did not answer: ${error.message}`)
            : new ToolError(
                "unavailable",
                `tool server "${this.tool.name}" failed: ${error instanceof Error ? error.message : String(error)}`,
              );
      this.cooldown.failed(Date.now(), failure.message);
      this.close();
      throw failure;
    } finally {
      bound.finish();
    }
  }

  /** Drops the connection, aborting requests still waiting on a server that hangs. */
  close(): void {
    void this.#transport?.close().catch(() => undefined);
    this.#transport = undefined;
    this.#client = undefined;
  }
}

export interface ToolListing {
  tools: Tool[];
  /** Tool servers left out of the listing, with why. */
  unavailable: { server: string; reason: string }[];
}

export class McpGateway {
  readonly #upstreams = new Map<string, Upstream>();
  readonly #metrics: Metrics;
  readonly #redact: Redactor;

  constructor(
    tools: readonly SidecarTool[],
    secrets: ReadonlyMap<string, string>,
    metrics: Metrics,
    redact: Redactor,
  ) {
    this.#metrics = metrics;
    this.#redact = redact;
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
        if (upstream.cooldown.isCoolingDown(now)) {
          unavailable.push({ server, reason: upstream.cooldown.reason ?? "unavailable" });
          return [];
        }
        try {
          const listed = await upstream.use((c, options) => c.listTools(undefined, options));
          return listed.tools
            .filter((t) => isAllowed(upstream.tool, t.name))
            .map((t) => ({ ...t, name: prefixedName(server, t.name) }));
        } catch (error) {
          this.#metrics.toolErrors.inc({ tool: server, error_type: metricType(error) });
          unavailable.push({ server, reason: error instanceof Error ? error.message : String(error) });
          return [];
        }
      }),
    );
    // Tool servers write listings and errors; what they echo of the sidecar's credentials goes.
    return this.#redact.value({ tools: listings.flat(), unavailable });
  }

  /**
   * Calls a tool by its prefixed name. A name the agent does not have throws a ToolError
   * (unknown_tool); a server that fails or hangs, or refuses the call, gives an error result.
   */
  async callTool(name: string, args: Record<string, unknown> | undefined): Promise<CallToolResult> {
    const split = splitPrefixedName(name);
    const upstream = split === undefined ? undefined : this.#upstreams.get(split.server);
    if (split === undefined || upstream === undefined || !isAllowed(upstream.tool, split.tool)) {
      throw new ToolError("unknown_tool", `unknown tool "${name}"; list the tools to see their names`);
    }
    this.#metrics.toolCalls.inc({ tool: upstream.tool.name });
    if (upstream.cooldown.isCoolingDown(Date.now())) {
      this.#metrics.toolErrors.inc({ tool: upstream.tool.name, error_type: "unavailable" });
      const refused = setAside(`tool server "${upstream.tool.name}"`, upstream.cooldown.reason);
      return { isError: true, content: [{ type: "text", text: this.#redact.text(refused.message) }] };
    }
    try {
      const result = await upstream.use((c, options) =>
        c.callTool({ name: split.tool, arguments: args ?? {} }, undefined, options),
      );
      return this.#redact.value(result as CallToolResult);
    } catch (error) {
      this.#metrics.toolErrors.inc({ tool: upstream.tool.name, error_type: metricType(error) });
      const reason =
        error instanceof ToolError
          ? error.message
          : `tool server "${upstream.tool.name}" refused the call: ${(error as Error).message}`;
      return { isError: true, content: [{ type: "text", text: this.#redact.text(reason) }] };
    }
  }

  /** Serves one request of the agent on a fresh stateless MCP server bound to this gateway. */
  async handle(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const {
      Server,
      StreamableHTTPServerTransport,
      ListToolsRequestSchema,
      CallToolRequestSchema,
      ErrorCode,
    } = await sdk();
    const server = new Server(
      { name: "agenttype-sidecar", version: "0.1.0" },
      { capabilities: { tools: {} } },
    );
    server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: (await this.listTools()).tools }));
    server.setRequestHandler(CallToolRequestSchema, async (request) => {
      try {
        return await this.callTool(request.params.name, request.params.arguments);
      } catch (error) {
        if (error instanceof ToolError && error.kind === "unknown_tool")
          throw new JsonRpcError(ErrorCode.InvalidParams, error.message);
        throw error;
      }
    });
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

/** The error_type label of a failed call: a ToolError knows its own; a JSON-RPC error is the server's answer. */
function metricType(error: unknown): string {
  return error instanceof ToolError ? error.metricType : "error";
}
