// The AgentType kind: one agent image, how it reaches its LLMs and tools, its memory and
// where it runs. The schema is the single source of truth for types, validation and the CRD.
import * as z from "zod";
import {
  boundedQuantity,
  type CrossFieldRule,
  conditions,
  DNS_1035_LABEL,
  dateTime,
  dnsLabel,
  dnsSubdomain,
  generationNeverGoesBack,
  httpUrl,
  keyedList,
  objectMeta,
  observedGeneration,
  semverRange,
  semverVersion,
  stringMap,
  uniqueList,
  withRule,
} from "./common.ts";
import {
  affinity,
  containerSecurityContext,
  envVarSource,
  nodeSelector,
  podSecurityContext,
  resources,
  sidecarResources,
  toleration,
} from "./pod-fields.ts";

/**
 * The longest AgentType name: its StatefulSet labels each pod with the name of a controller
 * revision, the name plus '-' and a hash of up to 10 characters, and a label value stops at 63.
 */
export const MAX_AGENT_NAME_LENGTH = 52;

const agentTypeName = z
  .string()
  .min(1)
  .max(MAX_AGENT_NAME_LENGTH, {
    error: `must have at most ${MAX_AGENT_NAME_LENGTH} characters: the StatefulSet's pod labels are made from it`,
  })
  .regex(new RegExp(DNS_1035_LABEL), {
    error:
      "must be a DNS-1035 label (lower-case letters, digits and '-', starting with a letter and ending alphanumeric): the agent's Service is named after it",
  });

// A container image reference as the kubelet parses it (distribution's reference grammar): an
// optional registry host and port, a lower-case repository path, an optional tag and digest.
const DOMAIN_COMPONENT = "[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?";
const PATH_COMPONENT = "[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*";
export const IMAGE = `^((${DOMAIN_COMPONENT}(\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(:[0-9]+)?/)?${PATH_COMPONENT}(/${PATH_COMPONENT})*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@(sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128}))?$`;
// The repository name (without tag and digest) has at most 255 characters once the default
// registry docker.io/library/ (18) is added.
const IMAGE_NAME_LENGTH = "^[^@]{1,237}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@.+)?$";

const image = withRule(
  z
    .string()
    .min(1)
    .max(512)
    .regex(new RegExp(IMAGE), {
      error:
        "must be a container image reference such as ghcr.io/acme/agent:1.2: an optional registry host, a lower-case repository path, an optional :tag and an optional @sha256: digest",
    })
    .regex(new RegExp(IMAGE_NAME_LENGTH), {
      error: "must have a repository name of at most 237 characters (255 with docker.io/library/)",
    }),
  {
    cel: "!self.matches('^[a-f0-9]{64}$')",
    message: "must not be 64 hexadecimal digits: that is an image ID, not a reference",
    holds: (value) => !/^[a-f0-9]{64}$/.test(value),
  },
);

/** Helper variables the operator defines to combine a user's valueFrom with the wrapper's preload. */
export const USER_PRELOAD_VARIABLES = {
  NODE_OPTIONS: "AGENTTYPE_USER_NODE_OPTIONS",
  PYTHONPATH: "AGENTTYPE_USER_PYTHONPATH",
} as const;
const RESERVED_NAMES = Object.values(USER_PRELOAD_VARIABLES);

type EnvVar = {
  name: string;
  value?: string | undefined;
  valueFrom?: z.output<typeof envVarSource> | undefined;
};

