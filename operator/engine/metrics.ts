// The operator's Prometheus metrics, named as controller-runtime names them so that existing
// dashboards and alerts for Kubernetes controllers work unchanged.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { WorkQueueObserver } from "./workqueue.ts";

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = {
    registry,
    reconcileTotal: new Counter({
      name: "controller_runtime_reconcile_total",
      help: "Reconciles per controller and result (success, error, requeue_after).",
      labelNames: ["controller", "result"],
      registers: [registry],
    }),
    reconcileErrors: new Counter({
      name: "controller_runtime_reconcile_errors_total",
      help: "Reconciles that ended in an error, per controller.",
      labelNames: ["controller"],
      registers: [registry],
    }),
    reconcileTime: new Histogram({
      name: "controller_runtime_reconcile_time_seconds",
      help: "Duration of reconciles, per controller.",
      labelNames: ["controller"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: "workqueue_depth",
      help: "Keys waiting in the work queue.",
      labelNames: ["name"],
      registers: [registry],
    }),
    queueAdds: new Counter({
      name: "workqueue_adds_total",
      help: "Keys added to the work queue.",
      labelNames: ["name"],
      registers: [registry],
    }),
    queueRetries: new Counter({
      name: "workqueue_retries_total",
      help: "Keys re-queued after a failed reconcile.",
      labelNames: ["name"],
      registers: [registry],
    }),
    queueWait: new Histogram({
      name: "workqueue_queue_duration_seconds",
      help: "How long a key waited in the queue before a worker took it.",
      labelNames: ["name"],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60],
      registers: [registry],
    }),
    watchRestarts: new Counter({
      name: "agenttype_watch_restarts_total",
      help: "Watches restarted, per resource and reason (gone: relisted after 410; silent; error).",
      labelNames: ["resource", "reason"],
      registers: [registry],
    }),
    leader: new Gauge({
      name: "leader_election_master_status",
      help: "1 when this replica holds the leader lease, else 0.",
      labelNames: ["name"],
      registers: [registry],
    }),
  };
  return metrics;
}

export type OperatorMetrics = ReturnType<typeof createMetrics>;

export function queueObserver(metrics: OperatorMetrics, name: string): WorkQueueObserver {
  // The series exist from the start, as Prometheus users expect; a queue whose keys all went
  // straight to idle workers would otherwise never report its depth at all.
  metrics.queueDepth.set({ name }, 0);
  metrics.queueAdds.inc({ name }, 0);
  metrics.queueRetries.inc({ name }, 0);
  return {
    depth: (depth) => metrics.queueDepth.set({ name }, depth),
    added: () => metrics.queueAdds.inc({ name }),
    retried: () => metrics.queueRetries.inc({ name }),
    waited: (seconds) => metrics.queueWait.observe({ name }, seconds),
  };
}
