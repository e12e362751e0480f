// Calls an http tool: POSTs the agent's input as JSON with the tool's credential added, within
// the tool's timeout. Only the status and body come back; the tool server's headers never do.
import type { SidecarTool } from "../../api/sidecarconfig.ts";
import { deadline } from "../deadline.ts";
import { readText, send, target } from "../http-client.ts";
import { ToolError } from "./errors.ts";

export interface ToolAnswer {
  status: number;
  body: unknown;
}

/** The header the tool's credential travels in, or none. */
export function authHeaders(tool: SidecarTool, secret: string | undefined): Record<string, string> {
  if (tool.auth === undefined || secret === undefined) return {};
  return { [tool.auth.header]: tool.auth.scheme === "" ? secret : `${tool.auth.scheme} ${secret}` };
}

export async function invokeHttpTool(
  tool: SidecarTool,
  secret: string | undefined,
  input: unknown,
  agentSignal: AbortSignal,
): Promise<ToolAnswer> {
  const bound = deadline(
    tool.timeoutSeconds * 1000,
    () => new ToolError("timeout", `tool "${tool.name}" did not answer within ${tool.timeoutSeconds}s`),
    agentSignal,
  );
  try {
    const response = await send(target(tool.url), {
      method: "POST",
      headers: { accept: "application/json", ...authHeaders(tool, secret) },
      body: JSON.stringify(input ?? {}),
      signal: bound.signal,
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
    if (bound.signal.reason instanceof ToolError) throw bound.signal.reason;
    // The agent left: nothing failed on the tool's side, so it is not set aside.
    if (agentSignal.aborted) throw agentSignal.reason;
    throw new ToolError(
      "unavailable",
      `tool "${tool.name}" at ${tool.url} failed: ${(error as Error).message}`,
    );
  } finally {
    bound.finish();
  }
}
