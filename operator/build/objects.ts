// Builds every object the operator owns for one AgentType: ServiceAccount, sidecar ConfigMap,
// metrics Service and the workload (Deployment, or StatefulSet and its headless Service when
// memory is persistent), a PodDisruptionBudget when there is more than one replica, a
// NetworkPolicy unless switched off,
// following the pod contract of ARCHITECTURE.md. Pure: same inputs, same objects.
import { createHash } from "node:crypto";
import type {
  V1ConfigMap,
  V1Container,
  V1Deployment,
  V1EnvVar,
  V1NetworkPolicy,
  V1OwnerReference,
  V1PodDisruptionBudget,
  V1PodTemplateSpec,
  V1ResourceRequirements,
  V1Service,
  V1ServiceAccount,
  V1StatefulSet,
  V1Volume,
  V1VolumeMount,
} from "@kubernetes/client-node";
import { type AgentType, USER_PRELOAD_VARIABLES } from "../../api/agenttype.ts";
import { API_VERSION } from "../../api/common.ts";
import { MEMORY_PATH, SIDECAR_CONFIG_PATH, type SidecarConfig } from "../../api/sidecarconfig.ts";
import type { Manifest } from "../kube/client.ts";
import type { ResolvedTool } from "../tools/resolve-tools.ts";
import {
  AGENT_CONTAINER,
  CONFIG_HASH_ANNOTATION,
  commonLabels,
  ownedNames,
  SIDECAR_CONTAINER,
  selectorLabels,
  WRAPPER_CONTAINER,
} from "./names.ts";
import { buildNetworkPolicy } from "./network-policy.ts";
import { canonicalQuantity, canonicalResources, MILLI } from "./quantity.ts";
import { agentPodSecurityContext, agentSecurityContext, RESTRICTED } from "./security-context.ts";
import {
  buildSidecarConfig,
  providerCredentialsDir,
  type SidecarDefaults,
  toolSecretDir,
} from "./sidecar-config.ts";
import { storedClaimTemplate, storedEnv } from "./stored-form.ts";

/** The sidecar's memory volume: an emptyDir, or (persistent memory) the StatefulSet's claim template. */
export const MEMORY_VOLUME = "memory";
export interface BuildSettings extends SidecarDefaults {
  sidecarImage: string;
  wrapperImage: string;
  /** Pull policy of the sidecar and wrapper images. */
  imagePullPolicy: "Always" | "IfNotPresent" | "Never";
  /** Resources of the sidecar when the AgentType sets none. */
  sidecarResources: V1ResourceRequirements;
  /**
   * Namespaces whose pods may reach the sidecar's metrics port through the AgentType's
   * NetworkPolicy (the operator's own, Prometheus'); none when unset.
   */
  metricsFromNamespaces?: readonly string[];
  /** Labels of pods, in any namespace, allowed to reach the metrics port too. */
  metricsFromPods?: Readonly<Record<string, string>>;
}

/** Where the wrapper's files appear in the agent container. */
export const WRAPPER_MOUNT = "/opt/agenttype";
const CONFIG_FILE = "sidecar.json";

export type Workload =
  | (Manifest<V1Deployment> & { kind: "Deployment" })
  | (Manifest<V1StatefulSet> & { kind: "StatefulSet" });

export interface DesiredObjects {
  serviceAccount: Manifest<V1ServiceAccount>;
  configMap: Manifest<V1ConfigMap>;
  metricsService: Manifest<V1Service>;
  /** Persistent memory only: the StatefulSet's governing Service, for per-pod DNS names. */
  headlessService?: Manifest<V1Service>;
  /** More than one replica only: a node drain evicts one pod at a time. */
  disruptionBudget?: Manifest<V1PodDisruptionBudget>;
  /** Unless network.policy is disabled: who may reach the pods, and where they may connect. */
  networkPolicy?: Manifest<V1NetworkPolicy>;
  workload: Workload;
  sidecarConfig: SidecarConfig;
}

