// Names and labels of the objects the operator owns for one AgentType. Pure.

/** Anything with a name: an AgentType, parsed or as the API server sent it. */
interface Named {
  metadata: { name: string };
}

export const FIELD_MANAGER = "agenttype-operator";
export const AGENT_LABEL = "agenttype.dev/agent";
export const CONFIG_HASH_ANNOTATION = "agenttype.dev/config-hash";

export const WRAPPER_CONTAINER = "agenttype-wrapper";
export const SIDECAR_CONTAINER = "agenttype-sidecar";
export const AGENT_CONTAINER = "agent";

/** Names of the owned objects; the workload and ServiceAccount take the AgentType's name. */
export function ownedNames(agent: Named) {
  const name = agent.metadata.name;
  return {
    workload: name,
    serviceAccount: name,
    configMap: `${name}-sidecar`,
    metricsService: `${name}-metrics`,
    /** The StatefulSet's governing Service (persistent memory): per-pod DNS names. */
    headlessService: `${name}-pods`,
    disruptionBudget: name,
    networkPolicy: name,
  };
}

/** The pod selector: one label, stable for the life of the AgentType. */
export function selectorLabels(agent: Named): Record<string, string> {
  return { [AGENT_LABEL]: agent.metadata.name };
}

export function commonLabels(agent: Named): Record<string, string> {
  return {
    ...selectorLabels(agent),
    "app.kubernetes.io/name": agent.metadata.name,
    "app.kubernetes.io/component": "agent",
    "app.kubernetes.io/managed-by": FIELD_MANAGER,
  };
}