const envVar = withRule(
  withRule(
    withRule(
      z
        .strictObject({
          name: z
            .string()
            .min(1)
            .max(256)
            .regex(/^[-._a-zA-Z][-._a-zA-Z0-9]*$/, {
              error:
                "must be an environment variable name: letters, digits, '_', '-' and '.', not starting with a digit",
            })
            .describe("Name of the environment variable."),
          value: z.string().max(32768).optional().describe("Literal value."),
          valueFrom: envVarSource.optional(),
        })
        .describe("An environment variable of the agent container, as in a Kubernetes container."),
      {
        cel: "!(has(self.value) && has(self.valueFrom))",
        message: "value and valueFrom are mutually exclusive",
        field: "valueFrom",
        reason: "FieldValueForbidden",
        holds: (env: EnvVar) => !(env.value !== undefined && env.valueFrom !== undefined),
      },
    ),
    {
      cel: `!(self.name in ${JSON.stringify(RESERVED_NAMES)})`,
      message: `${RESERVED_NAMES.join(" and ")} are reserved: the operator sets them to combine NODE_OPTIONS and PYTHONPATH with the wrapper's preload`,
      field: "name",
      reason: "FieldValueForbidden",
      holds: (env: EnvVar) => !(RESERVED_NAMES as readonly string[]).includes(env.name),
    },
  ),
  {
    // The operator puts the wrapper's preload in front of $(AGENTTYPE_USER_NODE_OPTIONS); a
    // missing optional value would leave that text unexpanded, and node refuses to start.
    cel: "self.name != 'NODE_OPTIONS' || !has(self.valueFrom) || !((has(self.valueFrom.configMapKeyRef) && has(self.valueFrom.configMapKeyRef.optional) && self.valueFrom.configMapKeyRef.optional) || (has(self.valueFrom.secretKeyRef) && has(self.valueFrom.secretKeyRef.optional) && self.valueFrom.secretKeyRef.optional))",
    message:
      "NODE_OPTIONS from a ConfigMap or Secret must not be optional: the wrapper's preload is combined with it, and node does not start when it is missing",
    field: "valueFrom",
    reason: "FieldValueForbidden",
    holds: (env: EnvVar) =>
      env.name !== "NODE_OPTIONS" ||
      !(env.valueFrom?.configMapKeyRef?.optional === true || env.valueFrom?.secretKeyRef?.optional === true),
  },
);

export const rateLimit = z
  .strictObject({
    requestsPerMinute: z.int().min(1).max(1_000_000).optional().describe("Requests allowed per minute."),
    tokensPerMinute: z
      .int()
      .min(1)
      .max(1_000_000_000)
      .optional()
      .describe(
        "Tokens (prompt plus completion) allowed per minute; estimated before a call and corrected after.",
      ),
  })
  .describe("Token-bucket limits; a request over the limit is answered 429 with Retry-After.");

/** The Messages API an anthropic provider calls when it names no endpoint. */
export const ANTHROPIC_DEFAULT_ENDPOINT = "https://api.anthropic.com";
/** The anthropic-version an anthropic provider sends when it names none. */
export const ANTHROPIC_DEFAULT_VERSION = "2023-06-01";
const HEADER_NAME = "^[A-Za-z0-9-]+$";
/** Header names a provider's `headers` may not set, in any case. */
const RESERVED_HEADER_NAMES = [
  "authorization",
  "api-key",
  "x-api-key",
  "anthropic-version",
  "host",
  "content-type",
  "content-length",
  "transfer-encoding",
  "connection",
];
const RESERVED_HEADERS = new RegExp(`^(${RESERVED_HEADER_NAMES.join("|")})$`, "i");

/** When an ollama provider's model is pulled onto its server (as a container's imagePullPolicy). */
export const pullPolicy = z.enum(["IfNotPresent", "Always", "Never"]);
export type PullPolicy = z.infer<typeof pullPolicy>;

