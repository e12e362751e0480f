import { describe, expect, it } from "vitest";
import { type AgentTool, agentTool } from "../../api/agenttool.ts";
import type { AgentType } from "../../api/agenttype.ts";
import { sidecarConfig as sidecarConfigSchema } from "../../api/sidecarconfig.ts";
import { BUILD_SETTINGS, sampleAgentType } from "../../tests/fixtures/build.ts";
import { loadSample } from "../../tests/fixtures/manifests.ts";
import { resolveTools } from "../tools/resolve-tools.ts";
import { type BuildSettings, buildObjects } from "./objects.ts";
import { RESTRICTED } from "./security-context.ts";

const settings: BuildSettings = BUILD_SETTINGS;
const agentFrom = sampleAgentType;

function toolFrom(file: string, edit: (m: ReturnType<typeof loadSample>) => void = () => {}): AgentTool {
  const manifest = loadSample(file);
  manifest.metadata.namespace = "team-a";
  edit(manifest);
  return agentTool.parse(manifest);
}

const researcher = agentFrom("agenttype_node-researcher.yaml");
const tools = [toolFrom("agenttool_web-search-mcp.yaml"), toolFrom("agenttool_calculator-http.yaml")];
const resolved = resolveTools("researcher", researcher.spec.tools, tools).resolved;
const built = buildObjects(researcher, resolved, settings);
const pod = built.workload.spec?.template.spec;

