// Calls an http tool: POSTs the agent's input as JSON with the tool's credential added, within
// the tool's timeout. Only the status and body come back; the tool server's headers never do.
import type { SidecarTool } from "../../api/sidecarconfig.ts";
import { readText, send, target } from "../http-client.ts";

export interface ToolAnswer {
  status: number;
  body: unknown;
}

/** The header the tool's credential travels in, or none. */
export function authHeaders(tool: SidecarTool, secret: string | undefined): Record<string, string> {
  if (tool.auth === undefined || secret === undefined) return {};
  return { [tool.auth.header]: tool.auth.scheme === "" ? secret : `${tool.auth.scheme} ${secret}` };
}

export class ToolCallError extends Error {
  readonly status: number;
  readonly errorType: "timeout" | "unavailable";

  constructor(status: number, errorType: "timeout" | "unavailable", message: string) {
    super(message);
    this.name = "ToolCallError";
    this.status = status;
    this.errorType = errorType;
  }
}

export async function invokeHttpTool(
  tool: SidecarTool,
  secret: string | undefined,
  input: unknown,
  agentSignal: AbortSignal,
): Promise<ToolAnswer> {
  const timeout = AbortSignal.timeout(tool.timeoutSeconds * 1000);
  try {
    const response = await send(target(tool.url), {
      method: "POST",
      headers: { accept: "application/json", ...authHeaders(tool, secret) },
      body: JSON.stringify(input ?? {}),
      signal: AbortSignal.any([timeout, agentSignal]),
    });
    const text = await readText(response, 16 * 1024 * 1024);
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // A tool that answers plain text is still an answer; the agent gets it as a string.
    }
    return { status: response.statusCode ?? 502, body };
  } catch (error) {
    if (timeout.aborted) {
      throw new ToolCallError(
        504,
        "timeout",
        `tool "${tool.name}" did not answer within ${tool.timeoutSeconds}s`,
      );
    }
    throw new ToolCallError(
      502,
      "unavailable",
      `tool "${tool.name}" at ${tool.url} failed: ${(error as Error).message}`,
    );
  }
}