/** A provider's fields; the sidecar's config reuses them with a credentials path instead. */
export const providerBase = z
  .strictObject({
    name: dnsLabel.describe("Name of the provider, used in llm.fallback and in metrics."),
    type: z
      .enum(["ollama", "bedrock", "openai", "anthropic"])
      .describe(
        "Provider protocol: ollama (REST API), bedrock (Converse API), openai (any OpenAI-compatible server: chat completions, Responses, embeddings) or anthropic (Messages API).",
      ),
    endpoint: httpUrl
      .optional()
      .describe(
        "Base URL of the provider. Required for ollama and openai (for openai the base URL its SDKs take, usually ending in /v1, for example https://api.openai.com/v1 or http://vllm.models.svc:8000/v1); for anthropic it defaults to https://api.anthropic.com; for bedrock it overrides the regional endpoint.",
      ),
    model: z
      .string()
      .min(1)
      .max(256)
      .describe("Model to call, for example llama3.2 or anthropic.claude-3-5-sonnet-20240620-v1:0."),
    pull: pullPolicy
      .optional()
      .describe(
        "Model lifecycle of an ollama provider, before the sidecar reports ready: IfNotPresent (when unset) pulls the model through the server's /api/pull when /api/tags lacks it; Always pulls it at every sidecar start; Never only checks it is there. A model that is not there and cannot be pulled keeps the sidecar not ready, with the reason in the AgentType's ModelsReady condition.",
      ),
    region: z
      .string()
      .max(64)
      .regex(/^[a-z]{2}(-[a-z]+)+-[0-9]+$/, { error: "must be an AWS region such as us-east-1" })
      .optional()
      .describe("AWS region of a bedrock provider, for example us-east-1."),
    headers: stringMap(
      {
        patterns: [HEADER_NAME],
        message: "must be an HTTP header name: letters, digits and '-'",
        maxLength: 128,
      },
      z.string().max(4096),
      16,
    )
      .optional()
      .describe(
        "Extra HTTP headers of an openai or anthropic provider, sent with every request (for example an organization or project id). Stored in the sidecar's ConfigMap, so not for secrets: the API key belongs in credentialsSecretRef.",
      ),
    anthropicVersion: z
      .string()
      .max(10)
      .regex(/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/, { error: "must be a date such as 2023-06-01" })
      .optional()
      .describe(
        `anthropic-version header of an anthropic provider; ${ANTHROPIC_DEFAULT_VERSION} when unset.`,
      ),
    credentialsSecretRef: z
      .strictObject({
        name: dnsSubdomain.describe("Name of the Secret, in the AgentType's namespace."),
      })
      .optional()
      .describe(
        "Secret with the provider's credentials, mounted into the sidecar only, never into the agent. bedrock: keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optionally AWS_SESSION_TOKEN; ollama: key token, sent as a bearer token; openai: key apiKey, sent as a bearer token; anthropic: key apiKey, sent as x-api-key.",
      ),
    timeoutSeconds: z
      .int()
      .min(1)
      .max(3600)
      .optional()
      .describe("Timeout of one request to this provider; defaults to llm.timeoutSeconds."),
    rateLimit: rateLimit
      .optional()
      .describe("This provider's quota; when it is used up the request falls back to the next provider."),
  })
  .describe("One LLM provider.");

/** The rules every provider obeys, in the AgentType and in the sidecar's config. */
export function withProviderRules<
  S extends z.ZodType<{
    type: string;
    region?: string;
    endpoint?: string;
    headers?: Record<string, string>;
    anthropicVersion?: string;
    pull?: string;
  }>,
