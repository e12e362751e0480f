// What the manager hands each controller's setup: the shared client, settings, metrics and
// Event recorder, and a factory for informers whose lifecycle (run, sync, stop) the manager
// owns. A controller's setup declares what it watches (For/Owns/Watches in controller-runtime's
// terms) and returns its Controller; it knows nothing of the process around it.
import type { Logger } from "pino";
import type { OperatorConfig } from "../config.ts";
import type { HostConnections } from "../hosts/host-connections.ts";
import type { KubeClient, KubeObject, ResourceType } from "../kube/client.ts";
import type { EventRecorder } from "../kube/events.ts";
import type { Controller } from "./controller.ts";
import type { InformerGroup, InformerOptions } from "./informer.ts";
import type { OperatorMetrics } from "./metrics.ts";

export type InformerExtras<T extends KubeObject> = Partial<
  Pick<InformerOptions<T>, "indexers" | "transform" | "labelSelector">
>;

export interface ControllerContext {
  client: KubeClient;
  config: OperatorConfig;
  logger: Logger;
  metrics: OperatorMetrics;
  events: EventRecorder;
  /** One SSH connection and driver per AgentHost, shared by the controllers that reach hosts. */
  hosts: HostConnections;
  /** An informer over the watched namespaces, run and awaited by the manager. */
  informer<T extends KubeObject>(type: ResourceType, extras?: InformerExtras<T>): InformerGroup<T>;
}

export type ControllerSetup = (context: ControllerContext) => Controller;
