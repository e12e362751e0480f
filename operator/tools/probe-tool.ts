// Probes one AgentTool's server the way an agent would reach it, within a short deadline:
// an HTTP tool must answer a request on its endpoint, an MCP server must answer `initialize`.
import { request } from "undici";
import type { AgentTool } from "../../api/agenttool.ts";
import { toolUrl } from "../build/sidecar-config.ts";
import { deadline, formatMs } from "../kube/deadline.ts";

export interface ProbeResult {
  available: boolean;
  /** Condition reason: Answered, Initialized, Unreachable, Timeout, HttpError, NotMcp. */
  reason: string;
  message: string;
}

/** A probe is a liveness check, not a tool call: a server that needs longer is not usable. */
export const PROBE_TIMEOUT_MS = 5_000;
// Protocol version of the initialize request; servers answer with the one they speak.
const MCP_PROTOCOL_VERSION = "2025-06-18";
// What a probe reads of an answer at most: enough for an initialize result.
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * Whether an HTTP status shows a live tool endpoint. The probe sends no credentials and no
 * arguments, so a refusal of the request (400, 401, 403, 405, 415, 422) still proves a
 * server that handles this path; 404 and 5xx do not.
 */
export function liveHttpStatus(status: number): boolean {
  return status < 400 || [400, 401, 403, 405, 415, 422].includes(status);
}

/** Whether an MCP answer (JSON or one server-sent event) holds an initialize result. */
export function initializeAnswered(contentType: string, body: string): boolean {
  const json = contentType.includes("text/event-stream")
    ? body
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trim())
        .join("")
    : body;
  try {
    const message = JSON.parse(json) as { result?: { protocolVersion?: unknown } };
    return typeof message.result?.protocolVersion === "string";
  } catch {
    return false;
  }
}

export async function probeTool(
  tool: AgentTool,
  signal: AbortSignal,
  timeoutMs = PROBE_TIMEOUT_MS,
): Promise<ProbeResult> {
  const url = toolUrl({ name: tool.metadata.name, version: tool.spec.version, agentTool: tool });
  const limit = deadline(timeoutMs, signal);
  const mcp = tool.spec.protocol === "mcp";
  try {
    const answer = await request(url, {
      method: mcp ? "POST" : "GET",
      signal: limit.signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      headers: mcp
        ? { "content-type": "application/json", accept: "application/json, text/event-stream" }
        : { accept: "application/json" },
      ...(mcp
        ? {
            body: JSON.stringify({
              jsonrpc: "2.0",
              id: 1,
              method: "initialize",
              params: {
                protocolVersion: MCP_PROTOCOL_VERSION,
                capabilities: {},
                clientInfo: { name: "agenttype-operator-probe", version: "1" },
              },
            }),
          }
        : {}),
    });
    let body = "";
    for await (const chunk of answer.body) {
      body += chunk;
      if (
        body.length > MAX_ANSWER_BYTES ||
        (mcp && initializeAnswered(String(answer.headers["content-type"] ?? ""), body))
      )
        break;
    }
    answer.body.destroy();
    if (!mcp) {
      return liveHttpStatus(answer.statusCode)
        ? { available: true, reason: "Answered", message: `${url} answered HTTP ${answer.statusCode}` }
        : { available: false, reason: "HttpError", message: `${url} answered HTTP ${answer.statusCode}` };
    }
    if (answer.statusCode >= 300) {
      return {
        available: false,
        reason: "HttpError",
        message: `initialize at ${url} answered HTTP ${answer.statusCode}`,
      };
    }
    return initializeAnswered(String(answer.headers["content-type"] ?? ""), body)
      ? { available: true, reason: "Initialized", message: `the MCP server at ${url} answered initialize` }
      : { available: false, reason: "NotMcp", message: `${url} answered initialize without an MCP result` };
  } catch (error) {
    if (signal.aborted && !limit.expired) throw signal.reason;
    if (limit.expired) {
      return {
        available: false,
        reason: "Timeout",
        message: `${url}: no answer within ${formatMs(timeoutMs)}`,
      };
    }
    const { message, cause } = error as Error & { cause?: Error };
    return {
      available: false,
      reason: "Unreachable",
      message: `${url}: ${message}${cause?.message ? ` (${cause.message})` : ""}`,
    };
  } finally {
    limit.clear();
  }
}