>(schema: S): S {
  const rules: CrossFieldRule<z.output<S>>[] = [
    {
      cel: "self.type != 'bedrock' || has(self.region)",
      message: "a bedrock provider needs a region",
      field: "region",
      reason: "FieldValueRequired",
      holds: (p) => p.type !== "bedrock" || p.region !== undefined,
    },
    {
      cel: "self.type == 'bedrock' || !has(self.region)",
      message: "region is for bedrock providers only",
      field: "region",
      reason: "FieldValueForbidden",
      holds: (p) => p.type === "bedrock" || p.region === undefined,
    },
    {
      cel: "!(self.type in ['ollama', 'openai']) || has(self.endpoint)",
      message: "an ollama or openai provider needs an endpoint",
      field: "endpoint",
      reason: "FieldValueRequired",
      holds: (p) => !(p.type === "ollama" || p.type === "openai") || p.endpoint !== undefined,
    },
    {
      cel: "self.type in ['openai', 'anthropic'] || !has(self.headers)",
      message: "headers are for openai and anthropic providers only",
      field: "headers",
      reason: "FieldValueForbidden",
      holds: (p) => p.type === "openai" || p.type === "anthropic" || p.headers === undefined,
    },
    {
      // The credential headers come from the Secret alone, and the framing ones from the sidecar.
      cel: `!has(self.headers) || self.headers.all(k, !k.matches(${JSON.stringify(`(?i)${RESERVED_HEADERS.source}`)}))`,
      message:
        "headers must not set authorization, api-key, x-api-key, anthropic-version, host, content-type, content-length, transfer-encoding or connection: the API key belongs in credentialsSecretRef, the rest the sidecar sets",
      field: "headers",
      reason: "FieldValueForbidden",
      holds: (p) => Object.keys(p.headers ?? {}).every((k) => !RESERVED_HEADERS.test(k)),
    },
    {
      cel: "self.type == 'anthropic' || !has(self.anthropicVersion)",
      message: "anthropicVersion is for anthropic providers only",
      field: "anthropicVersion",
      reason: "FieldValueForbidden",
      holds: (p) => p.type === "anthropic" || p.anthropicVersion === undefined,
    },
    {
      cel: "self.type == 'ollama' || !has(self.pull)",
      message: "pull is for ollama providers only: only they have models to pull",
      field: "pull",
      reason: "FieldValueForbidden",
      holds: (p) => p.type === "ollama" || p.pull === undefined,
    },
  ];
  return rules.reduce((s, rule) => withRule(s, rule), schema);
}

/** Where a provider's requests go: its endpoint, or the default of its type. */
export function providerEndpoint(p: { type: string; endpoint?: string; region?: string }): string {
  if (p.endpoint !== undefined) return p.endpoint;
  return p.type === "anthropic"
    ? ANTHROPIC_DEFAULT_ENDPOINT
    : `https://bedrock-runtime.${p.region}.amazonaws.com`;
}

export const provider = withProviderRules(providerBase);

export const retries = withRule(
  z
    .strictObject({
      maxAttempts: z
        .int()
        .min(1)
        .max(10)
        .default(3)
        .describe(
          "Attempts per provider before falling back, counting the first; retries happen only before the agent received a byte.",
        ),
      initialBackoffMs: z
        .int()
        .min(1)
        .max(60_000)
        .default(200)
        .describe("Backoff before the first retry, jittered."),
      maxBackoffMs: z
        .int()
        .min(1)
        .max(300_000)
        .default(5_000)
        .describe("Upper bound of the exponential backoff."),
    })
    .describe("Retries of retryable failures (throttling, 5xx, timeouts, connection errors)."),
  {
    cel: "self.maxBackoffMs >= self.initialBackoffMs",
    message: "maxBackoffMs must be at least initialBackoffMs",
    field: "maxBackoffMs",
    holds: (r) => r.maxBackoffMs >= r.initialBackoffMs,
  },
);

const llm = withRule(
  z
    .strictObject({
      providers: keyedList(provider, "name", 8)
        .min(1)
        .describe("LLM providers the sidecar may call; without llm.fallback they are tried in this order."),
      fallback: uniqueList(dnsLabel, 8)
        .min(1, {
          error: "must name at least one provider; leave fallback out to try every provider in order",
        })
        .optional()
        .describe("Order in which providers are tried, by name; providers not named here are not used."),
      retries: retries.prefault({}).describe("Retries of retryable failures."),
      timeoutSeconds: z
        .int()
        .min(1)
        .max(3600)
        .default(120)
        .describe("Timeout of one LLM request, per provider attempt."),
      rateLimit: rateLimit.optional().describe("The agent's own budget across all providers."),
    })
    .describe("How the agent's LLM calls are routed by the sidecar."),
  {
    cel: "!has(self.fallback) || self.fallback.all(f, self.providers.exists(p, p.name == f))",
    message: "fallback may name only providers declared in llm.providers",
    field: "fallback",
    holds: (l) => (l.fallback ?? []).every((f) => l.providers.some((p) => p.name === f)),
  },
);

