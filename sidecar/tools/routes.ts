// Tool discovery and invocation for the agent: GET /tools, POST /tools/{name}/invoke and the
// MCP gateway at /mcp.
import type { FastifyInstance } from "fastify";
import type { SidecarTool } from "../../api/sidecarconfig.ts";
import { agentGone } from "../llm/stream.ts";
import type { Metrics } from "../metrics.ts";
import { type ToolHealth, UNAVAILABLE_MS } from "./health.ts";
import { invokeHttpTool, ToolCallError } from "./http.ts";
import { type McpGateway, prefixedName } from "./mcp.ts";

export interface ToolServices {
  tools: readonly SidecarTool[];
  secrets: ReadonlyMap<string, string>;
  gateway: McpGateway;
  /** Health of each http tool; MCP servers keep theirs in the gateway. */
  httpHealth: ReadonlyMap<string, ToolHealth>;
}

export function registerToolRoutes(
  app: FastifyInstance,
  current: () => ToolServices,
  metrics: Metrics,
): void {
  app.get("/tools", async (_request, reply) => {
    const { tools, gateway, httpHealth } = current();
    const listing = await gateway.listTools();
    const down = new Map(listing.unavailable.map((u) => [u.server, u.reason]));
    const now = Date.now();
    for (const [name, health] of httpHealth) {
      if (!health.isAvailable(now)) down.set(name, health.reason ?? "unavailable");
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
    const { tools, secrets, gateway, httpHealth } = current();
    const tool = tools.find((t) => t.name === request.params.name && t.protocol === "http");
    if (tool === undefined) {
      // MCP tools are invoked by their prefixed name, as /mcp lists them.
      const result = await gateway
        .callTool(request.params.name, request.body as Record<string, unknown>)
        .catch(() => undefined);
      if (result !== undefined) return reply.code(result.isError === true ? 502 : 200).send(result);
      return reply.code(404).send({
        error: `no tool named "${request.params.name}"; GET /tools lists the tools of this agent`,
      });
    }
    metrics.toolCalls.inc({ tool: tool.name });
    const health = httpHealth.get(tool.name);
    if (health !== undefined && !health.isAvailable(Date.now())) {
      metrics.toolErrors.inc({ tool: tool.name, error_type: "unavailable" });
      return reply.code(503).send({
        error: `tool "${tool.name}" is unavailable (${health.reason}); it is tried again within ${UNAVAILABLE_MS / 1000}s`,
      });
    }
    try {
      const answer = await invokeHttpTool(tool, secrets.get(tool.name), request.body, agentGone(reply));
      health?.succeeded();
      if (answer.status >= 400) metrics.toolErrors.inc({ tool: tool.name, error_type: "error" });
      return reply.code(answer.status).send(answer.body);
    } catch (error) {
      if (!(error instanceof ToolCallError)) throw error;
      health?.failed(error.message, Date.now());
      metrics.toolErrors.inc({ tool: tool.name, error_type: error.errorType });
      return reply.code(error.status).send({ error: error.message });
    }
  });

  app.all("/mcp", async (request, reply) => {
    reply.hijack();
    await current().gateway.handle(request.raw, reply.raw, request.body);
  });
}
