// A thin REST client for the few verbs the operator needs (list, watch, get, server-side
// apply, delete, create) on any resource. Thin on purpose: the controller engine needs
// control over watch streams, resourceVersions and error classes that generated clients hide.
import { Agent, fetch } from "undici";
import type { ApiServerAccess } from "./access.ts";

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
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

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

export function isNotFound(error: unknown): boolean {
  return error instanceof KubeApiError && error.status === 404;
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
  signal?: AbortSignal;
}

export class KubeClient {
  readonly server: string;
  private readonly access: ApiServerAccess;
  // One connection pool for the client's lifetime; every request reuses its connections.
  private readonly dispatcher: Agent;

  constructor(access: ApiServerAccess) {
    this.access = access;
    this.server = access.server;
    this.dispatcher = new Agent({
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

  private async send(method: HttpMethod, path: string, options: RequestOptions = {}) {
    const url = new URL(this.server + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { accept: "application/json" };
    const token = this.access.token?.();
    if (token) headers.authorization = `Bearer ${token}`;
    if (options.body !== undefined) headers["content-type"] = options.contentType ?? "application/json";
    let response: Awaited<ReturnType<typeof fetch>>;
    try {
      response = await fetch(url, {
        method,
        headers,
        dispatcher: this.dispatcher,
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      // No answer at all: the API server is down or restarting.
      throw new KubeApiError(0, "ConnectionFailed", `${method} ${path}: ${(error as Error).message}`);
    }
    if (!response.ok) {
      const text = await response.text();
      let status: { reason?: string; message?: string } = {};
      try {
        status = JSON.parse(text);
      } catch {
        status = { message: text };
      }
      throw new KubeApiError(
        response.status,
        status.reason ?? String(response.status),
        status.message ?? text,
      );
    }
    return response;
  }

  private async json<T>(method: HttpMethod, path: string, options?: RequestOptions): Promise<T> {
    return (await (await this.send(method, path, options)).json()) as T;
  }

  get<T extends KubeObject>(type: ResourceType, namespace: string | undefined, name: string): Promise<T> {
    return this.json("GET", objectPath(type, namespace, name));
  }

  list<T extends KubeObject>(
    type: ResourceType,
    namespace?: string,
    query: Query = {},
  ): Promise<ObjectList<T>> {
    return this.json("GET", collectionPath(type, namespace), { query });
  }

  create<T extends KubeObject>(type: ResourceType, namespace: string | undefined, object: T): Promise<T> {
    return this.json("POST", collectionPath(type, namespace), { body: object });
  }

  /** Replaces an object; the resourceVersion in it makes this a compare-and-swap. */
  replace<T extends KubeObject>(type: ResourceType, object: T): Promise<T> {
    return this.json("PUT", objectPath(type, object.metadata.namespace, object.metadata.name), {
      body: object,
    });
  }

  /** Server-side apply: the field manager owns exactly the fields in `object`. */
  apply<T extends KubeObject>(
    type: ResourceType,
    object: T,
    fieldManager: string,
    subresource?: "status",
  ): Promise<T> {
    const path =
      objectPath(type, object.metadata.namespace, object.metadata.name) +
      (subresource ? `/${subresource}` : "");
    return this.json("PATCH", path, {
      query: { fieldManager, force: true },
      body: object,
      contentType: "application/apply-patch+yaml",
    });
  }

  async delete(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    propagationPolicy = "Background",
  ) {
    await this.send("DELETE", objectPath(type, namespace, name), {
      body: { kind: "DeleteOptions", apiVersion: "v1", propagationPolicy },
    });
  }

  /**
   * Watches a collection from a resourceVersion. Yields events until the server ends the
   * stream (after timeoutSeconds) or `signal` aborts; HTTP errors are thrown as KubeApiError.
   */
  async *watch<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    query: Query,
    signal: AbortSignal,
  ): AsyncGenerator<WatchEvent<T>> {
    const response = await this.send("GET", collectionPath(type, namespace), {
      query: { ...query, watch: true, allowWatchBookmarks: true },
      signal,
    });
    if (response.body === null) return;
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of response.body) {
      buffered += decoder.decode(chunk as Uint8Array, { stream: true });
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
