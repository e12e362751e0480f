// An informer: a cache of one resource kept current by list + watch, with the failure modes
// of long watches handled: 410 Gone (relist and report the difference as events), dropped
// connections (reconnect with backoff from the last resourceVersion), a watch that goes
// silent (no event, no bookmark: abandoned and reopened), and a periodic resync.
import type { Logger } from "pino";
import { isGone, KubeApiError, type KubeClient, type KubeObject, type ResourceType } from "../kube/client.ts";
import { StringTable } from "./string-table.ts";
import { backoffDelay } from "./workqueue.ts";

export type InformerEvent = "add" | "update" | "delete" | "resync";
export type InformerHandler<T> = (event: InformerEvent, object: T, previous?: T) => void;

export interface InformerOptions<T> {
  client: KubeClient;
  type: ResourceType;
  /** Only this namespace; all namespaces when unset. */
  namespace?: string;
  labelSelector?: string;
  /** Every resyncMs all cached objects are handed to the handlers again. */
  resyncMs: number;
  /** The server ends each watch after about this long; we then resume from the last resourceVersion. */
  watchTimeoutSeconds: number;
  /** A watch with no event or bookmark for this long is considered dead and reopened. */
  silenceMs: number;
  /** Backoff of reconnects after errors. */
  retryBaseMs: number;
  retryMaxMs: number;
  logger: Logger;
  /** Named indexes: each maps an object to the values it is found under. */
  indexers?: Record<string, (object: T) => string[]>;
  /**
   * Trims each object before it is cached, to keep the cache small: by default what
   * trimForCache drops, which the operator never reads and which dominates size.
   */
  transform?: (object: T) => T;
  /** Told of every watch restart and why. */
  onRestart?: (reason: "gone" | "silent" | "error") => void;
}

export function objectKey(object: KubeObject): string {
  const { namespace, name } = object.metadata;
  return namespace === undefined ? name : `${namespace}/${name}`;
}

/** One change of an informer's cache, as its handlers are told of it. */
export type CacheChange<T> =
  | { event: "add"; object: T }
  | { event: "update"; object: T; previous: T }
  | { event: "delete"; key: string; object: T };

/**
 * What storing `object` over the cached `previous` changes: nothing when it is the very version
 * cached (a relist or a reconnect hands the same objects over again).
 */
export function upsertChange<T extends KubeObject>(previous: T | undefined, object: T): CacheChange<T>[] {
  if (previous === undefined) return [{ event: "add", object }];
  if (previous.metadata.resourceVersion === object.metadata.resourceVersion) return [];
  return [{ event: "update", object, previous }];
}

/**
 * What a relist changes in the cache, in the order the handlers hear it: first the deletions the
 * watch missed (objects cached but no longer listed), then each listed object added or updated.
 */
export function relistChanges<T extends KubeObject>(
  cached: ReadonlyMap<string, T>,
  listed: ReadonlyMap<string, T>,
): CacheChange<T>[] {
  const changes: CacheChange<T>[] = [];
  for (const [key, object] of cached) {
    if (!listed.has(key)) changes.push({ event: "delete", key, object });
  }
  for (const [key, object] of listed) changes.push(...upsertChange(cached.get(key), object));
  return changes;
}

/** kubectl apply's copy of the whole object as the user applied it, kept in an annotation. */
export const LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration";

/**
 * The default trim of cached objects: what the operator never reads and what dominates their
 * size, metadata.managedFields and kubectl's last-applied-configuration annotation (a copy of
 * the object as the user applied it: for 10,000 AgentTypes applied with kubectl, 11 MiB of a
 * 66 MiB cache).
 */
export function trimForCache<T extends KubeObject>(object: T): T {
  const { managedFields: _, ...metadata } = object.metadata as T["metadata"] & { managedFields?: unknown };
  const annotations = metadata.annotations;
  if (annotations === undefined || !Object.hasOwn(annotations, LAST_APPLIED_ANNOTATION)) {
    return { ...object, metadata };
  }
  // Built anew rather than with `delete`, which would leave V8 a slower, larger object.
  const { [LAST_APPLIED_ANNOTATION]: _copy, ...others } = annotations;
  const { annotations: _all, ...rest } = metadata;
  return { ...object, metadata: Object.keys(others).length > 0 ? { ...rest, annotations: others } : rest };
}

