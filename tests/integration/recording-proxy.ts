// A reverse proxy in front of the test cluster's API server that records every request going
// through it and authenticates them all with one bearer token, so that a process pointed at it
// acts as that identity (a ServiceAccount) and leaves a list of what it asked for.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { Agent, request } from "node:https";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  status: number;
}

export interface RecordingProxy {
  /** http://127.0.0.1:PORT */
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export async function startRecordingProxy(upstream: {
  server: string;
  ca?: Buffer;
  token: string;
}): Promise<RecordingProxy> {
  const target = new URL(upstream.server);
  const agent = new Agent({ keepAlive: true, ...(upstream.ca === undefined ? {} : { ca: upstream.ca }) });
  const requests: RecordedRequest[] = [];
  const forward = (incoming: IncomingMessage, outgoing: ServerResponse) => {
    const { host: _, authorization: __, ...headers } = incoming.headers;
    const proxied = request(
      {
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method: incoming.method,
        path: incoming.url,
        headers: { ...headers, authorization: `Bearer ${upstream.token}` },
        agent,
      },
      (answer) => {
        requests.push({
          method: incoming.method ?? "",
          url: incoming.url ?? "",
          status: answer.statusCode ?? 0,
        });
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
        // A watch the client gives up on: stop it upstream too.
        outgoing.on("close", () => answer.destroy());
      },
    );
    proxied.on("error", (error) => {
      if (!outgoing.headersSent) outgoing.writeHead(502);
      outgoing.end(error.message);
    });
    incoming.pipe(proxied);
  };
  const server = createServer(forward);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
        agent.destroy();
      }),
  };
}

const WRITE_VERBS: Record<string, string> = { POST: "create", PUT: "update", PATCH: "patch" };

function verbOf(method: string, named: boolean, watch: boolean): string {
  if (method === "GET") return named ? "get" : watch ? "watch" : "list";
  if (method === "DELETE") return named ? "delete" : "deletecollection";
  const verb = WRITE_VERBS[method];
  if (verb === undefined) throw new Error(`no RBAC verb for HTTP ${method}`);
  return verb;
}

/** What RBAC checks for a resource request: group, resource (with subresource) and verbs. */
export interface RbacAttributes {
  group: string;
  /** "plural" or "plural/subresource" */
  resource: string;
  namespace?: string;
  verbs: string[];
}

/**
 * The RBAC attributes of a recorded request, as kube-apiserver derives them (RequestInfo): GET
 * of an object is get, of a collection list (watch with ?watch=true); POST create, PUT update,
 * PATCH patch, DELETE delete. A PATCH answered 201 created the object (server-side apply), for
 * which the API server also checks create.
 */
export function rbacAttributes({ method, url, status }: RecordedRequest): RbacAttributes {
  const { pathname, searchParams } = new URL(url, "http://proxy");
  const parts = pathname.split("/").filter(Boolean);
  let rest: string[];
  let group: string;
  if (parts[0] === "api" && parts.length >= 3) {
    group = "";
    rest = parts.slice(2);
  } else if (parts[0] === "apis" && parts.length >= 4) {
    group = parts[1] ?? "";
    rest = parts.slice(3);
  } else {
    throw new Error(`${method} ${url}: not a resource request`);
  }
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [plural = "", name, subresource] = rest;
  const watch = ["true", "1"].includes(searchParams.get("watch") ?? "");
  const verb = verbOf(method, name !== undefined, watch);
  const verbs = method === "PATCH" && status === 201 ? [verb, "create"] : [verb];
  return {
    group,
    resource: subresource === undefined ? plural : `${plural}/${subresource}`,
    ...(namespace === undefined ? {} : { namespace }),
    verbs,
  };
}