const toolRequest = z
  .strictObject({
    name: dnsSubdomain.describe("Name of the tool (an AgentTool's spec.name, or its metadata.name)."),
    version: semverRange
      .default("*")
      .describe("Semver range of acceptable versions; the highest match wins."),
    required: z
      .boolean()
      .default(true)
      .describe(
        "When true the agent does not start without this tool; when false a missing tool is only reported.",
      ),
  })
  .describe("A tool the agent asks for.");

const memory = withRule(
  withRule(
    z
      .strictObject({
        type: z
          .enum(["ephemeral", "persistent"])
          .default("ephemeral")
          .describe(
            "ephemeral: lost with the pod (or the host's replica); persistent: a PersistentVolumeClaim per replica (StatefulSet), on runtime kvm a data disk per replica that outlives its guests.",
          ),
        size: boundedQuantity({
          min: "1Mi",
          max: "1Ti",
          message: "must be a size from 1Mi to 1Ti, such as 512Mi or 10Gi",
        })
          .optional()
          .describe("Size of the memory volume, from 1Mi to 1Ti; required when persistent."),
        storageClassName: dnsSubdomain
          .optional()
          .describe("StorageClass of the persistent volume; the cluster default when unset."),
        retainPolicy: z
          .enum(["Retain", "Delete"])
          .default("Delete")
          .describe(
            "What happens to persistent volumes (runtime kvm: data disks) when the AgentType is deleted; scaling down keeps them.",
          ),
      })
      .describe("The agent's memory store, served by the sidecar."),
    {
      cel: "self.type != 'persistent' || has(self.size)",
      message: "persistent memory needs a size",
      field: "size",
      reason: "FieldValueRequired",
      holds: (m) => m.type !== "persistent" || m.size !== undefined,
    },
  ),
  {
    cel: "self.type == 'persistent' || !has(self.storageClassName)",
    message: "storageClassName applies only to persistent memory",
    field: "storageClassName",
    reason: "FieldValueForbidden",
    holds: (m) => m.type === "persistent" || m.storageClassName === undefined,
  },
);

const runtime = withRule(
  withRule(
    z
      .strictObject({
        type: z
          .enum(["kubernetes", "containerd", "kvm"])
          .default("kubernetes")
          .describe("kubernetes: pods in this cluster; containerd or kvm: an out-of-cluster AgentHost."),
        hostRef: z
          .strictObject({ name: dnsSubdomain.describe("Name of the AgentHost.") })
          .optional()
          .describe("The AgentHost to run on; required for containerd and kvm."),
      })
      .describe("Where the agent runs."),
    {
      cel: "self.type == 'kubernetes' || has(self.hostRef)",
      message: "runtime containerd or kvm needs a hostRef",
      field: "hostRef",
      reason: "FieldValueRequired",
      holds: (r) => r.type === "kubernetes" || r.hostRef !== undefined,
    },
  ),
  {
    cel: "self.type != 'kubernetes' || !has(self.hostRef)",
    message: "hostRef applies only to runtime containerd or kvm",
    field: "hostRef",
    reason: "FieldValueForbidden",
    holds: (r) => r.type !== "kubernetes" || r.hostRef === undefined,
  },
);

/** The sidecar runs without privileges, so it cannot listen below 1024. */
const unprivilegedPort = z
  .int()
  .min(1024, {
    error: "must be at least 1024: the sidecar runs without privileges, and lower ports need them",
  })
  .max(65535);

const sidecar = withRule(
  z
    .strictObject({
      port: unprivilegedPort
        .default(4000)
        .describe(
          "Loopback port of the agent-facing API (LLM proxy, tools, MCP, memory), from 1024 to 65535.",
        ),
      metricsPort: unprivilegedPort
        .default(9090)
        .describe("Port of the sidecar's /metrics and health endpoints, from 1024 to 65535."),
      resources: sidecarResources.optional().describe("Compute resources of the sidecar container."),
    })
    .describe("Settings of the sidecar, for images that already use its default ports."),
  {
    cel: "self.port != self.metricsPort",
    message: "port and metricsPort must differ",
    field: "metricsPort",
    holds: (s) => s.port !== s.metricsPort,
  },
);

