// What went wrong calling a tool, typed so that the agent's status code and the metrics follow
// from the kind and never from message text; and how long a failing tool server is set aside.
import type { CooldownPolicy } from "../cooldown.ts";

/** A tool server that failed or hung is left out for 30 s, then tried again. */
export const TOOL_COOLDOWN: CooldownPolicy = { failures: 1, ms: 30_000 };

export type ToolErrorKind =
  /** The server did not answer within the tool's timeoutSeconds. */
  | "timeout"
  /** The server could not be reached or broke the connection. */
  | "unavailable"
  /** The server is set aside after a failure and is not called. */
  | "set_aside"
  /** The agent named a tool it does not have. */
  | "unknown_tool";

const STATUS: Readonly<Record<ToolErrorKind, number>> = {
  timeout: 504,
  unavailable: 502,
  set_aside: 503,
  unknown_tool: 404,
};

export class ToolError extends Error {
  readonly kind: ToolErrorKind;

  constructor(kind: ToolErrorKind, message: string) {
    super(message);
    this.name = "ToolError";
    this.kind = kind;
  }

  /** The status /tools/{name}/invoke answers with. */
  get status(): number {
    return STATUS[this.kind];
  }

  /** The error_type label of agenttype_tool_errors_total. */
  get metricType(): string {
    return this.kind === "timeout" ? "timeout" : "unavailable";
  }
}

/** The refusal of a call to a tool that is set aside; `subject` names it: tool "x", tool server "y". */
export function setAside(subject: string, reason: string | undefined): ToolError {
  return new ToolError(
    "set_aside",
    `${subject} is unavailable (${reason ?? "failed"}); it is tried again within ${TOOL_COOLDOWN.ms / 1000}s`,
  );
}