describe("pod contract", () => {
  it("runs the wrapper, then the sidecar as a native sidecar, then the agent", () => {
    expect(pod?.initContainers?.map((c) => [c.name, c.restartPolicy])).toEqual([
      ["agenttype-wrapper", undefined],
      ["agenttype-sidecar", "Always"],
    ]);
    expect(pod?.containers.map((c) => c.name)).toEqual(["agent"]);
    const sidecar = pod?.initContainers?.[1];
    expect(sidecar?.readinessProbe?.httpGet?.path).toBe("/readyz");
  });

  it("holds a generic agent until the sidecar answers; node and python agents wait in their preload", () => {
    const sidecarOf = (language: string) =>
      buildObjects(
        { ...researcher, spec: { ...researcher.spec, language } } as typeof researcher,
        resolved,
        settings,
      ).workload.spec?.template.spec?.initContainers?.find((c) => c.name === "agenttype-sidecar");
    expect(sidecarOf("generic")?.startupProbe?.httpGet?.path).toBe("/healthz");
    expect(sidecarOf("node")?.startupProbe).toBeUndefined();
    expect(sidecarOf("python")?.startupProbe).toBeUndefined();
  });

  it("keeps the agent container as the user wrote it, adding the contract's env and volume", () => {
    const summarizer = agentFrom("agenttype_python-summarizer.yaml");
    const agent = buildObjects(summarizer, [], settings).workload.spec?.template.spec?.containers[0];
    expect(agent?.image).toBe("ghcr.io/acme/summarizer:0.9.0");
    expect(agent?.command).toEqual(["python", "-m", "summarizer"]);
    expect(agent?.args).toEqual(["--max-words", "200"]);
    // security.profile restricted, the default: no uid chosen, the image's USER stays.
    expect(agent?.securityContext).toEqual({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    const env = Object.fromEntries((agent?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(env).toMatchObject({
      SUMMARY_STYLE: "bullet-points",
      SLACK_WEBHOOK: { secretKeyRef: { name: "summarizer-slack", key: "webhook" } },
      OPENAI_BASE_URL: "http://127.0.0.1:4000/v1",
      OLLAMA_HOST: "http://127.0.0.1:4000",
      ANTHROPIC_BASE_URL: "http://127.0.0.1:4000",
      ANTHROPIC_API_KEY: "placeholder-the-agenttype-sidecar-holds-the-credentials",
      AGENTTYPE_TOOLS_URL: "http://127.0.0.1:4000/tools",
      AGENTTYPE_MCP_URL: "http://127.0.0.1:4000/mcp",
      AGENTTYPE_MEMORY_URL: "http://127.0.0.1:4000/memory",
      AGENTTYPE_NAME: "summarizer",
      AGENTTYPE_NAMESPACE: "team-a",
      PYTHONPATH: "/opt/agenttype/python",
    });
    expect(agent?.volumeMounts).toEqual([{ name: "agenttype", mountPath: "/opt/agenttype", readOnly: true }]);
  });

  it("gives an interactive agent a stdin and a TTY, and others neither", () => {
    const interactive = agentFrom("agenttype_node-researcher.yaml", (m) => (m.spec.interactive = true));
    const agent = buildObjects(interactive, resolved, settings).workload.spec?.template.spec?.containers[0];
    expect([agent?.stdin, agent?.tty]).toEqual([true, true]);
    expect([pod?.containers[0]?.stdin, pod?.containers[0]?.tty]).toEqual([undefined, undefined]);
  });

  it("preloads node through NODE_OPTIONS, keeping the user's own options", () => {
    const agent = agentFrom("agenttype_node-researcher.yaml", (m) =>
      m.spec.env.push({ name: "NODE_OPTIONS", value: "--max-old-space-size=256" }),
    );
    const env = buildObjects(agent, [], settings).workload.spec?.template.spec?.containers[0]?.env ?? [];
    expect(env.filter((e) => e.name === "NODE_OPTIONS")).toEqual([
      { name: "NODE_OPTIONS", value: "--require /opt/agenttype/node/register.cjs --max-old-space-size=256" },
    ]);
  });

  it("keeps a NODE_OPTIONS given through valueFrom, behind the preload, by dependent expansion", () => {
    const fromSecret = { secretKeyRef: { name: "node-flags", key: "options" } };
    const agent = agentFrom("agenttype_node-researcher.yaml", (m) =>
      m.spec.env.push({ name: "NODE_OPTIONS", valueFrom: fromSecret }, { name: "AFTER", value: "x" }),
    );
    const env = buildObjects(agent, [], settings).workload.spec?.template.spec?.containers[0]?.env ?? [];
    const names = env.map((e) => e.name);
    // Kubernetes expands $(VAR) only for variables defined earlier in the list.
    expect(names.indexOf("AGENTTYPE_USER_NODE_OPTIONS")).toBeLessThan(names.indexOf("NODE_OPTIONS"));
    expect(env.filter((e) => e.name === "AGENTTYPE_USER_NODE_OPTIONS")).toEqual([
      { name: "AGENTTYPE_USER_NODE_OPTIONS", valueFrom: fromSecret },
    ]);
    expect(env.filter((e) => e.name === "NODE_OPTIONS")).toEqual([
      {
        name: "NODE_OPTIONS",
        value: "--require /opt/agenttype/node/register.cjs $(AGENTTYPE_USER_NODE_OPTIONS)",
      },
    ]);
  });

  it("keeps a PYTHONPATH given through valueFrom, after the wrapper's directory", () => {
    const fromConfigMap = { configMapKeyRef: { name: "paths", key: "pythonpath", optional: true } };
    const agent = agentFrom("agenttype_python-summarizer.yaml", (m) =>
      m.spec.env.push({ name: "PYTHONPATH", valueFrom: fromConfigMap }),
    );
    const env = buildObjects(agent, [], settings).workload.spec?.template.spec?.containers[0]?.env ?? [];
    expect(env.filter((e) => e.name.endsWith("PYTHONPATH"))).toEqual([
      { name: "AGENTTYPE_USER_PYTHONPATH", valueFrom: fromConfigMap },
      { name: "PYTHONPATH", value: "/opt/agenttype/python:$(AGENTTYPE_USER_PYTHONPATH)" },
    ]);
  });

  it("passes NODE_OPTIONS from valueFrom through untouched when the agent is not a node agent", () => {
    const fromSecret = { secretKeyRef: { name: "node-flags", key: "options" } };
    const agent = agentFrom("agenttype_python-summarizer.yaml", (m) =>
      m.spec.env.push({ name: "NODE_OPTIONS", valueFrom: fromSecret }),
    );
    const env = buildObjects(agent, [], settings).workload.spec?.template.spec?.containers[0]?.env ?? [];
    expect(env.filter((e) => e.name.endsWith("NODE_OPTIONS"))).toEqual([
      { name: "NODE_OPTIONS", valueFrom: fromSecret },
    ]);
  });

  it("lets a contract variable the user set keep the user's value, once", () => {
    const agent = agentFrom("agenttype_python-summarizer.yaml", (m) =>
      m.spec.env.push({ name: "OPENAI_BASE_URL", value: "http://my-proxy:8080/v1" }),
    );
    const env = buildObjects(agent, [], settings).workload.spec?.template.spec?.containers[0]?.env ?? [];
    expect(env.filter((e) => e.name === "OPENAI_BASE_URL")).toEqual([
      { name: "OPENAI_BASE_URL", value: "http://my-proxy:8080/v1" },
    ]);
  });

  it("mounts provider and tool credentials into the sidecar only", () => {
    const secretVolumes = (pod?.volumes ?? [])
      .filter((v) => v.secret)
      .map((v) => [v.name, v.secret?.secretName]);
    expect(secretVolumes).toEqual([
      ["llm-credentials-1", "bedrock-credentials"],
      ["tool-credentials-0", "web-search-api"],
    ]);
    const sidecarMounts = pod?.initContainers?.[1]?.volumeMounts?.map((m) => m.name) ?? [];
    expect(sidecarMounts).toEqual(expect.arrayContaining(["llm-credentials-1", "tool-credentials-0"]));
    for (const container of [...(pod?.containers ?? []), pod?.initContainers?.[0]]) {
      expect(container?.volumeMounts?.map((m) => m.name)).toEqual(["agenttype"]);
      expect(JSON.stringify(container?.env ?? [])).not.toContain("bedrock-credentials");
    }
  });

  it("mounts openai and anthropic API keys into the sidecar only, and gives it their headers and version", () => {
    const coding = buildObjects(agentFrom("agenttype_coding-assistant.yaml"), [], settings);
    const spec = coding.workload.spec?.template.spec;
    expect((spec?.volumes ?? []).filter((v) => v.secret).map((v) => [v.name, v.secret?.secretName])).toEqual([
      ["llm-credentials-0", "vllm-key"],
      ["llm-credentials-1", "anthropic-key"],
      ["llm-credentials-2", "bedrock-credentials"],
    ]);
    expect(spec?.initContainers?.[1]?.volumeMounts?.filter((m) => m.name.startsWith("llm-"))).toEqual([
      { name: "llm-credentials-0", mountPath: "/var/run/agenttype/credentials/vllm", readOnly: true },
      { name: "llm-credentials-1", mountPath: "/var/run/agenttype/credentials/claude", readOnly: true },
      { name: "llm-credentials-2", mountPath: "/var/run/agenttype/credentials/cloud", readOnly: true },
    ]);
    for (const container of [...(spec?.containers ?? []), spec?.initContainers?.[0]]) {
      expect(container?.volumeMounts?.map((m) => m.name)).toEqual(["agenttype"]);
      expect(JSON.stringify(container?.env ?? [])).not.toMatch(/vllm-key|anthropic-key/);
    }
    const providers = coding.sidecarConfig.llm?.providers ?? [];
    expect(providers.map((p) => [p.name, p.type, p.credentialsDir])).toEqual([
      ["vllm", "openai", "/var/run/agenttype/credentials/vllm"],
      ["claude", "anthropic", "/var/run/agenttype/credentials/claude"],
      ["cloud", "bedrock", "/var/run/agenttype/credentials/cloud"],
    ]);
    expect(providers[0]?.headers).toEqual({ "X-Team": "platform" });
    expect(providers[1]?.anthropicVersion).toBe("2023-06-01");
  });

  it("runs our containers under the restricted profile", () => {
    for (const container of pod?.initContainers ?? []) expect(container.securityContext).toEqual(RESTRICTED);
    expect(pod?.automountServiceAccountToken).toBe(false);
  });

  it("passes placement through", () => {
    const summarizer = buildObjects(agentFrom("agenttype_python-summarizer.yaml"), [], settings);
    expect(summarizer.workload.spec?.template.spec?.nodeSelector).toEqual({ "kubernetes.io/arch": "amd64" });
    expect(summarizer.workload.spec?.template.spec?.tolerations?.[0]?.key).toBe("workload");
  });
});

describe("workload", () => {
  it("is a StatefulSet with a claim per replica when memory is persistent", () => {
    expect(built.workload.kind).toBe("StatefulSet");
    if (built.workload.kind !== "StatefulSet") return;
    expect(built.workload.spec?.replicas).toBe(2);
    expect(built.workload.spec?.volumeClaimTemplates?.[0]?.spec?.resources?.requests).toEqual({
      storage: "1Gi",
    });
    expect(built.workload.spec?.persistentVolumeClaimRetentionPolicy?.whenDeleted).toBe("Retain");
  });

  it("is a Deployment with an emptyDir memory when memory is ephemeral", () => {
    const summarizer = buildObjects(agentFrom("agenttype_python-summarizer.yaml"), [], settings);
    expect(summarizer.workload.kind).toBe("Deployment");
    expect(summarizer.workload.spec?.template.spec?.volumes?.find((v) => v.name === "memory")).toEqual({
      name: "memory",
      emptyDir: {},
    });
  });

  it("persistent memory: the StatefulSet is governed by a headless Service of its own", () => {
    expect(built.workload.kind).toBe("StatefulSet");
    expect(built.workload.kind === "StatefulSet" && built.workload.spec?.serviceName).toBe("researcher-pods");
    expect(built.headlessService?.metadata?.name).toBe("researcher-pods");
    expect(built.headlessService?.spec).toEqual({
      clusterIP: "None",
      selector: { "agenttype.dev/agent": "researcher" },
      ports: [{ name: "metrics", port: 9090, targetPort: "metrics", protocol: "TCP" }],
    });
    // The metrics Service stays what it was: a virtual IP for Prometheus.
    expect(built.metricsService.spec?.clusterIP).toBeUndefined();
    const ephemeral = buildObjects(agentFrom("agenttype_python-summarizer.yaml"), [], settings);
    expect(ephemeral.headlessService).toBeUndefined();
  });

  it("more than one replica: a PodDisruptionBudget lets a drain evict one pod at a time", () => {
    expect(built.disruptionBudget?.metadata?.name).toBe("researcher");
    expect(built.disruptionBudget?.spec).toEqual({
      maxUnavailable: 1,
      selector: { matchLabels: { "agenttype.dev/agent": "researcher" } },
      unhealthyPodEvictionPolicy: "AlwaysAllow",
    });
    for (const replicas of [0, 1]) {
      const agent = agentFrom("agenttype_node-researcher.yaml", (m) => (m.spec.replicas = replicas));
      expect(
        buildObjects(agent, resolved, settings).disruptionBudget,
        `replicas ${replicas}`,
      ).toBeUndefined();
    }
  });

  it("every object is owned by the AgentType as its controller", () => {
    for (const object of [
      built.serviceAccount,
      built.configMap,
      built.metricsService,
      built.headlessService,
      built.disruptionBudget,
      built.workload,
    ]) {
      expect(object).toBeDefined();
      expect(object?.metadata?.namespace).toBe("team-a");
      expect(object?.metadata?.ownerReferences).toEqual([
        {
          apiVersion: "agenttype.dev/v1alpha1",
          kind: "AgentType",
          name: "researcher",
          uid: "3f2c0e1a-0000-4000-8000-000000000001",
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
    }
  });

  it("rolls the pods when the sidecar config changes, and only then", () => {
    const hash = (agent: AgentType) =>
      buildObjects(agent, resolved, settings).workload.spec?.template.metadata?.annotations?.[
        "agenttype.dev/config-hash"
      ];
    const same = agentFrom("agenttype_node-researcher.yaml");
    const otherModel = agentFrom(
      "agenttype_node-researcher.yaml",
      (m) => (m.spec.llm.providers[0].model = "llama3.3"),
    );
    expect(hash(same)).toBe(hash(researcher));
    expect(hash(otherModel)).not.toBe(hash(researcher));
  });
});

describe("sidecar config", () => {
  it("is valid for the sidecar, in fallback order, with credentials as paths", () => {
    const config = sidecarConfigSchema.parse(JSON.parse(built.configMap.data?.["sidecar.json"] ?? "{}"));
    expect(config.llm?.providers.map((p) => [p.name, p.credentialsDir])).toEqual([
      ["local", undefined],
      ["cloud", "/var/run/agenttype/credentials/cloud"],
    ]);
    expect(config.tools.map((t) => [t.name, t.version, t.url])).toEqual([
      ["web-search", "1.3.0", "http://web-search.team-a.svc:8080/mcp"],
      ["calculator", "2.1.0", "http://calculator.tools.svc:8000/evaluate"],
    ]);
    expect(config.tools[0]?.auth).toEqual({
      header: "Authorization",
      scheme: "Bearer",
      secretFile: "/var/run/agenttype/tools/web-search/token",
    });
    expect(config.memory).toEqual({
      type: "persistent",
      path: "/var/lib/agenttype/memory",
      maxBytes: 2 ** 30,
    });
    // The sidecar learns only where credentials are mounted, not even which Secret holds them.
    expect(built.configMap.data?.["sidecar.json"]).not.toMatch(/bedrock-credentials|web-search-api/);
  });

  it("uses only the providers llm.fallback names", () => {
    const agent = agentFrom("agenttype_node-researcher.yaml", (m) => (m.spec.llm.fallback = ["cloud"]));
    expect(buildObjects(agent, [], settings).sidecarConfig.llm?.providers.map((p) => p.name)).toEqual([
      "cloud",
    ]);
  });
});
