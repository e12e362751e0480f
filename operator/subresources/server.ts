// The operator's aggregated API (docs/adr/0014-host-consoles.md): `log`, `exec` and `attach` of agents on
// AgentHosts, as subresources of AgentType in the group subresources.agenttype.dev, served over
// TLS to kube-apiserver's front proxy only. The aggregator authenticates the user and checks
// RBAC for the HTTP verb; each request is checked again here with a SubjectAccessReview for
// the verb the action means, and only then does a call reach the host over the operator's own
// SSH connection. Every exec is written as an audit line and an Event on the AgentType.
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { Logger } from "pino";
import { type WebSocket, WebSocketServer } from "ws";
import type { AgentType } from "../../api/agenttype.ts";
import { within } from "../drivers/call.ts";
import type { ContainerDriver, ContainerInfo, LogLine } from "../drivers/driver.ts";
import { isDriverError } from "../drivers/errors.ts";
import { LABEL_ROLE, replicaLabels } from "../drivers/labels.ts";
import { hostDriver } from "../hosts/host-access.ts";
import type { HostConnections } from "../hosts/host-connections.ts";
import { isNotFound, type KubeClient, type KubeObject } from "../kube/client.ts";
import type { EventRecorder } from "../kube/events.ts";
import { resources } from "../kube/resources.ts";
import { reviewAccess, SUBRESOURCE_GROUP } from "./access-review.ts";
import type { FrontProxyConfig, RemoteUser } from "./front-proxy.ts";
import { remoteUser } from "./front-proxy.ts";
import { advance, START } from "./log-follow.ts";
import { exitStatus, type Relayed, relay } from "./relay.ts";
import {
  discovery,
  isRefusal,
  parseRequest,
  type Refusal,
  SUBRESOURCES,
  type SubresourceRequest,
  type Target,
} from "./requests.ts";
import type { SessionLimit } from "./session-limit.ts";

/** Each host call's deadline (a log read, a listing). */
const HOST_CALL_MS = 30_000;
/** How long an exec may run: its output comes back when it ends. */
export const EXEC_DEADLINE_MS = 300_000;
/** How often `follow` reads the log again. */
const FOLLOW_INTERVAL_MS = 1_000;
/** The channel protocols spoken, newest first; stdout 1, stderr 2, status 3 in each. */
const CHANNEL_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

export interface SubresourceServerDeps {
  client: KubeClient;
  hosts: HostConnections;
  events: EventRecorder;
  logger: Logger;
  frontProxy: FrontProxyConfig;
  tls: { key: string; certificate: string };
  /** The sessions (attach, exec -i/-t) open to each host, bounded. */
  sessions: SessionLimit;
}

/** A refusal as the API server words one: a Status object. */
function status(refusal: Refusal): Record<string, unknown> {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: refusal.message,
    reason: refusal.reason,
    code: refusal.code,
  };
}

class RefusedError extends Error {
  readonly refusal: Refusal;
  constructor(refusal: Refusal) {
    super(refusal.message);
    this.refusal = refusal;
  }
}

const refused = (code: number, reason: string, message: string) =>
  new RefusedError({ code, reason, message });

/** The replica's container asked for, on its host, with the driver to reach it. */
interface Located {
  agent: AgentType;
  host: string;
  driver: ContainerDriver;
  container: ContainerInfo;
}

