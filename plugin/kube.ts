// The plugin's one door to the API server: kubeconfig, context and namespace resolved as kubectl
// resolves them (@kubernetes/client-node), REST calls and the attach/exec WebSockets, each with
// a deadline and cancelled by the caller's signal (Ctrl-C).
import type { Readable, Writable } from "node:stream";
import { Attach, Exec, HttpMethod, KubeConfig, RequestContext, type V1Status } from "@kubernetes/client-node";
import { WebSocketHandler } from "@kubernetes/client-node/dist/web-socket-handler.js";
import { fetch, type Response } from "undici";
import WebSocket from "ws";
import { deadline, formatMs } from "../operator/kube/deadline.ts";
import { type ApiCall, ApiError, PluginError } from "./errors.ts";

export interface ConnectionFlags {
  kubeconfig?: string | undefined;
  context?: string | undefined;
  namespace?: string | undefined;
  requestTimeoutMs: number;
}

export interface Kube {
  readonly namespace: string;
  /** A GET, its JSON body parsed; an ApiError for any answer but 2xx. */
  getJson<T>(call: ApiCall, path: string, query?: Record<string, string>): Promise<T>;
  /** A GET whose body is text (a pod proxy's /metrics), read in full within the deadline. */
  getText(call: ApiCall, path: string, query?: Record<string, string>, timeoutMs?: number): Promise<string>;
  /** A GET whose body streams (logs): the deadline covers the answer's headers; the body runs until it ends or `signal` aborts. */
  stream(call: ApiCall, path: string, query: Record<string, string>, signal: AbortSignal): Promise<Readable>;
  /** Attach to or exec in a pod's container over the API server's WebSocket. */
  connect(request: StreamRequest): Promise<StreamSession>;
}

/** A replica's container: in a pod (pods/attach, pods/exec), or on an AgentHost (the operator's agenttypes/exec). */
export type StreamTarget = { pod: string } | { agentType: string; replica: number };

export interface StreamRequest {
  kind: "attach" | "exec";
  target: StreamTarget;
  container: string;
  command?: string[];
  stdin: Readable | null;
  stdout: Writable;
  stderr: Writable | null;
  tty: boolean;
  signal: AbortSignal;
}

export interface StreamSession {
  /** Resolves when the session ends: the remote side closed it, or `close()` was called. */
  readonly ended: Promise<{ status?: V1Status }>;
  close(): void;
}

