// Records Kubernetes Events on objects, so that `kubectl describe` and `kubectl get events`
// show users what the operator did and what they must fix.
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { KubeClient, KubeObject } from "./client.ts";
import { resources } from "./resources.ts";

export type EventType = "Normal" | "Warning";

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly component: string;
  private readonly logger: Logger;

  constructor(client: KubeClient, component: string, logger: Logger) {
    this.client = client;
    this.component = component;
    this.logger = logger;
  }

  /** Records an event; a failure to record is logged, never fatal. */
  async record(object: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const { name, namespace = "default", uid, resourceVersion } = object.metadata;
    const now = new Date().toISOString();
    try {
      await this.client.create(resources.event, namespace, {
        apiVersion: "v1",
        kind: "Event",
        metadata: { name: `${name}.${randomBytes(8).toString("hex")}`, namespace },
        involvedObject: {
          apiVersion: object.apiVersion,
          kind: object.kind,
          name,
          namespace,
          uid,
          resourceVersion,
        },
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component: this.component },
        reportingComponent: this.component,
        reportingInstance: this.component,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      } as KubeObject);
    } catch (error) {
      this.logger.warn({ err: (error as Error).message, reason }, "could not record event");
    }
  }
}