const network = withRule(
  z
    .strictObject({
      policy: z
        .enum(["enabled", "disabled"])
        .default("enabled")
        .describe(
          "enabled (the default): a NetworkPolicy admits traffic into the agent's pods only to the sidecar's metrics port, from the operator's namespace and the namespaces it is configured with (Prometheus); disabled: no NetworkPolicy.",
        ),
      egress: z
        .enum(["all", "declared"])
        .default("all")
        .describe(
          "all (the default): the pods may connect anywhere; declared: only to DNS and to the endpoints of the declared LLM providers and resolved tools (docs/security.md says how far a NetworkPolicy can follow them).",
        ),
    })
    .describe("Network isolation of the agent's pods (runtime kubernetes)."),
  {
    cel: "self.egress != 'declared' || self.policy == 'enabled'",
    message: "egress declared needs policy enabled: the egress rules are part of the NetworkPolicy",
    field: "egress",
    holds: (n) => n.egress !== "declared" || n.policy === "enabled",
  },
);

export const SECURITY_PROFILES = ["restricted", "baseline", "none"] as const;

const security = z
  .strictObject({
    profile: z
      .enum(SECURITY_PROFILES)
      .default("restricted")
      .describe(
        "Security settings the operator fills in for the agent container where securityContext and podSecurityContext set none: restricted (the default; meets the restricted Pod Security Standard: runAsNonRoot, no privilege escalation, every capability dropped, seccomp RuntimeDefault), baseline (no privilege escalation, seccomp RuntimeDefault: for images that must run as root) or none.",
      ),
  })
  .describe("The agent container's security profile (docs/adr/0009-agent-security-profile.md).");

type SecuritySpec = {
  runtime: { type: string };
  security: { profile: string };
  securityContext?: { runAsUser?: number | undefined; runAsNonRoot?: boolean | undefined } | undefined;
  podSecurityContext?: { runAsUser?: number | undefined; runAsNonRoot?: boolean | undefined } | undefined;
};

/** The container's value of a field, else the pod's: how the kubelet resolves it. */
const effective = <K extends "runAsUser" | "runAsNonRoot">(s: SecuritySpec, field: K) =>
  s.securityContext?.[field] ?? s.podSecurityContext?.[field];
const celEffective = (field: string, otherwise: string) =>
  `(has(self.securityContext) && has(self.securityContext.${field}) ? self.securityContext.${field} : (has(self.podSecurityContext) && has(self.podSecurityContext.${field}) ? self.podSecurityContext.${field} : ${otherwise}))`;

/** The rules that join the two security contexts and the profile. */
function withSecurityRules<S extends z.ZodType<SecuritySpec>>(schema: S): S {
  return withRule(
    withRule(schema, {
      cel: `!(${celEffective("runAsUser", "-1")} == 0 && ${celEffective("runAsNonRoot", "self.security.profile == 'restricted'")})`,
      message:
        "the agent would run as root (runAsUser 0) with runAsNonRoot true, which the kubelet refuses: set runAsNonRoot false and security.profile baseline or none, or run as another user",
      field: "securityContext",
      holds: (s) =>
        !(
          effective(s, "runAsUser") === 0 &&
          (effective(s, "runAsNonRoot") ?? s.security.profile === "restricted")
        ),
    }),
    {
      cel: "self.runtime.type == 'kubernetes' || (!has(self.securityContext) && !has(self.podSecurityContext))",
      message:
        "securityContext and podSecurityContext apply only to runtime kubernetes: an AgentHost runs the agent with its own settings",
      field: "securityContext",
      reason: "FieldValueForbidden",
      holds: (s) =>
        s.runtime.type === "kubernetes" ||
        (s.securityContext === undefined && s.podSecurityContext === undefined),
    },
  );
}