/** `cancel` (Ctrl-C) ends any call under way; each call also has its own deadline. */
export function loadKube(flags: ConnectionFlags, cancel?: AbortSignal): Kube {
  const kc = new KubeConfig();
  try {
    if (flags.kubeconfig !== undefined) kc.loadFromFile(flags.kubeconfig);
    else kc.loadFromDefault();
  } catch (error) {
    throw new PluginError(`cannot read the kubeconfig: ${(error as Error).message}`);
  }
  if (flags.context !== undefined) {
    if (kc.getContextObject(flags.context) === null)
      throw new PluginError(`context "${flags.context}" does not exist in the kubeconfig`);
    kc.setCurrentContext(flags.context);
  }
  const cluster = kc.getCurrentCluster();
  if (cluster === null)
    throw new PluginError("no cluster in the kubeconfig: set KUBECONFIG, --kubeconfig or --context");
  const namespace = flags.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default";
  const timeoutMs = flags.requestTimeoutMs;

  async function send(
    call: ApiCall,
    path: string,
    query: Record<string, string>,
    signal: AbortSignal,
    ms = timeoutMs,
  ) {
    const url = new URL(cluster?.server + path);
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    const ctx = new RequestContext(url.toString(), HttpMethod.GET);
    await kc.applySecurityAuthentication(ctx);
    let response: Response;
    try {
      response = await fetch(url, { headers: ctx.getHeaders(), dispatcher: ctx.getDispatcher(), signal });
    } catch (error) {
      throw unreachable(call, cluster?.server as string, error, signal, ms);
    }
    if (!response.ok) throw await apiErrorOf(response, call);
    return response;
  }

  function unreachable(
    call: ApiCall,
    server: string,
    error: unknown,
    signal: AbortSignal,
    ms = timeoutMs,
  ): PluginError {
    if (signal.aborted && signal.reason instanceof DOMException && signal.reason.name === "TimeoutError")
      return new PluginError(
        `${call.verb} ${call.resource}: no answer from ${server} within ${formatMs(ms)} (transient: try again, or raise --request-timeout)`,
      );
    if (signal.aborted) return new PluginError("cancelled", 130);
    const cause = (error as { cause?: Error }).cause?.message ?? (error as Error).message;
    return new PluginError(`cannot reach the API server at ${server}: ${cause}`);
  }

  return {
    namespace,
    async getJson<T>(call: ApiCall, path: string, query: Record<string, string> = {}) {
      const clock = deadline(timeoutMs, cancel);
      try {
        const response = await send(call, path, query, clock.signal);
        return (await response.json()) as T;
      } catch (error) {
        if (error instanceof PluginError || error instanceof ApiError) throw error;
        throw unreachable(call, cluster.server, error, clock.signal);
      } finally {
        clock.clear();
      }
    },
    async getText(call: ApiCall, path: string, query: Record<string, string> = {}, ms = timeoutMs) {
      const clock = deadline(ms, cancel);
      try {
        const response = await send(call, path, query, clock.signal, ms);
        return await response.text();
      } catch (error) {
        if (error instanceof PluginError || error instanceof ApiError) throw error;
        throw unreachable(call, cluster.server, error, clock.signal, ms);
      } finally {
        clock.clear();
      }
    },
    async stream(call: ApiCall, path: string, query: Record<string, string>, signal: AbortSignal) {
      const clock = deadline(timeoutMs, signal);
      const response = await send(call, path, query, clock.signal).finally(() => clock.clear());
      if (response.body === null)
        throw new PluginError(`${call.verb} ${call.resource}: the answer has no body`);
      const { Readable } = await import("node:stream");
      // The body keeps following `signal` alone once the headers are in.
      return Readable.fromWeb(response.body as import("node:stream/web").ReadableStream, { signal });
    },
    connect: (request) => connectStream(kc, namespace, timeoutMs, request),
  };
}

async function apiErrorOf(response: Response, call: ApiCall): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  try {
    const status = JSON.parse(text) as { message?: string; reason?: string };
    return new ApiError(response.status, status.reason, status.message ?? text, call);
  } catch {
    return new ApiError(response.status, undefined, text.trim() || response.statusText, call);
  }
}

/**
 * client-node's Attach and Exec over a WebSocket we open ourselves, so that the deadline can
 * end a connection that hangs, Ctrl-C can end one at any time, and a refusal (403) keeps the
 * API server's Status message instead of "Unexpected server response".
 */