export class SubresourceServer {
  readonly #deps: SubresourceServerDeps;
  readonly #server: Server;
  readonly #sockets = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => CHANNEL_PROTOCOLS.find((p) => offered.has(p)) ?? false,
  });
  readonly #closing = new AbortController();

  constructor(deps: SubresourceServerDeps) {
    this.#deps = deps;
    this.#server = createServer({
      key: deps.tls.key,
      cert: deps.tls.certificate,
      ca: deps.frontProxy.clientCa,
      requestCert: true,
      // Checked per request (`authorized`), so that a client without the front proxy's
      // certificate gets a Status saying so rather than a TLS alert.
      rejectUnauthorized: false,
    });
    this.#server.on("request", (req, res) => void this.#request(req, res));
    this.#server.on("upgrade", (req, socket, head) => void this.#upgrade(req, socket, head));
  }

  listen(port: number, host: string): Promise<string> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        this.#server.off("error", reject);
        const address = this.#server.address();
        resolve(typeof address === "string" ? address : `${address?.address}:${address?.port}`);
      });
    });
  }

  async close(): Promise<void> {
    this.#closing.abort();
    for (const ws of this.#sockets.clients) ws.terminate();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** The user the front proxy vouches for, or a refusal. */
  #user(req: IncomingMessage): RemoteUser {
    const socket = req.socket as TLSSocket;
    const cn = socket.authorized ? socket.getPeerCertificate().subject?.CN : undefined;
    const name = Array.isArray(cn) ? cn[0] : cn;
    const user = remoteUser(this.#deps.frontProxy, name, req.headersDistinct);
    if (typeof user === "string") throw refused(401, "Unauthorized", user);
    return user;
  }

  /** What the request asks, once the user is known and RBAC allows it. */
  async #admit(
    req: IncomingMessage,
    signal: AbortSignal,
  ): Promise<{ user: RemoteUser; request: SubresourceRequest }> {
    const user = this.#user(req);
    const request = parseRequest(req.method ?? "GET", new URL(req.url ?? "/", "https://localhost"));
    if (isRefusal(request)) throw new RefusedError(request);
    if (request.kind === "discovery") return { user, request };
    const { namespace, name } = request.target;
    const verb = SUBRESOURCES[request.kind].verb;
    const review = await reviewAccess(
      this.#deps.client,
      user,
      { verb, subresource: request.kind, namespace, name },
      signal,
    );
    if (!review.allowed)
      throw refused(
        403,
        "Forbidden",
        `agenttypes.${SUBRESOURCE_GROUP} "${name}" is forbidden: User "${user.username}" cannot ${verb} resource "agenttypes/${request.kind}" in API group "${SUBRESOURCE_GROUP}" in the namespace "${namespace}"${review.reason ? `: ${review.reason}` : ""}`,
      );
    return { user, request };
  }

  async #request(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const gone = new AbortController();
    const abort = () => gone.abort();
    res.on("close", abort);
    this.#closing.signal.addEventListener("abort", abort, { once: true });
    try {
      const { user, request } = await this.#admit(req, gone.signal);
      if (request.kind === "discovery") {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(discovery()));
        return;
      }
      if (request.kind !== "log")
        throw refused(
          400,
          "BadRequest",
          `${request.kind} speaks WebSocket (the channel protocol): upgrade the request`,
        );
      const located = await this.#locate(request.target, gone.signal);
      this.#deps.logger.info(
        { user: user.username, verb: "get", subresource: "log", ...where(request.target, located) },
        "serving the log of an agent on a host",
      );
      await this.#log(request, located, res, gone.signal);
    } catch (error) {
      // The client went (the end of a follow, Ctrl-C) or the operator is stopping: nobody to answer.
      if (gone.signal.aborted) {
        res.destroy();
        return;
      }
      const refusal = this.#refusal(error, req);
      if (!res.headersSent)
        res
          .writeHead(refusal.code, { "content-type": "application/json" })
          .end(JSON.stringify(status(refusal)));
      else res.destroy();
    } finally {
      this.#closing.signal.removeEventListener("abort", abort);
    }
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const gone = new AbortController();
    const abort = () => gone.abort();
    socket.on("close", abort);
    this.#closing.signal.addEventListener("abort", abort, { once: true });
    let release: (() => void) | undefined;
    try {
      const { user, request } = await this.#admit(req, gone.signal);
      if (request.kind !== "exec" && request.kind !== "attach")
        throw refused(400, "BadRequest", `${request.kind} is not served over WebSocket`);
      const located = await this.#locate(request.target, gone.signal);
      if (request.kind === "attach") {
        if (located.container.console === undefined)
          throw refused(
            400,
            "BadRequest",
            `AgentType "${request.target.name}" is not interactive: its agent on AgentHost ${located.host} has no terminal to attach to (set spec.interactive: true), or follow its output with kubectl agenttype logs ${request.target.name} -f`,
          );
        if (located.driver.attach === undefined)
          throw refused(
            400,
            "BadRequest",
            `AgentHost ${located.host} (driver ${located.driver.kind}) has no consoles to attach to`,
          );
      } else if ((request.stdin || request.tty) && located.driver.execSession === undefined)
        throw refused(
          400,
          "BadRequest",
          `${request.stdin ? "stdin" : "tty"}: AgentHost ${located.host} (driver ${located.driver.kind}) runs exec without a terminal or standard input`,
        );
      if (request.kind === "attach" || request.stdin || request.tty) {
        const { sessions } = this.#deps;
        release = sessions.take(located.host);
        if (release === undefined)
          throw refused(
            429,
            "TooManyRequests",
            `AgentHost ${located.host} has ${sessions.open(located.host)} sessions open through the operator (attach, exec -i/-t), the most the operator allows at once; one must end first`,
          );
      }
      const ws = await new Promise<WebSocket>((resolve) =>
        this.#sockets.handleUpgrade(req, socket, head, (ws) => resolve(ws)),
      );
      if (ws.protocol === "") {
        ws.close(1002, `speak one of ${CHANNEL_PROTOCOLS.join(", ")}`);
        return;
      }
      ws.on("close", abort);
      if (request.kind === "attach") await this.#attach(user, request.target, located, ws, gone.signal);
      else if (request.stdin || request.tty) await this.#execSession(user, request, located, ws, gone.signal);
      else await this.#exec(user, request.command, request.target, located, ws, gone.signal);
    } catch (error) {
      if (gone.signal.aborted) {
        socket.destroy();
        return;
      }
      const refusal = this.#refusal(error, req);
      if (socket.writable) {
        const body = JSON.stringify(status(refusal));
        socket.end(
          `HTTP/1.1 ${refusal.code} ${refusal.reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        );
      }
    } finally {
      release?.();
      this.#closing.signal.removeEventListener("abort", abort);
    }
  }

  /** What to answer for `error`; a failure of ours (not the user's) is also logged. */
  #refusal(error: unknown, req: IncomingMessage): Refusal {
    const refusal = refusalOf(error);
    if (refusal.code >= 500)
      this.#deps.logger.warn({ err: refusal.message, url: req.url }, "aggregated API call failed");
    return refusal;
  }

  /** The AgentType, its host's driver and the replica's container, or a refusal a user understands. */
  async #locate(target: Target, signal: AbortSignal): Promise<Located> {
    const { client, hosts } = this.#deps;
    let agent: AgentType;
    try {
      agent = await client.get<AgentType & KubeObject>(
        resources.agentType,
        target.namespace,
        target.name,
        signal,
      );
    } catch (error) {
      if (isNotFound(error))
        throw refused(
          404,
          "NotFound",
          `agenttypes.agenttype.dev "${target.name}" not found in namespace "${target.namespace}"`,
        );
      throw error;
    }
    const runtime = agent.spec.runtime?.type ?? "kubernetes";
    const hostName = agent.spec.runtime?.hostRef?.name;
    if (runtime === "kubernetes" || hostName === undefined)
      throw refused(
        400,
        "BadRequest",
        `AgentType "${target.name}" runs in pods: read its pods' log and exec in them (pods/log, pods/exec), as kubectl agenttype does`,
      );
    const raw = await client
      .get<KubeObject>(resources.agentHost, undefined, hostName, signal)
      .catch((error) => {
        if (isNotFound(error)) return undefined;
        throw error;
      });
    const access = await hostDriver(client, hosts, hostName, raw, runtime, signal);
    if ("reason" in access) throw refused(503, "ServiceUnavailable", `${access.reason}: ${access.message}`);
    const reachable = access.host.status?.conditions?.find((c) => c.type === "Reachable");
    const uid = String(agent.metadata.uid ?? "");
    let containers: ContainerInfo[];
    try {
      containers = await access.driver.list(
        {
          ...replicaLabels({ namespace: target.namespace, name: target.name, uid }, target.replica),
          [LABEL_ROLE]: target.container,
        },
        within(HOST_CALL_MS, signal),
      );
    } catch (error) {
      throw hostUnreachable(hostName, error, reachable);
    }
    const container = newest(containers);
    if (container === undefined) {
      const replicas = (agent.status?.hostReplicas ?? []).map((r) => r.replica).sort((a, b) => a - b);
      throw refused(
        404,
        "NotFound",
        replicas.includes(target.replica)
          ? `replica ${target.replica} of AgentType "${target.name}" has no ${target.container} container on AgentHost ${hostName} right now (it is being started or replaced)`
          : `replica ${target.replica} out of range: AgentType "${target.name}" has replicas ${replicas.join(", ") || "none"} (status.hostReplicas)`,
      );
    }
    return { agent, host: hostName, driver: access.driver, container };
  }

  async #log(
    request: Extract<SubresourceRequest, { kind: "log" }>,
    located: Located,
    res: ServerResponse,
    signal: AbortSignal,
  ): Promise<void> {
    const { driver, container, host } = located;
    const read = async (options: { tail?: number; since?: Date }) => {
      try {
        return await driver.logs(container.id, options, within(HOST_CALL_MS, signal));
      } catch (error) {
        if (isDriverError(error) && error.code === "NotFound") return undefined;
        throw hostUnreachable(host, error);
      }
    };
    const first = await read({
      ...(request.tailLines === undefined ? {} : { tail: request.tailLines }),
      ...(request.sinceSeconds === undefined
        ? {}
        : { since: new Date(Date.now() - request.sinceSeconds * 1000) }),
    });
    if (first === undefined)
      throw refused(
        404,
        "NotFound",
        `container ${container.id} of AgentType "${request.target.name}" is gone`,
      );
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
    const write = (lines: LogLine[]) => {
      for (const line of lines)
        res.write(`${request.timestamps ? `${line.time.toISOString()} ` : ""}${line.text}\n`);
    };
    let { fresh, cursor } = advance(START, first);
    write(fresh);
    while (request.follow && !signal.aborted) {
      await new Promise((r) => setTimeout(r, FOLLOW_INTERVAL_MS));
      if (signal.aborted) break;
      const lines = await read(cursor.since === undefined ? {} : { since: cursor.since });
      if (lines === undefined) break; // the container was removed: the stream ends, as a pod's does
      ({ fresh, cursor } = advance(cursor, lines));
      write(fresh);
    }
    res.end();
  }

  async #exec(
    user: RemoteUser,
    command: string[],
    target: Target,
    located: Located,
    ws: WebSocket,
    signal: AbortSignal,
  ): Promise<void> {
    const { driver, container, host, agent } = located;
    const started = new Date();
    const send = (channel: number, data: string | Buffer) => {
      const payload = Buffer.from(data);
      if (payload.length > 0 && ws.readyState === ws.OPEN)
        ws.send(Buffer.concat([Buffer.from([channel]), payload]));
    };
    let exitCode: number | undefined;
    let failure: string | undefined;
    let bytesOut = 0;
    try {
      const result = await driver.exec(container.id, command, within(EXEC_DEADLINE_MS, signal));
      exitCode = result.exitCode;
      bytesOut = Buffer.byteLength(result.stdout) + Buffer.byteLength(result.stderr);
      send(1, result.stdout);
      send(2, result.stderr);
      send(3, JSON.stringify(exitStatus(exitCode)));
    } catch (error) {
      failure = (error as Error).message;
      send(3, JSON.stringify({ metadata: {}, status: "Failure", message: failure, reason: "InternalError" }));
    } finally {
      ws.close(1000);
    }
    const ended = new Date();
    this.#deps.logger.info(
      {
        audit: true,
        user: user.username,
        groups: user.groups,
        verb: "create",
        subresource: "exec",
        ...where(target, located),
        command,
        start: started.toISOString(),
        end: ended.toISOString(),
        bytesOut,
        ...(exitCode === undefined ? {} : { exitCode }),
        ...(failure === undefined ? {} : { failure }),
      },
      "exec in an agent on a host",
    );
    await this.#deps.events.record(
      { apiVersion: agent.apiVersion, kind: agent.kind, metadata: agent.metadata } as KubeObject,
      "Normal",
      "Exec",
      `${user.username} ran ${JSON.stringify(command.join(" "))} in replica ${target.replica} on AgentHost ${host}: ${failure === undefined ? `exit code ${exitCode}` : `failed: ${failure}`}`,
    );
  }

  /** An interactive exec: the command's streams relayed both ways until it ends. */
  async #execSession(
    user: RemoteUser,
    request: Extract<SubresourceRequest, { kind: "exec" }>,
    located: Located,
    ws: WebSocket,
    signal: AbortSignal,
  ): Promise<void> {
    const { driver, container, host, agent } = located;
    const { target, command } = request;
    const started = new Date();
    const relayed = await relay(ws, signal, { terminal: request.tty }, (size) =>
      (driver.execSession as NonNullable<ContainerDriver["execSession"]>).call(
        driver,
        container.id,
        command,
        { stdin: request.stdin, ...(request.tty ? { terminal: size } : {}) },
        within(HOST_CALL_MS, signal),
      ),
    );
    this.#audit(user, "exec", target, located, started, relayed, { command });
    await this.#deps.events.record(
      objectOf(agent),
      "Normal",
      "Exec",
      `${user.username} ran ${JSON.stringify(command.join(" "))}${request.tty ? " on a terminal" : ""} in replica ${target.replica} on AgentHost ${host}: ${relayed.failure !== undefined ? `failed: ${relayed.failure}` : relayed.exitCode !== undefined ? `exit code ${relayed.exitCode}` : "ended when the client left"}`,
    );
  }

  /** A new watcher of the replica's console, until the user detaches or the console ends. */
  async #attach(user: RemoteUser, target: Target, located: Located, ws: WebSocket, signal: AbortSignal) {
    const { driver, container, host, agent } = located;
    const started = new Date();
    // The relay first: it listens for the client's first frames (its terminal's size) at once.
    const relaying = relay(ws, signal, { terminal: true }, (size) =>
      (driver.attach as NonNullable<ContainerDriver["attach"]>).call(
        driver,
        container.id,
        size,
        within(HOST_CALL_MS, signal),
      ),
    );
    await this.#deps.events.record(
      objectOf(agent),
      "Normal",
      "Attached",
      `${user.username} attached to replica ${target.replica} on AgentHost ${host}`,
    );
    this.#audit(user, "attach", target, located, started, await relaying, {});
  }

  #audit(
    user: RemoteUser,
    subresource: "exec" | "attach",
    target: Target,
    located: Located,
    started: Date,
    relayed: Relayed,
    extra: Record<string, unknown>,
  ): void {
    this.#deps.logger.info(
      {
        audit: true,
        user: user.username,
        groups: user.groups,
        verb: "create",
        subresource,
        ...where(target, located),
        ...extra,
        start: started.toISOString(),
        end: new Date().toISOString(),
        bytesIn: relayed.bytesIn,
        bytesOut: relayed.bytesOut,
        ...(relayed.exitCode === undefined ? {} : { exitCode: relayed.exitCode }),
        ...(relayed.failure === undefined ? {} : { failure: relayed.failure }),
      },
      subresource === "exec" ? "exec in an agent on a host" : "attach to an agent on a host",
    );
  }
}

