// A thin REST client for the few verbs the operator needs (list, watch, get, server-side
// apply, delete, create) on any resource. Thin on purpose: the controller engine needs
// control over watch streams, resourceVersions and error classes that generated clients hide.
// Every request has a deadline and takes the caller's AbortSignal; see docs/adr/0004.
import { Agent, type Dispatcher } from "undici";
import type { ApiServerAccess } from "./access.ts";
import { deadline, formatMs } from "./deadline.ts";

type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** Identifies a resource collection, for example apps/v1 deployments. */
export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
  deletionTimestamp?: string;
  creationTimestamp?: string;
  finalizers?: string[];
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

/**
 * A client-node body type (V1Deployment, V1ConfigMap, ...) as the operator builds and sends
 * it: client-node's metadata is optional and types timestamps as Date, while what crosses the
 * wire always names the object and carries strings, so its metadata is the client's.
 */
export type Manifest<T extends { metadata?: unknown }> = {
  // A key-remapping mapped type, not Omit: Omit would fold the named fields into client-node's
  // index signature and type them as any.
  [K in keyof T as K extends "metadata" | "apiVersion" | "kind" ? never : K]: T[K];
} & {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
};

export interface ObjectList<T> {
  items: T[];
  metadata: { resourceVersion: string; continue?: string };
}

export type WatchEvent<T> =
  | { type: "ADDED" | "MODIFIED" | "DELETED"; object: T }
  | { type: "BOOKMARK"; object: { metadata: { resourceVersion: string } } }
  | { type: "ERROR"; object: { code?: number; reason?: string; message?: string } };

/** An error answer of the API server, classified for retry decisions. */
export class KubeApiError extends Error {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string) {
    super(message);
    this.name = "KubeApiError";
    this.status = status;
    this.reason = reason;
  }
  /** Whether the same request may succeed later without anyone changing it. */
  get retryable(): boolean {
    return this.status === 409 || this.status === 429 || this.status >= 500 || this.status === 0;
  }
}

/**
 * Whether `a` is an older resourceVersion than `b`. Only ever used to skip a redundant write:
 * resourceVersions are etcd revisions on every API server we run against, and a wrong answer
 * would cost one extra request, never a missed change.
 */
export function olderVersion(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) < BigInt(b);
}

/**
 * Whether an update was refused because it changes a StatefulSet field Kubernetes lets no one
 * change (serviceName, selector, volumeClaimTemplates): the object must be created again.
 */
export function isStatefulSetImmutable(error: unknown): boolean {
  return (
    error instanceof KubeApiError &&
    error.status === 422 &&
    error.message.includes("updates to statefulset spec for fields other than")
  );
}

/** One operation of a JSON patch; `path` is a JSON pointer (escape "~" as "~0", "/" as "~1"). */
export type JsonPatchOperation =
  | { op: "test" | "add" | "replace"; path: string; value: unknown }
  | { op: "remove"; path: string };

export function isNotFound(error: unknown): boolean {
  return error instanceof KubeApiError && error.status === 404;
}

/** A create refused because an object of that name exists. */
export function isAlreadyExists(error: unknown): boolean {
  return error instanceof KubeApiError && error.status === 409 && error.reason === "AlreadyExists";
}

export function isGone(error: unknown): boolean {
  return error instanceof KubeApiError && error.status === 410;
}

