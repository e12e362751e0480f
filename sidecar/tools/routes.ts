// Tool discovery and invocation for the agent: GET /tools, POST /tools/{name}/invoke and the
// MCP gateway at /mcp.
import type { FastifyInstance } from "fastify";
import type { SidecarTool } from "../../api/sidecarconfig.ts";
import type { Cooldown } from "../cooldown.ts";
import { agentGone } from "../llm/stream.ts";
import type { Metrics } from "../metrics.ts";
import type { Redactor } from "../redact.ts";
import { setAside, ToolError } from "./errors.ts";
import { invokeHttpTool } from "./http.ts";
import { type McpGateway, prefixedName } from "./mcp.ts";

export interface ToolServices {
  tools: readonly SidecarTool[];
  secrets: ReadonlyMap<string, string>;
  gateway: McpGateway;
  /** Cool-down of each http tool; MCP servers keep theirs in the gateway. */
  httpCooldowns: ReadonlyMap<string, Cooldown>;
  /** Strips the credentials the sidecar holds from tool answers and errors. */
  redact: Redactor;
}

export function registerToolRoutes(
  app: FastifyInstance,
  current: () => ToolServices,
  metrics: Metrics,
): void {
  app.get("/tools", async (_request, reply) => {
    const { tools, gateway, httpCooldowns, redact } = current();
    const listing = await gateway.listTools();
    const down = new Map(listing.unavailable.map((u) => [u.server, u.reason]));
    const now = Date.now();
    for (const [name, cooldown] of httpCooldowns) {
      if (cooldown.isCoolingDown(now)) down.set(name, redact.text(cooldown.reason ?? "unavailable"));
    }
    return reply.send({
      tools: tools.map((t) => ({
        name: t.name,
        version: t.version,
        description: t.description,
        protocol: t.protocol,
        available: !down.has(t.name),
        ...(down.has(t.name) ? { unavailableReason: down.get(t.name) } : {}),
        ...(t.protocol === "http"
          ? { inputSchema: t.inputSchema ?? { type: "object" } }
          : {
              tools: listing.tools
                .filter((m) => m.name.startsWith(prefixedName(t.name, "")))
                .map((m) => ({ name: m.name, description: m.description ?? "", inputSchema: m.inputSchema })),
            }),
      })),
    });
  });

  app.post<{ Params: { name: string } }>("/tools/:name/invoke", async (request, reply) => {
    const { tools, secrets, gateway, httpCooldowns, redact } = current();
    const tool = tools.find((t) => t.name === request.params.name && t.protocol === "http");
    if (tool === undefined) {
      // MCP tools are invoked by their prefixed name, as /mcp lists them.
      try {
        const result = await gateway.callTool(request.params.name, request.body as Record<string, unknown>);
        return reply.code(result.isError === true ? 502 : 200).send(result);
      } catch (error) {
        if (!(error instanceof ToolError) || error.kind !== "unknown_tool") throw error;
        return reply.code(404).send({
          error: `no tool named "${request.params.name}"; GET /tools lists the tools of this agent`,
        });
      }
    }
    metrics.toolCalls.inc({ tool: tool.name });
    const cooldown = httpCooldowns.get(tool.name);
    if (cooldown?.isCoolingDown(Date.now()) === true) {
      metrics.toolErrors.inc({ tool: tool.name, error_type: "unavailable" });
      const refused = setAside(`tool "${tool.name}"`, cooldown.reason);
      return reply.code(refused.status).send({ error: redact.text(refused.message) });
    }
    try {
      const answer = await invokeHttpTool(tool, secrets.get(tool.name), request.body, agentGone(reply));
      cooldown?.succeeded();
      if (answer.status >= 400) metrics.toolErrors.inc({ tool: tool.name, error_type: "error" });
      return reply.code(answer.status).send(redact.value(answer.body));
    } catch (error) {
      if (!(error instanceof ToolError)) throw error;
      cooldown?.failed(Date.now(), error.message);
      metrics.toolErrors.inc({ tool: tool.name, error_type: error.metricType });
      return reply.code(error.status).send({ error: redact.text(error.message) });
    }
  });

  app.all("/mcp", async (request, reply) => {
    reply.hijack();
    try {
      await current().gateway.handle(request.raw, reply.raw, request.body);
    } catch (error) {
      // The MCP SDK answers what it can; what it could not is a JSON-RPC internal error.
      request.log.error({ err: error }, "MCP request failed");
      if (reply.raw.headersSent) reply.raw.destroy();
      else
        reply.raw.writeHead(500, { "content-type": "application/json" }).end(
          JSON.stringify({
            jsonrpc: "2.0",
            id: null,
            error: { code: -32603, message: `the sidecar's MCP gateway failed: ${(error as Error).message}` },
          }),
        );
    }
  });
}