const agentTypeSpecWithoutSuspend = withSecurityRules(
  z
    .strictObject({
      image: image.describe("The agent's container image, run unmodified."),
      imagePullPolicy: z
        .enum(["Always", "IfNotPresent", "Never"])
        .optional()
        .describe("Image pull policy of the agent container."),
      command: z
        .array(z.string())
        .max(64)
        .optional()
        .describe("Entrypoint override; the image's ENTRYPOINT when unset."),
      args: z.array(z.string()).max(256).optional().describe("Arguments; the image's CMD when unset."),
      env: keyedList(envVar, "name", 128).optional().describe("Environment of the agent container."),
      resources: resources.optional().describe("Compute resources of the agent container."),
      suspend: z
        .boolean()
        .optional()
        .describe(
          "Runtime kvm: true saves each guest's memory and state to disk (libvirt managed save) and frees its CPU and memory; false or unset resumes them where they were. Status: Suspended=True, Ready=False with reason Suspended.",
        ),
      interactive: z
        .boolean()
        .optional()
        .describe(
          "Give the agent container a stdin and a TTY, for agents that want a terminal (kubectl agenttype attach). On runtime containerd and kvm a tmux session on the host (in the guest) holds the console.",
        ),
      language: z
        .enum(["node", "python", "generic"])
        .default("generic")
        .describe(
          "Runtime hint for the wrapper's preload: node (NODE_OPTIONS --require) or python (sitecustomize), whose preload holds the agent until the sidecar answers; or generic (environment only), where a startup probe on the sidecar makes the kubelet hold it.",
        ),
      replicas: z.int().min(0).max(1000).default(1).describe("Number of agent pods (scale subresource)."),
      llm: llm.optional().describe("LLM providers and routing; without it the agent gets no LLM proxy."),
      tools: keyedList(toolRequest, "name", 64)
        .optional()
        .describe("Tools the agent asks for, resolved against AgentTools."),
      memory: memory.prefault({}).describe("The agent's memory store."),
      runtime: runtime.prefault({}).describe("Where the agent runs."),
      sidecar: sidecar.prefault({}).describe("Sidecar settings."),
      nodeSelector: nodeSelector
        .optional()
        .describe("Node labels the agent pods must match (kubernetes runtime)."),
      tolerations: z
        .array(toleration)
        .max(64)
        .optional()
        .describe("Tolerations of the agent pods (kubernetes runtime)."),
      affinity: affinity.optional(),
      network: network.prefault({}),
      security: security.prefault({}),
      securityContext: containerSecurityContext.optional(),
      podSecurityContext: podSecurityContext.optional(),
    })
    .describe("Desired state of an AgentType."),
);

/**
 * Fields that place or keep pods in the cluster, which an AgentHost cannot honour: refused by
 * name on runtime containerd and kvm rather than ignored.
 */
const agentTypeSpecWithHostRules = (
  [
    ["nodeSelector", "nodeSelector chooses cluster nodes"],
    ["tolerations", "tolerations let pods onto tainted cluster nodes"],
    ["affinity", "affinity places pods among cluster nodes"],
  ] as const
).reduce(
  (schema, [field, why]) =>
    withRule(schema, {
      cel: `self.runtime.type == 'kubernetes' || !has(self.${field})`,
      message: `${field} applies only to runtime kubernetes: ${why}, and an AgentHost is no node`,
      field,
      reason: "FieldValueForbidden",
      holds: (s) => s.runtime.type === "kubernetes" || s[field] === undefined,
    }),
  withRule(
    withRule(agentTypeSpecWithoutSuspend, {
      cel: "self.runtime.type != 'containerd' || self.memory.type != 'persistent'",
      message:
        "persistent memory applies to runtime kubernetes (a PersistentVolumeClaim) and kvm (a data disk per replica): a containerd host keeps no volume of a bounded size beyond its replica",
      field: "memory.type",
      reason: "FieldValueForbidden",
      holds: (s) => s.runtime.type !== "containerd" || s.memory.type !== "persistent",
    }),
    {
      cel: "self.runtime.type == 'kubernetes' || !has(self.memory.storageClassName)",
      message:
        "storageClassName applies only to runtime kubernetes: on a KVM host a replica's data disk is a qcow2 file in the AgentHost's kvm.stateDir",
      field: "memory.storageClassName",
      reason: "FieldValueForbidden",
      holds: (s) => s.runtime.type === "kubernetes" || s.memory.storageClassName === undefined,
    },
  ),
);

