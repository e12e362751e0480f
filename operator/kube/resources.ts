// The resource collections the operator reads and writes, and what it does with each: the
// one table its RBAC is generated from (operator/kube/rbac.ts, `make generate`).
import { GROUP, VERSION } from "../../api/common.ts";
import type { ResourceType } from "./client.ts";

/** The APIService of the operator's aggregated API (group subresources.agenttype.dev). */
export const AGGREGATED_API_SERVICE = "v1alpha1.subresources.agenttype.dev";

const core = (plural: string, kind: string): ResourceType => ({
  group: "",
  version: "v1",
  plural,
  kind,
  namespaced: true,
});
const apps = (plural: string, kind: string): ResourceType => ({
  group: "apps",
  version: "v1",
  plural,
  kind,
  namespaced: true,
});

export const resources = {
  agentType: { group: GROUP, version: VERSION, plural: "agenttypes", kind: "AgentType", namespaced: true },
  agentTool: { group: GROUP, version: VERSION, plural: "agenttools", kind: "AgentTool", namespaced: true },
  agentHost: { group: GROUP, version: VERSION, plural: "agenthosts", kind: "AgentHost", namespaced: false },
  secret: core("secrets", "Secret"),
  deployment: apps("deployments", "Deployment"),
  statefulSet: apps("statefulsets", "StatefulSet"),
  configMap: core("configmaps", "ConfigMap"),
  service: core("services", "Service"),
  serviceAccount: core("serviceaccounts", "ServiceAccount"),
  pod: core("pods", "Pod"),
  podDisruptionBudget: {
    group: "policy",
    version: "v1",
    plural: "poddisruptionbudgets",
    kind: "PodDisruptionBudget",
    namespaced: true,
  },
  event: core("events", "Event"),
  networkPolicy: {
    group: "networking.k8s.io",
    version: "v1",
    plural: "networkpolicies",
    kind: "NetworkPolicy",
    namespaced: true,
  },
  namespace: { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false },
  lease: { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true },
  apiService: {
    group: "apiregistration.k8s.io",
    version: "v1",
    plural: "apiservices",
    kind: "APIService",
    namespaced: false,
  },
  subjectAccessReview: {
    group: "authorization.k8s.io",
    version: "v1",
    plural: "subjectaccessreviews",
    kind: "SubjectAccessReview",
    namespaced: false,
  },
} satisfies Record<string, ResourceType>;

/** The RBAC verbs of the API server's requests (kube-apiserver's RequestInfo). */
export type Verb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete";

export interface Permission {
  resource: ResourceType;
  subresource?: "status";
  verbs: readonly Verb[];
  /** Only the objects of these names (RBAC's resourceNames), where the verbs allow naming them. */
  names?: readonly string[];
}

// How the client's calls become verbs: an informer lists and watches; server-side apply is a
// patch, and a create when the object does not exist yet (the API server then checks both);
// replace is an update.
const informed: Verb[] = ["list", "watch"];
const owned: Verb[] = [...informed, "create", "patch"];

/**
 * Everything the operator asks of the API server, and nothing more. `watched` holds in every
 * namespace it watches (a ClusterRole, or a Role in each watched namespace); `leaderElection`
 * only in its own namespace. An integration test runs the operator under exactly these rules
 * and checks that it uses every one of them.
 */
export const permissions: {
  watched: Permission[];
  hosts: Permission[];
  leaderElection: Permission[];
  subresources: Permission[];
  subresourcesCa: Permission[];
} = {
  watched: [
    // patch: the finalizer of an AgentType running on a host (runtime containerd). get: the
    // aggregated API reads the AgentType a user's request names (on standbys too, which have
    // no informer).
    { resource: resources.agentType, verbs: ["get", ...informed, "patch"] },
    { resource: resources.agentType, subresource: "status", verbs: ["patch"] },
    { resource: resources.agentTool, verbs: informed },
    // The prober writes each AgentTool's Available condition.
    { resource: resources.agentTool, subresource: "status", verbs: ["patch"] },
    // The workload is deleted when memory switches between ephemeral and persistent.
    { resource: resources.deployment, verbs: [...owned, "delete"] },
    { resource: resources.statefulSet, verbs: [...owned, "delete"] },
    { resource: resources.configMap, verbs: owned },
    // The headless Service (persistent memory) and the PodDisruptionBudget (more than one
    // replica) are deleted when no longer wanted.
    { resource: resources.service, verbs: [...owned, "delete"] },
    { resource: resources.podDisruptionBudget, verbs: [...owned, "delete"] },
    // Deleted when an AgentType sets network.policy disabled.
    { resource: resources.networkPolicy, verbs: [...owned, "delete"] },
    { resource: resources.serviceAccount, verbs: owned },
    // Pods are only read, for the status (image pulls, crash loops, scheduling).
    { resource: resources.pod, verbs: informed },
    // A repeated Event is patched (count, lastTimestamp) rather than created again.
    { resource: resources.event, verbs: ["create", "patch"] },
  ],
  // AgentHosts are cluster-scoped; the Secrets are the SSH client keys AgentHosts name (read,
  // and created when the operator generates a key) and the keys of KVM guests (`<agent>-guest-keys`,
  // written by server-side apply). README "Narrowing the operator's Secret access" binds the
  // Secret rule in one namespace only instead.
  hosts: [
    // get: the aggregated API reads the AgentHost of the agent a user's request names.
    { resource: resources.agentHost, verbs: ["get", ...informed] },
    { resource: resources.agentHost, subresource: "status", verbs: ["patch"] },
    { resource: resources.secret, verbs: ["get", "create", "patch"] },
    // The API server keeps an AgentHost's Events in "default" only, whatever the operator
    // watches; a repeat is patched as in the watched namespaces.
    { resource: resources.event, verbs: ["create", "patch"] },
  ],
  leaderElection: [{ resource: resources.lease, verbs: ["get", "create", "update"] }],
  // The aggregated API (operator/subresources/): every request checked again with a
  // SubjectAccessReview; the CA written into its one APIService. Used only with
  // --subresources-port set.
  subresources: [
    { resource: resources.subjectAccessReview, verbs: ["create"] },
    { resource: resources.apiService, verbs: ["get", "patch"], names: [AGGREGATED_API_SERVICE] },
  ],
  // Its CA, in a Secret of the operator's own namespace (created by the first replica to start).
  subresourcesCa: [{ resource: resources.secret, verbs: ["get", "create"] }],
};
