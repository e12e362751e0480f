// The resource collections the operator reads and writes.
import { GROUP, VERSION } from "../../api/common.ts";
import type { ResourceType } from "./client.ts";

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
  deployment: apps("deployments", "Deployment"),
  statefulSet: apps("statefulsets", "StatefulSet"),
  configMap: core("configmaps", "ConfigMap"),
  service: core("services", "Service"),
  serviceAccount: core("serviceaccounts", "ServiceAccount"),
  event: core("events", "Event"),
  namespace: { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false },
  lease: { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true },
} satisfies Record<string, ResourceType>;
