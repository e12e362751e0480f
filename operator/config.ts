// The operator's settings, from command-line flags with environment variables as fallback,
// validated with zod so that a bad value stops the operator with the flag named.
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import * as z from "zod";
import { dnsLabel, labelKey, labelValue } from "../api/common.ts";
import { parseAs } from "../api/field-errors.ts";

const csv = z
  .string()
  .transform((value) =>
    value
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== ""),
  )
  .pipe(z.array(dnsLabel));

/** `key=value,key=value`: an equality-based label selector, as `kubectl get -l` takes one. */
const labelSelector = z
  .string()
  .transform((value) =>
    value
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "")
      .map((pair) => {
        const at = pair.indexOf("=");
        return at < 0 ? [pair, undefined] : [pair.slice(0, at).trim(), pair.slice(at + 1).trim()];
      }),
  )
  .pipe(
    z.array(
      z.tuple([labelKey, labelValue.optional()]).refine(([, value]) => value !== undefined, {
        message: "expected key=value",
      }),
    ),
  )
  .transform((pairs) => Object.fromEntries(pairs) as Record<string, string>);

const intFrom = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const operatorConfig = z.object({
  namespaces: csv.describe("Namespaces to watch, comma-separated; all when empty."),
  workers: intFrom(1, 64).describe("Reconciles running at once."),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]),
  sidecarImage: z.string().min(1),
  wrapperImage: z.string().min(1),
  imagePullPolicy: z.enum(["Always", "IfNotPresent", "Never"]),
  leaderElection: z.enum(["true", "false"]).transform((v) => v === "true"),
  leaseNamespace: dnsLabel,
  leaseName: dnsLabel,
  identity: z.string().min(1),
  bindAddress: z.string().min(1).describe("Address of /metrics, /healthz and /readyz."),
  port: intFrom(1, 65535),
  resyncSeconds: intFrom(10, 86_400),
  requestTimeoutSeconds: intFrom(1, 600),
  memoryMaxBytes: intFrom(1, 2 ** 40),
  toolProbeSeconds: intFrom(1, 3600),
  metricsFromNamespaces: csv.describe("Namespaces allowed to reach agent pods' metrics port."),
  subresourcesPort: intFrom(0, 65535).describe("Port of the aggregated API; 0: not served."),
  subresourcesService: dnsLabel.describe("The Service kube-apiserver reaches the aggregated API through."),
  subresourcesMaxSessions: intFrom(1, 7).describe(
    "Most attach and exec -i/-t sessions open at once to one AgentHost through the aggregated API.",
  ),
  metricsFromPods: labelSelector.describe(
    "Labels of pods, in any namespace, allowed to reach agent pods' metrics port.",
  ),
});

export type OperatorConfig = z.output<typeof operatorConfig>;

