import { describe, expect, it } from "vitest";
import { agentType } from "../../api/agenttype.ts";
import { loadSample } from "../../tests/fixtures/manifests.ts";
import { buildObjects } from "./objects.ts";

const settings = {
  sidecarImage: "s",
  wrapperImage: "w",
  imagePullPolicy: "IfNotPresent" as const,
  sidecarResources: {},
  memoryMaxBytes: 1024,
  metricsFromNamespaces: ["monitoring", "agenttype-system", "monitoring"],
};

function policyOf(edit: (spec: Record<string, unknown>) => void = () => {}) {
  const manifest = loadSample("agenttype_node-researcher.yaml");
  manifest.metadata.namespace = "team-a";
  manifest.metadata.uid = "3f2c0e1a-0000-4000-8000-000000000001";
  delete manifest.spec.tools;
  edit(manifest.spec);
  return buildObjects(agentType.parse(manifest), [], settings).networkPolicy;
}

describe("the AgentType's NetworkPolicy", () => {
  it("by default admits only the metrics port, from the configured namespaces, and leaves egress open", () => {
    const policy = policyOf();
    expect(policy?.metadata?.name).toBe("researcher");
    expect(policy?.spec).toEqual({
      podSelector: { matchLabels: { "agenttype.dev/agent": "researcher" } },
      policyTypes: ["Ingress"],
      ingress: [
        {
          from: [
            { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "agenttype-system" } } },
            { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } },
          ],
          ports: [{ protocol: "TCP", port: 9090 }],
        },
      ],
    });
  });

  it("follows the metrics port the AgentType chose", () => {
    const policy = policyOf((spec) => (spec.sidecar = { metricsPort: 19090 }));
    expect(JSON.stringify(policy?.spec?.ingress)).toContain('"port":19090');
  });

  it("is not built when switched off", () => {
    expect(policyOf((spec) => (spec.network = { policy: "disabled" }))).toBeUndefined();
  });

  it("declared egress: DNS, then each endpoint as precisely as a NetworkPolicy can name it", () => {
    const policy = policyOf((spec) => {
      spec.network = { egress: "declared" };
      (spec.llm as { providers: unknown[] }).providers = [
        { name: "pod-ip", type: "ollama", endpoint: "http://10.1.2.3:11434", model: "m" },
        { name: "v6", type: "ollama", endpoint: "http://[fd00::5]:8080", model: "m" },
        { name: "svc", type: "ollama", endpoint: "http://ollama.models.svc.cluster.local:11434", model: "m" },
        { name: "outside", type: "ollama", endpoint: "https://llm.example.com", model: "m" },
        { name: "aws", type: "bedrock", region: "eu-west-1", model: "m" },
      ];
      (spec.llm as { fallback?: unknown }).fallback = undefined;
    });
    expect(policy?.spec?.policyTypes).toEqual(["Ingress", "Egress"]);
    expect(policy?.spec?.egress).toEqual([
      {
        ports: [
          { protocol: "UDP", port: 53 },
          { protocol: "TCP", port: 53 },
        ],
      },
      { to: [{ ipBlock: { cidr: "10.1.2.3/32" } }], ports: [{ protocol: "TCP", port: 11434 }] },
      { to: [{ ipBlock: { cidr: "fd00::5/128" } }], ports: [{ protocol: "TCP", port: 8080 }] },
      // The Service's pods listen on its targetPort, which only the Service knows: its namespace.
      { to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "models" } } }] },
      // Host names and Bedrock's regional endpoint: any address, that port only (one rule).
      { ports: [{ protocol: "TCP", port: 443 }] },
    ]);
  });

  it("declared egress reaches the resolved tools too", () => {
    const manifest = loadSample("agenttype_node-researcher.yaml");
    manifest.metadata.namespace = "team-a";
    manifest.metadata.uid = "3f2c0e1a-0000-4000-8000-000000000001";
    manifest.spec.network = { egress: "declared" };
    manifest.spec.llm = undefined;
    const agent = agentType.parse(manifest);
    const tool = {
      name: "web-search",
      version: "1.3.0",
      agentTool: {
        metadata: { name: "web-search-1-3-0", namespace: "team-a" },
        spec: {
          name: "web-search",
          version: "1.3.0",
          description: "d",
          protocol: "mcp",
          endpoint: { service: { name: "web-search", port: 8080, path: "/mcp" } },
          timeoutSeconds: 20,
        },
      },
    };
    const policy = buildObjects(agent, [tool] as never, settings).networkPolicy;
    expect(policy?.spec?.egress?.[1]).toEqual({
      to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "team-a" } } }],
    });
  });

  it("admits nothing when no namespace is configured: an empty `from` would admit everyone", () => {
    const manifest = loadSample("agenttype_python-summarizer.yaml");
    manifest.metadata.namespace = "team-a";
    manifest.metadata.uid = "3f2c0e1a-0000-4000-8000-000000000001";
    const built = buildObjects(agentType.parse(manifest), [], { ...settings, metricsFromNamespaces: [] });
    expect(built.networkPolicy?.spec?.ingress).toEqual([]);
  });

  it("admits pods with the configured labels from any namespace, beside the configured namespaces", () => {
    const manifest = loadSample("agenttype_python-summarizer.yaml");
    manifest.metadata.namespace = "team-a";
    manifest.metadata.uid = "3f2c0e1a-0000-4000-8000-000000000001";
    const built = buildObjects(agentType.parse(manifest), [], {
      ...settings,
      metricsFromNamespaces: ["agenttype-system"],
      metricsFromPods: { "app.kubernetes.io/name": "prometheus", "app.kubernetes.io/component": "server" },
    });
    // The wire name is `from` (the client library's type says `_from`).
    expect((built.networkPolicy?.spec?.ingress?.[0] as { from?: unknown } | undefined)?.from).toEqual([
      { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "agenttype-system" } } },
      {
        namespaceSelector: {},
        podSelector: {
          matchLabels: { "app.kubernetes.io/component": "server", "app.kubernetes.io/name": "prometheus" },
        },
      },
    ]);
  });
});
