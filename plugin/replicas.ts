// Which pod or host is replica N of an AgentType: the numbering `list` shows and `--replica`
// takes. Pure.
import type { V1Pod } from "@kubernetes/client-node";
import type { AgentType } from "../api/agenttype.ts";
import { PluginError } from "./errors.ts";

export interface Replica {
  index: number;
  /** pod: a pod of the cluster; host: a replica on an AgentHost (runtime containerd or kvm). */
  kind: "pod" | "host";
  /** The pod's name (pods), or the AgentHost's (hosts). */
  name: string;
  /** The node the pod is on; for hosts, the AgentHost. */
  where: string;
  state: string;
  ready: boolean;
  restarts: number;
}

const POD_INDEX_LABEL = "apps.kubernetes.io/pod-index";

/**
 * An agent's live pods, numbered: a StatefulSet's by their ordinal, a Deployment's by creation
 * time (oldest is 0), so the numbers stay put while pods run. Pods on their way out are left out.
 */
export function podReplicas(pods: readonly V1Pod[]): Replica[] {
  const live = pods.filter(
    (p) =>
      p.metadata?.deletionTimestamp === undefined && !["Succeeded", "Failed"].includes(p.status?.phase ?? ""),
  );
  const ordinal = (p: V1Pod) => {
    const label = p.metadata?.labels?.[POD_INDEX_LABEL];
    return label === undefined ? undefined : Number(label);
  };
  const created = (p: V1Pod) => new Date(p.metadata?.creationTimestamp ?? 0).getTime();
  const sorted = [...live].sort((a, b) => {
    const oa = ordinal(a);
    const ob = ordinal(b);
    if (oa !== undefined && ob !== undefined) return oa - ob;
    return created(a) - created(b) || (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? "");
  });
  return sorted.map((pod, position) => ({
    index: ordinal(pod) ?? position,
    kind: "pod",
    name: pod.metadata?.name ?? "",
    where: pod.spec?.nodeName ?? "(unscheduled)",
    state: podState(pod),
    ready: pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
    restarts: (pod.status?.containerStatuses ?? []).reduce((n, c) => n + c.restartCount, 0),
  }));
}

/** What `kubectl get pods` shows in STATUS: a waiting or terminated reason, else the phase. */
function podState(pod: V1Pod): string {
  if (pod.metadata?.deletionTimestamp !== undefined) return "Terminating";
  for (const c of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const reason = c.state?.waiting?.reason ?? c.state?.terminated?.reason;
    if (reason !== undefined && reason !== "Completed") return reason;
  }
  return pod.status?.phase ?? "Unknown";
}

/** Replicas on AgentHosts, as the operator records them in status.hostReplicas. */
export function hostReplicas(agent: AgentType): Replica[] {
  return (agent.status?.hostReplicas ?? [])
    .map((r) => ({
      index: r.replica,
      kind: "host" as const,
      name: r.host,
      where: r.host,
      state: r.state,
      ready: r.state === "running",
      restarts: r.restarts ?? 0,
    }))
    .sort((a, b) => a.index - b.index);
}

export function runsInPods(agent: AgentType): boolean {
  return (agent.spec.runtime?.type ?? "kubernetes") === "kubernetes";
}

/** Replica `index` (0 when not given), or an error that says which numbers exist. */
export function pickReplica(agent: AgentType, replicas: readonly Replica[], index = 0): Replica {
  const found = replicas.find((r) => r.index === index);
  if (found !== undefined) return found;
  const name = agent.metadata.name;
  if (replicas.length === 0)
    throw new PluginError(
      `AgentType "${name}" has no running replica (spec.replicas is ${agent.spec.replicas ?? 1}): see kubectl agenttype describe ${name}`,
    );
  const numbers = replicas.map((r) => r.index).join(", ");
  throw new PluginError(`replica ${index} out of range: AgentType "${name}" has replicas ${numbers}`);
}