/** Each setting's flag (the kebab-case of its name), environment variable, default and meaning. */
const FLAGS: Record<keyof OperatorConfig, { env: string; default: string; help: string }> = {
  namespaces: {
    env: "WATCH_NAMESPACES",
    default: "",
    help: "namespaces to watch, comma-separated; empty: every namespace",
  },
  workers: { env: "WORKERS", default: "4", help: "reconciles running at once (1-64)" },
  logLevel: {
    env: "LOG_LEVEL",
    default: "info",
    help: "fatal, error, warn, info, debug or trace (pino JSON on stdout)",
  },
  sidecarImage: {
    env: "SIDECAR_IMAGE",
    default: "agenttype/sidecar:dev",
    help: "image of the sidecar container in agent pods",
  },
  wrapperImage: {
    env: "WRAPPER_IMAGE",
    default: "agenttype/wrapper:dev",
    help: "image of the wrapper init container in agent pods",
  },
  imagePullPolicy: {
    env: "IMAGE_PULL_POLICY",
    default: "IfNotPresent",
    help: "pull policy of the sidecar and wrapper images: Always, IfNotPresent or Never",
  },
  leaderElection: {
    env: "LEADER_ELECTION",
    default: "true",
    help: "true: only the replica holding the Lease reconciles; false: reconcile at once",
  },
  leaseNamespace: {
    env: "POD_NAMESPACE",
    default: "agenttype-system",
    help: "namespace of the leader Lease",
  },
  leaseName: { env: "LEASE_NAME", default: "agenttype-operator", help: "name of the leader Lease" },
  identity: {
    env: "POD_NAME",
    default: `${hostname()}-${process.pid}`,
    help: "this replica's name in the Lease",
  },
  bindAddress: { env: "BIND_ADDRESS", default: "0.0.0.0", help: "address of /metrics, /healthz and /readyz" },
  port: { env: "PORT", default: "8080", help: "port of /metrics, /healthz and /readyz" },
  resyncSeconds: {
    env: "RESYNC_SECONDS",
    default: "600",
    help: "seconds between two resyncs of every watched object (10-86400)",
  },
  requestTimeoutSeconds: {
    env: "REQUEST_TIMEOUT_SECONDS",
    default: "30",
    help: "deadline of each Kubernetes API request (1-600); a leader's writes also end with its lease",
  },
  memoryMaxBytes: {
    env: "MEMORY_MAX_BYTES",
    default: String(64 * 2 ** 20),
    help: "bound of a sidecar's memory store when the AgentType sets no memory.size",
  },
  toolProbeSeconds: {
    env: "TOOL_PROBE_SECONDS",
    default: "30",
    help: "seconds between two probes of each AgentTool's server (1-3600)",
  },
  subresourcesPort: {
    env: "SUBRESOURCES_PORT",
    default: "0",
    help: "port of the aggregated API that serves logs and exec of agents on AgentHosts (TLS, to kube-apiserver's front proxy only); 0: not served",
  },
  subresourcesMaxSessions: {
    env: "SUBRESOURCES_MAX_SESSIONS",
    default: "6",
    help: "most attach and exec -i/-t sessions open at once to one AgentHost through the aggregated API (1-7): each holds one of the 8 SSH channels of the API's connection to the host, and two stay for logs and exec",
  },
  subresourcesService: {
    env: "SUBRESOURCES_SERVICE",
    default: "agenttype-subresources",
    help: "the Service in the operator's namespace (POD_NAMESPACE) that the APIService names: the serving certificate is issued for it",
  },
  metricsFromNamespaces: {
    env: "METRICS_FROM_NAMESPACES",
    default: "",
    help: "namespaces (comma-separated) whose pods may reach agent pods' metrics port through their NetworkPolicy (Prometheus'), besides the operator's own",
  },
  metricsFromPods: {
    env: "METRICS_FROM_PODS",
    default: "",
    help: "labels (key=value, comma-separated) of pods in any namespace that may reach agent pods' metrics port through their NetworkPolicy (Prometheus', for example app.kubernetes.io/name=prometheus)",
  },
};

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** `--flag value` wins over the environment variable, which wins over the default. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): OperatorConfig {
  const options = Object.fromEntries(
    Object.keys(FLAGS).map((name) => [kebab(name), { type: "string" as const }]),
  );
  const { values } = parseArgs({ args: argv, options, strict: true });
  const raw = Object.fromEntries(
    Object.entries(FLAGS).map(([name, flag]) => [name, values[kebab(name)] ?? env[flag.env] ?? flag.default]),
  );
  const parsed = parseAs(operatorConfig, raw);
  if (!parsed.ok) {
    const lines = parsed.errors.map((e) => {
      const name = /^[A-Za-z]+/.exec(e.path)?.[0] as keyof OperatorConfig;
      return `--${kebab(name)} (${FLAGS[name].env}): ${e.message}`;
    });
    throw new Error(`invalid operator configuration:\n${lines.join("\n")}`);
  }
  return parsed.value;
}

/** True when the command line asks for the usage text (`--help` or `-h`) rather than a run. */
export function wantsHelp(argv: string[]): boolean {
  return argv.includes("--help") || argv.includes("-h");
}

/** The usage text: every flag with its environment variable, its default and what it sets. */
export function helpText(): string {
  const rows = Object.entries(FLAGS).map(([name, flag]) => ({
    flag: `--${kebab(name)}`,
    env: flag.env,
    default: flag.default === "" ? '""' : flag.default,
    help: flag.help,
  }));
  const width = (key: "flag" | "env" | "default") => Math.max(...rows.map((r) => r[key].length));
  const [f, e, d] = [width("flag"), width("env"), width("default")];
  const lines = rows.map(
    (r) => `  ${r.flag.padEnd(f)}  ${r.env.padEnd(e)}  ${r.default.padEnd(d)}  ${r.help}`,
  );
  return [
    "Usage: node operator/main.mjs [--flag value ...]   (the image's bundle; operator/main.ts from the sources)",
    "",
    "Runs the AgentType operator against the cluster of KUBECONFIG (or the in-cluster service",
    "account). A flag wins over its environment variable, which wins over the default.",
    "",
    `  ${"flag".padEnd(f)}  ${"environment".padEnd(e)}  ${"default".padEnd(d)}  meaning`,
    ...lines,
    `  ${"--help, -h".padEnd(f)}  ${"".padEnd(e)}  ${"".padEnd(d)}  print this text and exit`,
    "",
  ].join("\n");
}