function ownerReference(agent: AgentType): V1OwnerReference {
  const uid = agent.metadata.uid;
  if (typeof uid !== "string")
    throw new Error(`AgentType ${agent.metadata.name} has no uid; read it from the API server`);
  return {
    apiVersion: API_VERSION,
    kind: "AgentType",
    name: agent.metadata.name,
    uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** The wrapper's preload per language: the variable it lives in, and how values are joined. */
const PRELOADS = {
  node: { variable: "NODE_OPTIONS", preload: `--require ${WRAPPER_MOUNT}/node/register.cjs`, separator: " " },
  python: { variable: "PYTHONPATH", preload: `${WRAPPER_MOUNT}/python`, separator: ":" },
} as const;

/** What the agent's Anthropic SDK sends as its key: not a credential, and said so. */
const ANTHROPIC_PLACEHOLDER_KEY = "placeholder-the-agenttype-sidecar-holds-the-credentials";

/**
 * The agent's environment: the user's variables as written, plus the pod contract's. A
 * contract variable the user set keeps the user's value; the preload variable is combined so
 * that both the user's value and the wrapper's preload apply. A user's value given through
 * valueFrom cannot be concatenated by Kubernetes, so it is defined under a helper name, in
 * its place, and the preload variable refers to it: the kubelet expands $(NAME) of a
 * variable defined earlier in the list.
 */
export function agentEnv(agent: AgentType, config: SidecarConfig): V1EnvVar[] {
  const base = `http://127.0.0.1:${config.listen.port}`;
  let user = (agent.spec.env ?? []) as V1EnvVar[];
  const contract: V1EnvVar[] = [
    { name: "OPENAI_BASE_URL", value: `${base}/v1` },
    { name: "OLLAMA_HOST", value: base },
    { name: "ANTHROPIC_BASE_URL", value: base },
    // The Anthropic SDKs refuse to start without a key; the real credentials stay in the sidecar.
    { name: "ANTHROPIC_API_KEY", value: ANTHROPIC_PLACEHOLDER_KEY },
    { name: "AGENTTYPE_TOOLS_URL", value: `${base}/tools` },
    { name: "AGENTTYPE_MCP_URL", value: `${base}/mcp` },
    { name: "AGENTTYPE_MEMORY_URL", value: `${base}/memory` },
    { name: "AGENTTYPE_NAME", value: config.agent.name },
    { name: "AGENTTYPE_NAMESPACE", value: config.agent.namespace },
  ];
  const language = agent.spec.language;
  if (language === "node" || language === "python") {
    const { variable, preload, separator } = PRELOADS[language];
    const own = user.find((e) => e.name === variable);
    let value: string = preload;
    if (own?.valueFrom !== undefined) {
      const helper = USER_PRELOAD_VARIABLES[variable];
      user = user.map((e) => (e === own ? { name: helper, valueFrom: own.valueFrom } : e));
      value = `${preload}${separator}$(${helper})`;
    } else if (own?.value) {
      value = `${preload}${separator}${own.value}`;
    }
    user = user.filter((e) => e.name !== variable);
    contract.push({ name: variable, value });
  }
  return [...user, ...contract.filter((c) => !user.some((e) => e.name === c.name))];
}

function sidecarVolumes(
  agent: AgentType,
  tools: readonly ResolvedTool[],
): { volumes: V1Volume[]; mounts: V1VolumeMount[] } {
  const names = ownedNames(agent);
  const volumes: V1Volume[] = [
    { name: "sidecar-config", configMap: { name: names.configMap } },
    { name: "sidecar-tmp", emptyDir: { sizeLimit: "64Mi" } },
  ];
  const mounts: V1VolumeMount[] = [
    {
      name: "sidecar-config",
      mountPath: SIDECAR_CONFIG_PATH.slice(0, SIDECAR_CONFIG_PATH.lastIndexOf("/")),
      readOnly: true,
    },
    { name: "sidecar-tmp", mountPath: "/tmp" },
    { name: MEMORY_VOLUME, mountPath: MEMORY_PATH },
  ];
  (agent.spec.llm?.providers ?? []).forEach((provider, index) => {
    if (provider.credentialsSecretRef === undefined) return;
    const name = `llm-credentials-${index}`;
    volumes.push({ name, secret: { secretName: provider.credentialsSecretRef.name, defaultMode: 0o440 } });
    mounts.push({ name, mountPath: providerCredentialsDir(provider.name), readOnly: true });
  });
  tools.forEach((tool, index) => {
    const auth = tool.agentTool.spec.auth;
    if (auth === undefined) return;
    const name = `tool-credentials-${index}`;
    const { name: secretName, key } = auth.secretKeyRef;
    volumes.push({ name, secret: { secretName, items: [{ key, path: key }], defaultMode: 0o440 } });
    mounts.push({ name, mountPath: toolSecretDir(tool.name), readOnly: true });
  });
  return { volumes, mounts };
}

function podTemplate(
  agent: AgentType,
  tools: readonly ResolvedTool[],
  config: SidecarConfig,
  configHash: string,
  settings: BuildSettings,
): V1PodTemplateSpec {
  const { spec } = agent;
  const sidecar = sidecarVolumes(agent, tools);
  const wrapper: V1Container = {
    name: WRAPPER_CONTAINER,
    image: settings.wrapperImage,
    imagePullPolicy: settings.imagePullPolicy,
    args: [WRAPPER_MOUNT],
    volumeMounts: [{ name: "agenttype", mountPath: WRAPPER_MOUNT }],
    resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { memory: "64Mi" } },
    securityContext: RESTRICTED,
  };
  const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path, port: "metrics" },
    periodSeconds,
    failureThreshold,
  });
  const sidecarContainer: V1Container = {
    name: SIDECAR_CONTAINER,
    image: settings.sidecarImage,
    imagePullPolicy: settings.imagePullPolicy,
    restartPolicy: "Always",
    args: ["--config", SIDECAR_CONFIG_PATH],
    ports: [{ name: "metrics", containerPort: config.listen.metricsPort }],
    // The kubelet starts the agent once the sidecar has started, or, with a startupProbe, once
    // it answers; each step waits for its 1 s status relist. Node and Python agents get the
    // wrapper's preload, which waits for the sidecar itself, so they skip the probe and start
    // about a second sooner; other runtimes have nothing that waits and keep it. The probe asks
    // /healthz, which answers once the agent API listens: /readyz also waits for the models an
    // ollama provider pulls, which can take longer than any startup bound, and a failing
    // startup probe would restart the sidecar in the middle of the pull.
    ...(spec.language === "generic" ? { startupProbe: probe("/healthz", 1, 120) } : {}),
    readinessProbe: probe("/readyz", 5, 3),
    livenessProbe: probe("/healthz", 10, 3),
    volumeMounts: sidecar.mounts,
    resources: canonicalResources(
      (spec.sidecar.resources as V1ResourceRequirements | undefined) ?? settings.sidecarResources,
    ),
    securityContext: RESTRICTED,
  };
  const agentContext = agentSecurityContext(spec);
  const agentContainer: V1Container = {
    name: AGENT_CONTAINER,
    image: spec.image,
    ...(spec.imagePullPolicy === undefined ? {} : { imagePullPolicy: spec.imagePullPolicy }),
    ...(spec.command === undefined ? {} : { command: spec.command }),
    ...(spec.args === undefined ? {} : { args: spec.args }),
    env: storedEnv(agentEnv(agent, config)),
    ...(spec.resources === undefined
      ? {}
      : { resources: canonicalResources(spec.resources as V1ResourceRequirements) }),
    volumeMounts: [{ name: "agenttype", mountPath: WRAPPER_MOUNT, readOnly: true }],
    ...(agentContext === undefined ? {} : { securityContext: agentContext }),
    // A terminal for agents that want one: `kubectl agenttype attach` talks to it.
    ...(spec.interactive === true ? { stdin: true, tty: true } : {}),
  };
  const volumes: V1Volume[] = [{ name: "agenttype", emptyDir: { sizeLimit: "64Mi" } }, ...sidecar.volumes];
  if (spec.memory.type === "ephemeral") {
    volumes.push({
      name: MEMORY_VOLUME,
      emptyDir: spec.memory.size === undefined ? {} : { sizeLimit: canonicalQuantity(spec.memory.size) },
    });
  }
  return {
    metadata: { labels: commonLabels(agent), annotations: { [CONFIG_HASH_ANNOTATION]: configHash } },
    spec: {
      serviceAccountName: ownedNames(agent).serviceAccount,
      // The agent needs no Kubernetes API access; the sidecar is its only door out.
      automountServiceAccountToken: false,
      securityContext: agentPodSecurityContext(spec),
      initContainers: [wrapper, sidecarContainer],
      containers: [agentContainer],
      volumes,
      ...(spec.nodeSelector === undefined ? {} : { nodeSelector: spec.nodeSelector }),
      ...(spec.tolerations === undefined ? {} : { tolerations: spec.tolerations }),
      ...(spec.affinity === undefined ? {} : { affinity: spec.affinity }),
    },
  };
}