export function collectionPath(type: ResourceType, namespace?: string): string {
  const prefix = type.group === "" ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`;
  return type.namespaced && namespace !== undefined
    ? `${prefix}/namespaces/${namespace}/${type.plural}`
    : `${prefix}/${type.plural}`;
}

export function objectPath(type: ResourceType, namespace: string | undefined, name: string): string {
  return `${collectionPath(type, namespace)}/${encodeURIComponent(name)}`;
}

type Query = Record<string, string | number | boolean | undefined>;

interface RequestOptions {
  query?: Query;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal | undefined;
}

/** An answer as undici's request() gives it: the status code and the body as a Node stream. */
type Answer = Dispatcher.ResponseData;

/** Reads an answer's body as the JSON it is. */
const parseJson = async <T>(answer: Answer): Promise<T> => (await answer.body.json()) as T;

/** Reads an answer whose body is not needed: to its end, so the connection can be reused. */
const drain = async (answer: Answer): Promise<void> => void (await answer.body.dump());

/** controller-runtime's default is no limit at all; 30 s is kubectl's usual --request-timeout in scripts. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export interface KubeClientOptions {
  /**
   * Deadline of each request, from sending it to the end of its answer. A watch is bounded
   * only until its answer starts; its stream then runs until the server ends it or the
   * caller aborts.
   */
  requestTimeoutMs?: number;
  /**
   * Milliseconds left in which this client may write (POST, PUT, PATCH, DELETE): a write is
   * refused once it is 0, and no write's deadline reaches past it. Leader election sets it
   * so that a leader that cannot renew its lease writes nothing after its renew deadline.
   */
  writeWindowMs?: () => number;
  /** Shares a connection pool with another client. */
  dispatcher?: Agent;
}

export class KubeClient {
  readonly server: string;
  private readonly access: ApiServerAccess;
  private readonly options: KubeClientOptions;
  private readonly requestTimeoutMs: number;
  // One connection pool for the client's lifetime; every request reuses its connections.
  private readonly dispatcher: Agent;

  constructor(access: ApiServerAccess, options: KubeClientOptions = {}) {
    this.access = access;
    this.server = access.server;
    this.options = options;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.dispatcher =
      options.dispatcher ??
      new Agent({
        connect: {
          ...(access.ca === undefined ? {} : { ca: access.ca }),
          ...(access.cert === undefined ? {} : { cert: access.cert }),
          ...(access.key === undefined ? {} : { key: access.key }),
          ...(access.insecureSkipTlsVerify ? { rejectUnauthorized: false } : {}),
          keepAlive: true,
          keepAliveInitialDelay: 30_000,
        },
      });
  }

  /** The same client (and connections) with its writes confined to `writeWindowMs`. */
  withWriteWindow(writeWindowMs: () => number): KubeClient {
    return new KubeClient(this.access, { ...this.options, writeWindowMs, dispatcher: this.dispatcher });
  }

  /**
   * Sends one request and reads its answer with `read`, all within the request's deadline.
   * Errors: KubeApiError for an error answer, no answer ("ConnectionFailed"), no answer in
   * time ("Timeout", also when the caller's own signal timed out) or a write outside the
   * write window ("WriteWindowClosed"); the caller's abort reason when the caller cancelled.
   */
  private async send<T>(
    method: HttpMethod,
    path: string,
    options: RequestOptions,
    read: (answer: Answer) => Promise<T>,
  ): Promise<T> {
    const url = new URL(this.server + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { accept: "application/json" };
    const token = this.access.token?.();
    if (token) headers.authorization = `Bearer ${token}`;
    if (options.body !== undefined) headers["content-type"] = options.contentType ?? "application/json";
    let timeoutMs = this.requestTimeoutMs;
    if (method !== "GET" && this.options.writeWindowMs !== undefined) {
      const window = this.options.writeWindowMs();
      if (window <= 0) {
        throw new KubeApiError(
          0,
          "WriteWindowClosed",
          `${method} ${path}: not sent: this replica's leadership lapsed`,
        );
      }
      timeoutMs = Math.min(timeoutMs, window);
    }
    const limit = deadline(timeoutMs, options.signal);
    try {
      // undici's request() rather than fetch(): no WHATWG Request, Headers and streams per
      // call, which took about 15 % of the operator's CPU at 1,000 AgentTypes, and much of its garbage.
      const answer = await this.dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method,
        headers,
        signal: limit.signal,
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      });
      if (answer.statusCode < 200 || answer.statusCode > 299) {
        const text = await answer.body.text();
        let status: { reason?: string; message?: string } = {};
        try {
          status = JSON.parse(text);
        } catch {
          status = { message: text };
        }
        throw new KubeApiError(
          answer.statusCode,
          status.reason ?? String(answer.statusCode),
          status.message ?? text,
        );
      }
      return await read(answer);
    } catch (error) {
      if (error instanceof KubeApiError) throw error;
      if (limit.expired) {
        throw new KubeApiError(0, "Timeout", `${method} ${path}: no answer within ${formatMs(timeoutMs)}`);
      }
      if (options.signal?.aborted) throw options.signal.reason;
      // No answer at all: the API server is down or restarting, or the connection broke.
      const { message, cause } = error as Error & { cause?: Error };
      throw new KubeApiError(
        0,
        "ConnectionFailed",
        `${method} ${path}: ${message}${cause?.message ? ` (${cause.message})` : ""}`,
      );
    } finally {
      limit.clear();
    }
  }

  private json<T>(method: HttpMethod, path: string, options: RequestOptions): Promise<T> {
    return this.send(method, path, options, parseJson<T>);
  }

  get<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    signal?: AbortSignal,
  ): Promise<T> {
    return this.json("GET", objectPath(type, namespace, name), { signal });
  }

  list<T extends KubeObject>(
    type: ResourceType,
    namespace?: string,
    query: Query = {},
    signal?: AbortSignal,
  ): Promise<ObjectList<T>> {
    return this.json("GET", collectionPath(type, namespace), { query, signal });
  }

  create<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    object: T,
    signal?: AbortSignal,
  ): Promise<T> {
    return this.json("POST", collectionPath(type, namespace), { body: object, signal });
  }

  /** Replaces an object; the resourceVersion in it makes this a compare-and-swap. */
  replace<T extends KubeObject>(type: ResourceType, object: T, signal?: AbortSignal): Promise<T> {
    return this.json("PUT", objectPath(type, object.metadata.namespace, object.metadata.name), {
      body: object,
      signal,
    });
  }

  /** Server-side apply: the field manager owns exactly the fields in `object`. */
  apply<T extends KubeObject>(
    type: ResourceType,
    object: T,
    fieldManager: string,
    subresource?: "status",
    signal?: AbortSignal,
  ): Promise<T> {
    return this.sendApply(type, object, fieldManager, subresource, signal, parseJson<T>);
  }

  /**
   * Server-side apply whose answer the caller has no use for (a status, an Event): the body is
   * drained unparsed. At 10,000 AgentTypes parsing answers nobody reads was a measurable part
   * of the operator's CPU and garbage.
   */
  applyWithoutAnswer<T extends KubeObject>(
    type: ResourceType,
    object: T,
    fieldManager: string,
    subresource?: "status",
    signal?: AbortSignal,
  ): Promise<void> {
    return this.sendApply(type, object, fieldManager, subresource, signal, drain);
  }

  /** The PATCH of a server-side apply (forced, as the field manager), its answer read with `read`. */
  private sendApply<R>(
    type: ResourceType,
    object: KubeObject,
    fieldManager: string,
    subresource: "status" | undefined,
    signal: AbortSignal | undefined,
    read: (answer: Answer) => Promise<R>,
  ): Promise<R> {
    const path =
      objectPath(type, object.metadata.namespace, object.metadata.name) +
      (subresource ? `/${subresource}` : "");
    return this.send(
      "PATCH",
      path,
      {
        query: { fieldManager, force: true },
        body: object,
        contentType: "application/apply-patch+yaml",
        signal,
      },
      read,
    );
  }

  /** Creates an object whose answer the caller has no use for (an Event): drained unparsed. */
  async createWithoutAnswer<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    object: T,
    signal?: AbortSignal,
  ): Promise<void> {
    await this.send("POST", collectionPath(type, namespace), { body: object, signal }, drain);
  }

  /**
   * A JSON patch (RFC 6902): for what server-side apply cannot do, such as removing a field
   * whatever manager owns it. A `test` operation makes it a compare-and-swap.
   */
  jsonPatch<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    operations: readonly JsonPatchOperation[],
    signal?: AbortSignal,
  ): Promise<T> {
    return this.json("PATCH", objectPath(type, namespace, name), {
      body: operations,
      contentType: "application/json-patch+json",
      signal,
    });
  }

  /**
   * Deletes an object; the garbage collector removes its dependents in the background, or with
   * `dependents: "orphan"` leaves them, without their owner reference, for a new owner to adopt.
   */
  async delete(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    signal?: AbortSignal,
    dependents: "delete" | "orphan" = "delete",
  ): Promise<void> {
    const propagationPolicy = dependents === "orphan" ? "Orphan" : "Background";
    await this.send(
      "DELETE",
      objectPath(type, namespace, name),
      { body: { kind: "DeleteOptions", apiVersion: "v1", propagationPolicy }, signal },
      drain,
    );
  }

  /**
   * Watches a collection from a resourceVersion. Yields events until the server ends the
   * stream (after timeoutSeconds) or `signal` aborts; HTTP errors are thrown as KubeApiError.
   * Only the wait for the answer to start is bounded by the request deadline.
   */
  async *watch<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    query: Query,
    signal: AbortSignal,
  ): AsyncGenerator<WatchEvent<T>> {
    const response = await this.send(
      "GET",
      collectionPath(type, namespace),
      { query: { ...query, watch: true, allowWatchBookmarks: true }, signal },
      async (answer) => answer,
    );
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of response.body) {
      buffered += decoder.decode(chunk as Buffer, { stream: true });
      let newline = buffered.indexOf("\n");
      while (newline >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line !== "") yield JSON.parse(line) as WatchEvent<T>;
        newline = buffered.indexOf("\n");
      }
    }
  }
}
