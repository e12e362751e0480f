// The NetworkPolicy of one AgentType's pods: traffic in only to the sidecar's metrics port,
// from the namespaces allowed to scrape it (the operator's, which reads the sidecar's /status,
// and Prometheus') and from pods with the labels allowed to; traffic out, when the AgentType asks for `network.egress: declared`, only to
// DNS and to the endpoints its providers and tools declare, as far as a NetworkPolicy can
// name them (docs/security.md). Pure.
import type {
  V1NetworkPolicy,
  V1NetworkPolicyEgressRule,
  V1NetworkPolicyIngressRule,
  V1NetworkPolicyPeer,
} from "@kubernetes/client-node";
import { type AgentType, providerEndpoint } from "../../api/agenttype.ts";
import type { SidecarConfig } from "../../api/sidecarconfig.ts";
import type { Manifest } from "../kube/client.ts";

/** The label the API server puts on every namespace, with its name. */
const NAMESPACE_NAME = "kubernetes.io/metadata.name";
/** A cluster Service's DNS name: NAME.NAMESPACE.svc, optionally with the cluster domain. */
const SERVICE_HOST =
  /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.cluster\.local)?\.?$/;
const IPV4 = /^[0-9]{1,3}(\.[0-9]{1,3}){3}$/;

const inNamespace = (name: string): V1NetworkPolicyPeer => ({
  namespaceSelector: { matchLabels: { [NAMESPACE_NAME]: name } },
});

/**
 * The egress rule that lets the pods reach one URL: an IP address as a /32 (or /128) block on
 * the URL's port; a cluster Service's name as its namespace (the port the pods listen on is the
 * Service's targetPort, which only the Service knows); any other host name on the URL's port
 * only, since a NetworkPolicy cannot name hosts.
 */
export function egressTo(url: string): V1NetworkPolicyEgressRule {
  const parsed = new URL(url);
  const port = Number(parsed.port || (parsed.protocol === "https:" ? 443 : 80));
  const ports = [{ protocol: "TCP", port }];
  const host = parsed.hostname;
  if (IPV4.test(host)) return { to: [{ ipBlock: { cidr: `${host}/32` } }], ports };
  if (host.startsWith("[")) return { to: [{ ipBlock: { cidr: `${host.slice(1, -1)}/128` } }], ports };
  const service = SERVICE_HOST.exec(host);
  if (service?.[2] !== undefined) return { to: [inNamespace(service[2])] };
  return { ports };
}

/** The URLs the sidecar calls: each provider's endpoint (bedrock's regional one, anthropic's public one by default) and each tool's. */
function declaredUrls(config: SidecarConfig): string[] {
  const providers = (config.llm?.providers ?? []).map(providerEndpoint);
  return [...providers, ...config.tools.map((t) => t.url)];
}

const DNS: V1NetworkPolicyEgressRule = {
  ports: [
    { protocol: "UDP", port: 53 },
    { protocol: "TCP", port: 53 },
  ],
};

/** Who may reach the metrics port: pods of these namespaces, and pods with these labels in any namespace. */
export interface MetricsSources {
  namespaces: readonly string[];
  podLabels: Readonly<Record<string, string>>;
}

export function buildNetworkPolicy(
  agent: AgentType,
  config: SidecarConfig,
  metricsFrom: MetricsSources,
  metadata: Manifest<V1NetworkPolicy>["metadata"],
  podSelector: Record<string, string>,
): Manifest<V1NetworkPolicy> | undefined {
  const { network } = agent.spec;
  if (network.policy === "disabled") return undefined;
  const podLabels = Object.fromEntries(
    Object.entries(metricsFrom.podLabels).sort(([a], [b]) => a.localeCompare(b)),
  );
  const sources = [
    ...[...new Set(metricsFrom.namespaces)].sort().map(inNamespace),
    // An empty namespaceSelector: every namespace; without it the labels would match only here.
    ...(Object.keys(podLabels).length === 0
      ? []
      : [{ namespaceSelector: {}, podSelector: { matchLabels: podLabels } }]),
  ];
  const declared = network.egress === "declared";
  // One rule per distinct destination, in a stable order: the same AgentType, the same object.
  const egress = [
    ...new Map(
      [DNS, ...declaredUrls(config).map(egressTo)].map((rule) => [JSON.stringify(rule), rule]),
    ).values(),
  ];
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata,
    spec: {
      podSelector: { matchLabels: podSelector },
      policyTypes: declared ? ["Ingress", "Egress"] : ["Ingress"],
      // No source, no rule: an empty `from` would admit every source.
      ingress:
        sources.length === 0
          ? []
          : [
              // The wire name is `from`; the client library's type spells it `_from`.
              {
                from: sources,
                ports: [{ protocol: "TCP", port: config.listen.metricsPort }],
              } as V1NetworkPolicyIngressRule,
            ],
      ...(declared ? { egress } : {}),
    },
  };
}