async function connectStream(
  kc: KubeConfig,
  namespace: string,
  timeoutMs: number,
  request: StreamRequest,
): Promise<StreamSession> {
  const onHost = "agentType" in request.target;
  const name = "agentType" in request.target ? request.target.agentType : request.target.pod;
  const call: ApiCall = {
    verb: "create",
    resource: onHost ? `agenttypes/${request.kind}` : `pods/${request.kind}`,
    namespace,
    name,
  };
  const what = onHost
    ? `replica ${"replica" in request.target ? request.target.replica : 0} of AgentType ${name}`
    : `pod ${name}`;
  let socket: WebSocket | undefined;
  let refusal: Promise<ApiError> | undefined;
  const handler = new WebSocketHandler(kc, (uri, protocols, opts) => {
    socket = new WebSocket(uri, protocols, opts);
    socket.on("unexpected-response", (_req, res) => {
      refusal = new Promise((resolve) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let status: { message?: string; reason?: string } = {};
          try {
            status = JSON.parse(text);
          } catch {}
          resolve(new ApiError(res.statusCode ?? 0, status.reason, status.message ?? text.trim(), call));
          // Only once the refusal is read: ending the socket earlier would cut its body off.
          socket?.terminate();
        });
      });
    });
    return socket;
  });
  let status: V1Status | undefined;
  // An agent on a host: the same protocol, at the operator's aggregated API instead of the pod's.
  const located =
    "agentType" in request.target
      ? hostConnector(handler, namespace, request.target.agentType, request.target.replica)
      : handler;
  // client-node's Attach reads no status (channel 3): read it here, so a failed attach says why.
  const connector =
    request.kind === "attach"
      ? statusReader(located, (s) => {
          status = s;
        })
      : located;
  const clock = deadline(timeoutMs, request.signal);
  const abort = () => socket?.terminate();
  clock.signal.addEventListener("abort", abort, { once: true });
  const opening =
    request.kind === "attach"
      ? new Attach(kc, connector).attach(
          namespace,
          name,
          request.container,
          request.stdout,
          request.stderr,
          request.stdin,
          request.tty,
        )
      : new Exec(kc, connector).exec(
          namespace,
          name,
          request.container,
          request.command ?? [],
          request.stdout,
          request.stderr,
          request.stdin,
          request.tty,
          (s) => {
            status = s;
          },
        );
  let opened: WebSocket;
  try {
    opened = (await opening) as unknown as WebSocket;
  } catch (error) {
    if (refusal !== undefined) throw await refusal;
    if (clock.expired)
      throw new PluginError(
        `${request.kind} to ${what}: no connection within ${formatMs(timeoutMs)} (transient: try again, or raise --request-timeout)`,
      );
    if (request.signal.aborted) throw new PluginError("cancelled", 130);
    throw new PluginError(`${request.kind} to ${what} failed: ${(error as Error).message}`);
  } finally {
    clock.signal.removeEventListener("abort", abort);
    clock.clear();
  }
  const ended = new Promise<{ status?: V1Status }>((resolve) => {
    const done = () => resolve(status === undefined ? {} : { status });
    if (opened.readyState === WebSocket.CLOSED) done();
    else opened.once("close", done);
  });
  const close = () => opened.close();
  request.signal.addEventListener("abort", close, { once: true });
  return { ended, close };
}

/** A connector that hands each Status the server sends on channel 3 to `onStatus`. */
function statusReader(inner: WebSocketHandler, onStatus: (status: V1Status) => void) {
  return {
    connect: (
      path: string,
      text: Parameters<WebSocketHandler["connect"]>[1],
      binary: Parameters<WebSocketHandler["connect"]>[2],
    ) =>
      inner.connect(path, text, (stream: number, buff: Buffer) => {
        if (stream === WebSocketHandler.StatusStream && buff.length > 0) {
          try {
            onStatus(JSON.parse(buff.toString("utf8")) as V1Status);
          } catch {}
        }
        return binary === null ? true : binary(stream, buff);
      }),
  } as unknown as WebSocketHandler;
}

/** Where the operator serves agenttypes/exec and agenttypes/log (docs/adr/0014-host-consoles.md). */
export const SUBRESOURCES_PREFIX = "/apis/subresources.agenttype.dev/v1alpha1";

export function agentSubresourcePath(
  namespace: string,
  agentType: string,
  subresource: "log" | "exec" | "attach",
) {
  return `${SUBRESOURCES_PREFIX}/namespaces/${encodeURIComponent(namespace)}/agenttypes/${encodeURIComponent(agentType)}/${subresource}`;
}

/**
 * client-node's Attach and Exec build a pod's path; for an agent on a host the same request
 * (its query: command, container, stdin, stdout, stderr, tty) goes to the AgentType's
 * subresource of the same name, with the replica added.
 */
function hostConnector(handler: WebSocketHandler, namespace: string, agentType: string, replica: number) {
  return {
    connect: (
      path: string,
      text: Parameters<WebSocketHandler["connect"]>[1],
      binary: Parameters<WebSocketHandler["connect"]>[2],
    ) => {
      const url = new URL(path, "https://pod.invalid");
      const subresource = url.pathname.endsWith("/attach") ? "attach" : "exec";
      url.searchParams.set("replica", String(replica));
      return handler.connect(
        `${agentSubresourcePath(namespace, agentType, subresource)}?${url.searchParams}`,
        text,
        binary,
      );
    },
  } as unknown as WebSocketHandler;
}
