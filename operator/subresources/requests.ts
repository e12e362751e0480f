// The requests the aggregated API answers, read from a method and URL, each refusal naming the
// query parameter it is about. Pure.
import { ROLE_AGENT, ROLE_SIDECAR } from "../drivers/replica.ts";
import { SUBRESOURCE_GROUP } from "./access-review.ts";

export const SUBRESOURCE_VERSION = "v1alpha1";
export const GROUP_VERSION = `${SUBRESOURCE_GROUP}/${SUBRESOURCE_VERSION}`;
const PREFIX = `/apis/${GROUP_VERSION}`;

/** The subresources served, with the HTTP verb RBAC sees and the one the action means. */
export const SUBRESOURCES = {
  log: { httpVerb: "get", verb: "get" },
  exec: { httpVerb: "get", verb: "create" },
  attach: { httpVerb: "get", verb: "create" },
} as const;

export type Subresource = keyof typeof SUBRESOURCES;

export interface Target {
  namespace: string;
  name: string;
  replica: number;
  /** The role of the container on the host: the agent's, or its sidecar's. */
  container: typeof ROLE_AGENT | typeof ROLE_SIDECAR;
}

export type SubresourceRequest =
  | { kind: "discovery" }
  | {
      kind: "log";
      target: Target;
      follow: boolean;
      tailLines?: number;
      sinceSeconds?: number;
      timestamps: boolean;
    }
  | { kind: "exec"; target: Target; command: string[]; stdin: boolean; tty: boolean }
  | { kind: "attach"; target: Target };

export interface Refusal {
  code: number;
  reason: string;
  message: string;
}

const refuse = (code: number, reason: string, message: string): Refusal => ({ code, reason, message });
const badRequest = (message: string) => refuse(400, "BadRequest", message);

/** The discovery document of the group version: what `kubectl api-resources` lists. */
export function discovery(): Record<string, unknown> {
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: GROUP_VERSION,
    resources: Object.entries(SUBRESOURCES).map(([name, s]) => ({
      name: `agenttypes/${name}`,
      singularName: "",
      namespaced: true,
      kind: "AgentType",
      verbs: [s.httpVerb],
    })),
  };
}

function nonNegative(query: URLSearchParams, name: string, min = 0): number | Refusal | undefined {
  const value = query.get(name);
  if (value === null) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min)
    return badRequest(`${name}: expected an integer of at least ${min}, got "${value}"`);
  return Number(value);
}

function flag(query: URLSearchParams, name: string): boolean | Refusal {
  const value = query.get(name);
  if (value === null || value === "false" || value === "0") return false;
  if (value === "true" || value === "1" || value === "") return true;
  return badRequest(`${name}: expected true or false, got "${value}"`);
}

const isRefusal = (v: unknown): v is Refusal => typeof v === "object" && v !== null && "code" in v;

/** What a request to the operator's aggregated API asks for, or why it is refused. */
export function parseRequest(method: string, url: URL): SubresourceRequest | Refusal {
  const path = url.pathname.replace(/\/+$/, "");
  if (path === PREFIX) {
    return method === "GET" ? { kind: "discovery" } : refuse(405, "MethodNotAllowed", `${method} ${path}`);
  }
  const match = new RegExp(`^${PREFIX}/namespaces/([^/]+)/agenttypes/([^/]+)/([^/]+)$`).exec(path);
  if (match === null) return refuse(404, "NotFound", `no such path: ${path}`);
  const [, namespace, name, subresource] = match.map((m) => decodeURIComponent(m)) as [
    string,
    string,
    string,
    string,
  ];
  if (!(subresource in SUBRESOURCES))
    return refuse(
      404,
      "NotFound",
      `agenttypes/${subresource} is not served: ${Object.keys(SUBRESOURCES)
        .map((s) => `agenttypes/${s}`)
        .join(", ")} are`,
    );
  if (method !== "GET")
    return refuse(405, "MethodNotAllowed", `${method} agenttypes/${subresource}: only GET`);
  const query = url.searchParams;
  const replica = nonNegative(query, "replica") ?? 0;
  if (isRefusal(replica)) return replica;
  const container = query.get("container") ?? "agent";
  if (container !== ROLE_AGENT && container !== ROLE_SIDECAR)
    return badRequest(`container: expected agent or sidecar, got "${container}"`);
  const target: Target = { namespace, name, replica, container };

  if (subresource === "log") {
    const follow = flag(query, "follow");
    if (isRefusal(follow)) return follow;
    const timestamps = flag(query, "timestamps");
    if (isRefusal(timestamps)) return timestamps;
    const tailLines = nonNegative(query, "tailLines");
    if (isRefusal(tailLines)) return tailLines;
    const sinceSeconds = nonNegative(query, "sinceSeconds", 1);
    if (isRefusal(sinceSeconds)) return sinceSeconds;
    for (const unsupported of ["sinceTime", "limitBytes", "previous"])
      if (query.has(unsupported))
        return badRequest(
          `${unsupported}: not supported for agents on AgentHosts (tailLines and sinceSeconds are)`,
        );
    return {
      kind: "log",
      target,
      follow,
      timestamps,
      ...(tailLines === undefined ? {} : { tailLines }),
      ...(sinceSeconds === undefined ? {} : { sinceSeconds }),
    };
  }

  if (subresource === "attach") {
    if (container !== ROLE_AGENT)
      return badRequest(`container: only the agent has a console to attach to, not the ${container}`);
    return { kind: "attach", target };
  }

  const command = query.getAll("command");
  if (command.length === 0 || command[0] === "") return badRequest("command: at least one is required");
  const stdin = flag(query, "stdin");
  if (isRefusal(stdin)) return stdin;
  const tty = flag(query, "tty");
  if (isRefusal(tty)) return tty;
  if (tty && !stdin)
    return badRequest("tty: a terminal needs stdin on an AgentHost (kubectl agenttype exec -i -t)");
  return { kind: "exec", target, command, stdin, tty };
}

export { isRefusal };
