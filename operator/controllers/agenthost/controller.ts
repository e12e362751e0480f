// The AgentHost controller's wiring: it reconciles AgentHosts (For). A probe re-runs on a
// modest interval (the reconciler's requeue), and at once when the spec changes; a changed
// key Secret is read at the next probe.
import { Controller } from "../../engine/controller.ts";
import type { ControllerContext } from "../../engine/controller-context.ts";
import { objectKey } from "../../engine/informer.ts";
import { queueObserver } from "../../engine/metrics.ts";
import { WorkQueue } from "../../engine/workqueue.ts";
import type { KubeObject } from "../../kube/client.ts";
import { resources } from "../../kube/resources.ts";
import { createAgentHostReconciler } from "./reconciler.ts";

const NAME = "agenthost";

export function setupAgentHostController(context: ControllerContext): Controller {
  const { client, config, logger, metrics, events, hosts } = context;
  const agentHosts = context.informer<KubeObject>(resources.agentHost);
  // AgentTypes, for their uids: groups on a host whose AgentType is gone are orphans. The
  // AgentType controller's informer, shared: a second watch of every AgentType would cost the
  // API server a stream and the operator a parse of each event.
  const agentTypes = context.informer<KubeObject>(resources.agentType);
  const queue = new WorkQueue({ observer: queueObserver(metrics, NAME) });
  agentHosts.on((event, object, previous) => {
    // Our own status writes change neither generation nor labels: nothing to probe for them.
    const unchanged =
      event === "update" &&
      previous?.metadata.generation === object.metadata.generation &&
      previous?.metadata.deletionTimestamp === object.metadata.deletionTimestamp;
    if (!unchanged) queue.add(objectKey(object));
  });
  return new Controller({
    name: NAME,
    queue,
    workers: Math.min(config.workers, 4),
    metrics,
    logger,
    reconcile: createAgentHostReconciler({
      client,
      agentHosts,
      events,
      hosts,
      owners: {
        uids: () => new Set(agentTypes.list().map((a) => a.metadata.uid ?? "")),
        watches: (namespace) => config.namespaces.length === 0 || config.namespaces.includes(namespace),
      },
    }),
  });
}
