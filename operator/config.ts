// The operator's settings, from command-line flags with environment variables as fallback,
// validated with zod so that a bad value stops the operator with the flag named.
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import * as z from "zod";
import { dnsLabel } from "../api/common.ts";
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
  memoryMaxBytes: intFrom(1, 2 ** 40),
});

export type OperatorConfig = z.output<typeof operatorConfig>;

const FLAGS: Record<keyof OperatorConfig, { env: string; default: string }> = {
  namespaces: { env: "WATCH_NAMESPACES", default: "" },
  workers: { env: "WORKERS", default: "4" },
  logLevel: { env: "LOG_LEVEL", default: "info" },
  sidecarImage: { env: "SIDECAR_IMAGE", default: "agenttype/sidecar:dev" },
  wrapperImage: { env: "WRAPPER_IMAGE", default: "agenttype/wrapper:dev" },
  imagePullPolicy: { env: "IMAGE_PULL_POLICY", default: "IfNotPresent" },
  leaderElection: { env: "LEADER_ELECTION", default: "true" },
  leaseNamespace: { env: "POD_NAMESPACE", default: "agenttype-system" },
  leaseName: { env: "LEASE_NAME", default: "agenttype-operator" },
  identity: { env: "POD_NAME", default: `${hostname()}-${process.pid}` },
  bindAddress: { env: "BIND_ADDRESS", default: "0.0.0.0" },
  port: { env: "PORT", default: "8080" },
  resyncSeconds: { env: "RESYNC_SECONDS", default: "600" },
  memoryMaxBytes: { env: "MEMORY_MAX_BYTES", default: String(64 * 2 ** 20) },
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