/**
 * The string table every informer's cache shares (namespaces, API versions, owners' names and
 * uids in ownerReferences, condition reasons repeat across kinds). 50,000 strings: the distinct
 * values of 10,000 AgentTypes and their objects, without their uids and versions, are far fewer.
 */
const CACHE_STRINGS = new StringTable(50_000);

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export class Informer<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly indexes = new Map<string, Map<string, Set<string>>>();
  private readonly indexers: Record<string, (object: T) => string[]>;
  private readonly handlers: InformerHandler<T>[] = [];
  private readonly options: InformerOptions<T>;
  private running = false;
  private resolveSynced!: () => void;
  /** Resolves once the first list is in the cache. */
  readonly synced: Promise<void>;
  hasSynced = false;

  constructor(options: InformerOptions<T>) {
    this.options = options;
    this.synced = new Promise((resolve) => (this.resolveSynced = resolve));
    this.indexers = {};
    this.addIndexers(options.indexers ?? {});
  }

  /** More named indexes, before the informer runs (a second controller sharing it asks for them). */
  addIndexers(indexers: Record<string, (object: T) => string[]>): void {
    for (const [name, indexer] of Object.entries(indexers)) {
      if (this.running)
        throw new Error(`informer of ${this.options.type.plural}: index ${name} added while it runs`);
      if (name in this.indexers)
        throw new Error(`informer of ${this.options.type.plural}: a second index named ${name}`);
      this.indexers[name] = indexer;
      this.indexes.set(name, new Map());
    }
  }

  on(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(namespace?: string): T[] {
    const all = [...this.cache.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
  }

  /** Objects found under `value` in the named index. */
  byIndex(index: string, value: string): T[] {
    const keys = this.indexes.get(index)?.get(value) ?? new Set<string>();
    return [...keys].flatMap((key) => {
      const object = this.cache.get(key);
      return object === undefined ? [] : [object];
    });
  }

  /** Runs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    this.running = true;
    const resync = setInterval(() => {
      for (const object of this.cache.values()) this.emit("resync", object);
    }, this.options.resyncMs);
    resync.unref();
    signal.addEventListener("abort", () => clearInterval(resync));
    let failures = 0;
    let resourceVersion: string | undefined;
    while (!signal.aborted) {
      try {
        resourceVersion ??= await this.relist();
        resourceVersion = await this.watchFrom(resourceVersion, signal);
        failures = 0;
      } catch (error) {
        if (signal.aborted) break;
        if (isGone(error)) {
          // Our resourceVersion is older than the server keeps history for: start afresh.
          this.options.onRestart?.("gone");
          resourceVersion = undefined;
          continue;
        }
        failures++;
        this.options.onRestart?.("error");
        const delay = backoffDelay(failures, this.options.retryBaseMs, this.options.retryMaxMs);
        this.options.logger.warn(
          { resource: this.options.type.plural, err: (error as Error).message, retryInMs: delay },
          "watch failed; reconnecting",
        );
        await sleep(delay, signal);
      }
    }
  }

  /** Lists everything, replaces the cache, and reports the difference. Returns the list's resourceVersion. */
  private async relist(): Promise<string> {
    const { client, type, namespace, labelSelector } = this.options;
    const fresh = new Map<string, T>();
    let continueToken: string | undefined;
    let resourceVersion = "";
    do {
      const page = await client.list<T>(type, namespace, {
        labelSelector,
        limit: 500,
        continue: continueToken,
      });
      for (const item of page.items) fresh.set(objectKey(item), this.trim(item));
      continueToken = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion;
    } while (continueToken !== undefined);
    for (const change of relistChanges(this.cache, fresh)) this.applyChange(change);
    if (!this.hasSynced) {
      this.hasSynced = true;
      this.resolveSynced();
    }
    return resourceVersion;
  }

  /** One watch; returns the resourceVersion to resume from when it ends normally or goes silent. */
  private async watchFrom(resourceVersion: string, outer: AbortSignal): Promise<string> {
    const { client, type, namespace, labelSelector, watchTimeoutSeconds, silenceMs } = this.options;
    const controller = new AbortController();
    const stop = () => controller.abort();
    outer.addEventListener("abort", stop);
    let silent = false;
    let silence = setTimeout(() => {}, 0);
    const armSilence = () => {
      clearTimeout(silence);
      silence = setTimeout(() => {
        silent = true;
        controller.abort();
      }, silenceMs);
      silence.unref();
    };
    armSilence();
    let current = resourceVersion;
    // Spread reconnects of many informers so they do not hit the server at once.
    const timeoutSeconds = Math.round(watchTimeoutSeconds * (0.8 + Math.random() * 0.4));
    try {
      const events = client.watch<T>(
        type,
        namespace,
        { resourceVersion, labelSelector, timeoutSeconds },
        controller.signal,
      );
      for await (const event of events) {
        armSilence();
        if (event.type === "ERROR") {
          const { code = 500, reason = "WatchError", message = "" } = event.object;
          throw new KubeApiError(code, reason, message);
        }
        current = event.object.metadata.resourceVersion ?? current;
        if (event.type === "BOOKMARK") continue;
        if (event.type === "DELETED") {
          const key = objectKey(event.object);
          this.remove(key, this.cache.get(key) ?? event.object);
        } else {
          this.upsert(this.trim(event.object));
        }
      }
      return current;
    } catch (error) {
      if (silent) {
        this.options.onRestart?.("silent");
        this.options.logger.warn({ resource: type.plural, silenceMs }, "watch went silent; reopening");
        return current;
      }
      throw error;
    } finally {
      clearTimeout(silence);
      outer.removeEventListener("abort", stop);
    }
  }

  private trim(object: T): T {
    return CACHE_STRINGS.internAll((this.options.transform ?? trimForCache)(object));
  }

  private upsert(object: T): void {
    for (const change of upsertChange(this.cache.get(objectKey(object)), object)) this.applyChange(change);
  }

  private applyChange(change: CacheChange<T>): void {
    if (change.event === "delete") {
      this.remove(change.key, change.object);
      return;
    }
    const key = objectKey(change.object);
    if (change.event === "update") this.unindex(key, change.previous);
    this.cache.set(key, change.object);
    this.index(key, change.object);
    this.emit(change.event, change.object, change.event === "update" ? change.previous : undefined);
  }

  private remove(key: string, object: T): void {
    const cached = this.cache.get(key);
    if (cached !== undefined) this.unindex(key, cached);
    this.cache.delete(key);
    this.emit("delete", object);
  }

  private index(key: string, object: T): void {
    for (const [name, indexer] of Object.entries(this.indexers)) {
      const index = this.indexes.get(name);
      for (const value of indexer(object)) {
        let keys = index?.get(value);
        if (keys === undefined) {
          keys = new Set();
          index?.set(value, keys);
        }
        keys.add(key);
      }
    }
  }

  private unindex(key: string, object: T): void {
    for (const [name, indexer] of Object.entries(this.indexers)) {
      const index = this.indexes.get(name);
      for (const value of indexer(object)) {
        const keys = index?.get(value);
        keys?.delete(key);
        if (keys?.size === 0) index?.delete(value);
      }
    }
  }

  private emit(event: InformerEvent, object: T, previous?: T): void {
    for (const handler of this.handlers) handler(event, object, previous);
  }
}

/** Read access to cached objects, whatever informers fill it. */
export interface ObjectCache<T> {
  get(key: string): T | undefined;
  list(namespace?: string): T[];
  byIndex(index: string, value: string): T[];
}

/** One informer per watched namespace (or one for all namespaces), used as one cache. */
export class InformerGroup<T extends KubeObject> implements ObjectCache<T> {
  readonly informers: Informer<T>[];

  constructor(options: Omit<InformerOptions<T>, "namespace">, namespaces: readonly string[]) {
    this.informers =
      namespaces.length === 0
        ? [new Informer(options)]
        : namespaces.map((namespace) => new Informer({ ...options, namespace }));
  }

  get synced(): Promise<void> {
    return Promise.all(this.informers.map((i) => i.synced)).then(() => undefined);
  }

  on(handler: InformerHandler<T>): void {
    for (const informer of this.informers) informer.on(handler);
  }

  addIndexers(indexers: Record<string, (object: T) => string[]>): void {
    for (const informer of this.informers) informer.addIndexers(indexers);
  }

  get(key: string): T | undefined {
    for (const informer of this.informers) {
      const object = informer.get(key);
      if (object !== undefined) return object;
    }
    return undefined;
  }

  list(namespace?: string): T[] {
    return this.informers.flatMap((i) => i.list(namespace));
  }

  byIndex(index: string, value: string): T[] {
    return this.informers.flatMap((i) => i.byIndex(index, value));
  }

  run(signal: AbortSignal): Promise<void> {
    return Promise.all(this.informers.map((i) => i.run(signal))).then(() => undefined);
  }
}