export const agentTypeSpec = withRule(agentTypeSpecWithHostRules, {
  cel: "self.runtime.type == 'kvm' || !has(self.suspend) || !self.suspend",
  message:
    "suspend applies only to runtime kvm: only a guest's memory can be saved and resumed where it was (scaling to zero would restart the agent)",
  field: "suspend",
  reason: "FieldValueForbidden",
  holds: (s) => s.runtime.type === "kvm" || s.suspend !== true,
});

const resolvedTool = z
  .strictObject({
    name: dnsSubdomain.describe("Name of the tool as requested."),
    version: semverVersion.describe("Version chosen: the highest that matches the requested range."),
    agentTool: dnsSubdomain.describe("The AgentTool object that offers this version."),
    protocol: z.enum(["mcp", "http"]).describe("Protocol of the tool."),
  })
  .describe("A tool request resolved to one AgentTool.");

export const agentTypeStatus = generationNeverGoesBack(
  z.strictObject({
    observedGeneration,
    conditions: conditions.optional(),
    replicas: z.int().min(0).optional().describe("Pods of the agent's workload."),
    readyReplicas: z.int().min(0).optional().describe("Pods whose containers are all ready."),
    selector: z
      .string()
      .optional()
      .describe("Label selector of the agent's pods, for the scale subresource."),
    resolvedTools: keyedList(resolvedTool, "name", 64).optional().describe("Tools resolved for the agent."),
    missingTools: uniqueList(dnsSubdomain, 64).optional().describe("Requested tools no AgentTool satisfies."),
    hostReplicas: z
      .array(
        z.strictObject({
          replica: z.int().min(0).describe("Replica number."),
          host: z.string().max(253).describe("The AgentHost it runs on."),
          state: z.string().max(64).describe("running, starting, restarting, exited, pending or suspended."),
          restarts: z.int().min(0).optional().describe("Times the agent was restarted."),
          guest: z
            .strictObject({
              name: z.string().max(253).describe("The libvirt domain."),
              state: z
                .string()
                .max(64)
                .describe("libvirt's state of it: running, paused, shut off, saved (suspended), crashed."),
              vcpus: z.int().min(0).optional().describe("vCPUs it has."),
              memoryMiB: z.int().min(0).optional().describe("Memory it has, in MiB."),
              cpuSeconds: z
                .int()
                .min(0)
                .optional()
                .describe("CPU time it has used since it started, in seconds."),
              rssMiB: z
                .int()
                .min(0)
                .optional()
                .describe("Memory its QEMU process holds on the host, in MiB."),
              usageAt: dateTime
                .optional()
                .describe("When cpuSeconds and rssMiB were read; refreshed at most once a minute."),
            })
            .optional()
            .describe("Runtime kvm: the replica's guest, as libvirt reports it (dominfo, domstats)."),
        }),
      )
      .max(10_000)
      .optional()
      .describe("Runtime containerd or kvm: the replicas, the host each runs on, and their state."),
  }),
).describe("Observed state of an AgentType.");

export const agentType = z
  .looseObject({
    apiVersion: z.literal("agenttype.dev/v1alpha1"),
    kind: z.literal("AgentType"),
    metadata: objectMeta("Namespaced", agentTypeName),
    spec: agentTypeSpec,
    status: agentTypeStatus.optional(),
  })
  .describe(
    "An AI agent run from an unmodified container image, with an LLM proxy, tools and memory in a sidecar.",
  );

export type AgentType = z.output<typeof agentType>;
export type AgentTypeSpec = z.output<typeof agentTypeSpec>;
export type AgentTypeStatus = z.output<typeof agentTypeStatus>;
export type LlmProvider = z.output<typeof provider>;