/** A stable hash of the sidecar's config; a change rolls the pods. */
export function configHash(config: SidecarConfig): string {
  return createHash("sha256").update(JSON.stringify(config)).digest("hex").slice(0, 16);
}

export function buildObjects(
  agent: AgentType,
  tools: readonly ResolvedTool[],
  settings: BuildSettings,
): DesiredObjects {
  const names = ownedNames(agent);
  const namespace = agent.metadata.namespace;
  const meta = (name: string) => ({
    name,
    namespace,
    labels: commonLabels(agent),
    ownerReferences: [ownerReference(agent)],
  });
  const sidecarConfig = buildSidecarConfig(agent, tools, settings);
  const configText = `${JSON.stringify(sidecarConfig, null, 2)}\n`;
  const template = podTemplate(agent, tools, sidecarConfig, configHash(sidecarConfig), settings);
  const selector = { matchLabels: selectorLabels(agent) };
  const { memory, replicas } = agent.spec;
  const workload: Workload =
    memory.type === "persistent"
      ? {
          apiVersion: "apps/v1",
          kind: "StatefulSet",
          metadata: meta(names.workload),
          spec: {
            replicas,
            selector,
            serviceName: names.headlessService,
            template,
            persistentVolumeClaimRetentionPolicy: { whenDeleted: memory.retainPolicy, whenScaled: "Retain" },
            volumeClaimTemplates: [
              storedClaimTemplate({
                metadata: { name: MEMORY_VOLUME },
                spec: {
                  accessModes: ["ReadWriteOnce"],
                  resources: { requests: { storage: canonicalQuantity(String(memory.size), MILLI) } },
                  ...(memory.storageClassName === undefined
                    ? {}
                    : { storageClassName: memory.storageClassName }),
                },
              }),
            ],
          },
        }
      : {
          apiVersion: "apps/v1",
          kind: "Deployment",
          metadata: meta(names.workload),
          spec: { replicas, selector, template },
        };
  const networkPolicy = buildNetworkPolicy(
    agent,
    sidecarConfig,
    { namespaces: settings.metricsFromNamespaces ?? [], podLabels: settings.metricsFromPods ?? {} },
    meta(names.networkPolicy),
    selectorLabels(agent),
  );
  const metricsPort = {
    name: "metrics",
    port: sidecarConfig.listen.metricsPort,
    targetPort: "metrics",
    protocol: "TCP",
  };
  return {
    serviceAccount: {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: meta(names.serviceAccount),
      automountServiceAccountToken: false,
    },
    configMap: {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: meta(names.configMap),
      data: { [CONFIG_FILE]: configText },
    },
    metricsService: {
      apiVersion: "v1",
      kind: "Service",
      metadata: meta(names.metricsService),
      spec: { selector: selectorLabels(agent), ports: [metricsPort] },
    },
    ...(memory.type === "persistent"
      ? {
          headlessService: {
            apiVersion: "v1",
            kind: "Service",
            metadata: meta(names.headlessService),
            // No virtual IP: DNS answers with the pods' own addresses, and each pod of the
            // StatefulSet gets its name (NAME-0.NAME-pods.NAMESPACE.svc).
            spec: { clusterIP: "None", selector: selectorLabels(agent), ports: [metricsPort] },
          },
        }
      : {}),
    ...(replicas > 1
      ? {
          disruptionBudget: {
            apiVersion: "policy/v1",
            kind: "PodDisruptionBudget",
            metadata: meta(names.disruptionBudget),
            spec: {
              maxUnavailable: 1,
              selector,
              // A pod that is not Ready serves nobody: evicting it must not block a drain.
              unhealthyPodEvictionPolicy: "AlwaysAllow",
            },
          },
        }
      : {}),
    ...(networkPolicy === undefined ? {} : { networkPolicy }),
    workload,
    sidecarConfig,
  };
}