const objectOf = (agent: AgentType) =>
  ({ apiVersion: agent.apiVersion, kind: agent.kind, metadata: agent.metadata }) as KubeObject;

const where = (target: Target, located: Located) => ({
  namespace: target.namespace,
  agentType: target.name,
  replica: target.replica,
  container: target.container,
  host: located.host,
  containerId: located.container.id,
});

/** The running container, or else the newest, of several attempts of one replica's role. */
function newest(containers: ContainerInfo[]): ContainerInfo | undefined {
  return [...containers].sort(
    (a, b) =>
      Number(b.state === "running") - Number(a.state === "running") ||
      (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0) ||
      b.attempt - a.attempt,
  )[0];
}

function hostUnreachable(
  host: string,
  error: unknown,
  reachable?: { status: string; message?: string },
): RefusedError {
  if (error instanceof RefusedError) return error;
  const condition =
    reachable === undefined
      ? ""
      : ` (AgentHost ${host} Reachable=${reachable.status}${reachable.message ? `: ${reachable.message}` : ""})`;
  return refused(
    503,
    "ServiceUnavailable",
    `AgentHost ${host} did not answer: ${(error as Error).message}${condition}`,
  );
}

function refusalOf(error: unknown): Refusal {
  if (error instanceof RefusedError) return error.refusal;
  return { code: 500, reason: "InternalError", message: (error as Error).message };
}
