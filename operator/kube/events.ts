// Records Kubernetes Events on objects, so that `kubectl describe` and `kubectl get events`
// show users what the operator did and what they must fix. Repeats are folded into one Event
// as client-go's recorder does: the same event again bumps `count` and `lastTimestamp`.
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { KubeClient, KubeObject } from "./client.ts";
import { resources } from "./resources.ts";

export type EventType = "Normal" | "Warning";

/** The fields of an Event that say what happened, apart from when and how often. */
interface EventContent {
  involvedObject: {
    apiVersion?: string;
    kind?: string;
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
  };
  type: EventType;
  reason: string;
  message: string;
  source: { component: string };
}

/** One Event as the operator last wrote it. */
export interface Emitted {
  name: string;
  namespace: string;
  firstTimestamp: string;
  count: number;
  /** When it was last emitted, in epoch milliseconds. */
  lastMs: number;
}

/**
 * What makes two events the same, as in client-go (getEventKey): the object (its uid, so a
 * recreated object starts afresh), type, reason, message and source. Not the object's
 * resourceVersion, which changes with every status write.
 */
export function eventKey(event: EventContent): string {
  const { apiVersion, kind, namespace, name, uid } = event.involvedObject;
  return JSON.stringify([
    event.source.component,
    apiVersion,
    kind,
    namespace,
    name,
    uid,
    event.type,
    event.reason,
    event.message,
  ]);
}

/**
 * The Events emitted lately, least recently used first out: bounded, so a long-running
 * operator with many objects keeps a fixed amount of memory for this.
 */
export class EmittedEvents {
  private readonly entries = new Map<string, Emitted>();
  private readonly capacity: number;
  private readonly windowMs: number;

  constructor(capacity: number, windowMs: number) {
    this.capacity = capacity;
    this.windowMs = windowMs;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The emission that one at `nowMs` repeats: the same key, emitted within the window. */
  repeatOf(key: string, nowMs: number): Emitted | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (nowMs - entry.lastMs > this.windowMs) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  remember(key: string, emitted: Emitted): void {
    // Re-inserted at the end: a Map iterates in insertion order, so the first key is the LRU.
    this.entries.delete(key);
    this.entries.set(key, emitted);
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }
}

/** client-go keeps 4096 events; its aggregator folds repeats within 10 minutes. */
const DEFAULT_CAPACITY = 4096;
const DEFAULT_WINDOW_MS = 10 * 60_000;

/** An Event timestamp: RFC 3339 to the second, as the API server stores it. */
const timestamp = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly component: string;
  private readonly logger: Logger;
  private readonly emitted: EmittedEvents;
  private readonly clusterScopedNamespace: string;
  /** The last write of each key still in flight: a patch must not overtake its create. */
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(
    client: KubeClient,
    component: string,
    logger: Logger,
    options: { capacity?: number; windowMs?: number; clusterScopedNamespace?: string } = {},
  ) {
    this.client = client;
    // The API server keeps the Events of a cluster-scoped object (an AgentHost) in "default"
    // only (involvedObject.namespace must match the Event's, or be empty with "default").
    this.clusterScopedNamespace = options.clusterScopedNamespace ?? "default";
    this.component = component;
    this.logger = logger;
    this.emitted = new EmittedEvents(
      options.capacity ?? DEFAULT_CAPACITY,
      options.windowMs ?? DEFAULT_WINDOW_MS,
    );
  }

  /**
   * Records an event, or counts it on the Event it repeats; a failure to record is logged,
   * never fatal.
   */
  async record(
    object: KubeObject,
    type: EventType,
    reason: string,
    message: string,
    signal?: AbortSignal,
  ): Promise<void> {
    const { name, uid, resourceVersion } = object.metadata;
    const namespace = object.metadata.namespace ?? this.clusterScopedNamespace;
    const content: EventContent = {
      involvedObject: {
        apiVersion: object.apiVersion,
        kind: object.kind,
        name,
        ...(object.metadata.namespace === undefined ? {} : { namespace }),
        uid,
        resourceVersion,
      },
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component: this.component },
    };
    const key = eventKey(content);
    const nowMs = Date.now();
    const earlier = this.emitted.repeatOf(key, nowMs);
    const emitted: Emitted =
      earlier === undefined
        ? {
            name: `${name}.${randomBytes(8).toString("hex")}`,
            namespace,
            firstTimestamp: timestamp(nowMs),
            count: 1,
            lastMs: nowMs,
          }
        : { ...earlier, count: earlier.count + 1, lastMs: nowMs };
    this.emitted.remember(key, emitted);
    const event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: emitted.name, namespace },
      ...content,
      reportingComponent: this.component,
      reportingInstance: this.component,
      firstTimestamp: emitted.firstTimestamp,
      lastTimestamp: timestamp(nowMs),
      count: emitted.count,
    };
    const write = async () => {
      try {
        // A repeat is a patch of the whole Event (server-side apply), not only of count and
        // lastTimestamp: should the Event have expired meanwhile, the patch recreates it.
        if (earlier === undefined)
          await this.client.createWithoutAnswer(resources.event, namespace, event, signal);
        else await this.client.applyWithoutAnswer(resources.event, event, this.component, undefined, signal);
      } catch (error) {
        this.logger.warn({ err: (error as Error).message, reason }, "could not record event");
      }
    };
    const request = (this.inFlight.get(key) ?? Promise.resolve()).then(write);
    this.inFlight.set(key, request);
    await request;
    if (this.inFlight.get(key) === request) this.inFlight.delete(key);
  }
}
