// The sidecar's configuration: the contract between the operator, which writes it into the
// agent's ConfigMap from the AgentType and its resolved tools, and the sidecar, which reads it
// from the mounted file (and reloads it on change). Credentials are never in it, only the
// paths of the mounted Secret files.
import * as z from "zod";
import { providerBase, rateLimit, retries, withProviderRules } from "./agenttype.ts";
import { dnsLabel, dnsSubdomain, httpUrl, port, semverVersion } from "./common.ts";

/** Where the operator mounts a provider's credentials Secret in the sidecar. */
export const CREDENTIALS_ROOT = "/var/run/agenttype/credentials";
/** Where the operator mounts a tool's auth Secret in the sidecar. */
export const TOOL_SECRETS_ROOT = "/var/run/agenttype/tools";
/** Where the sidecar's config file is mounted. */
export const SIDECAR_CONFIG_PATH = "/etc/agenttype/sidecar.json";
/** Where the memory volume is mounted in the sidecar. */
export const MEMORY_PATH = "/var/lib/agenttype/memory";

const sidecarProvider = withProviderRules(
  providerBase
    .omit({ credentialsSecretRef: true })
    .extend({
      credentialsDir: z
        .string()
        .regex(/^\/\S+$/)
        .optional()
        .describe(
          "Directory of the mounted credentials Secret, one file per key; none when the provider needs none.",
        ),
    })
    .describe("One LLM provider as the sidecar calls it."),
);

const sidecarTool = z
  .strictObject({
    name: dnsSubdomain.describe("Name the agent uses for the tool."),
    version: semverVersion.describe("Version resolved for the agent."),
    description: z.string().describe("What the tool does."),
    protocol: z.enum(["mcp", "http"]).describe("mcp: Streamable HTTP MCP server; http: JSON over POST."),
    url: httpUrl.describe(
      "Resolved URL of the tool server (a Service reference becomes its cluster DNS name).",
    ),
    inputSchema: z.looseObject({}).optional().describe("JSON Schema of an http tool's input."),
    auth: z
      .strictObject({
        header: z.string().min(1).describe("HTTP header that carries the credential."),
        scheme: z.string().describe("Prefix of the header value; empty sends the secret as is."),
        secretFile: z
          .string()
          .regex(/^\/\S+$/)
          .describe("File in the sidecar holding the credential."),
      })
      .optional()
      .describe("Credential the sidecar adds to every call; the agent never sees it."),
    timeoutSeconds: z.int().min(1).max(600).describe("Timeout of one call."),
    allowedTools: z
      .array(z.string().min(1))
      .optional()
      .describe("For an mcp tool: names of the server's tools the agent may list and call; all when unset."),
  })
  .describe("A tool resolved for the agent.");

export const sidecarConfig = z
  .strictObject({
    agent: z
      .strictObject({
        name: dnsSubdomain.describe("Name of the AgentType."),
        namespace: dnsLabel.describe("Namespace of the AgentType."),
      })
      .describe("The agent this sidecar serves."),
    listen: z
      .strictObject({
        port: port.default(4000).describe("Loopback port of the agent-facing API."),
        metricsPort: port.default(9090).describe("Port of /metrics, /healthz and /readyz."),
        metricsHost: z
          .string()
          .min(1)
          .default("0.0.0.0")
          .describe(
            "Address the metrics port binds; all interfaces by default so kubelet probes and Prometheus reach it. The agent API always binds 127.0.0.1.",
          ),
      })
      .prefault({})
      .describe("Ports of the sidecar."),
    llm: z
      .strictObject({
        providers: z
          .array(sidecarProvider)
          .min(1)
          .describe("Providers in the order they are tried (fallback order)."),
        retries,
        timeoutSeconds: z.int().min(1).max(3600).describe("Timeout of one request, per provider attempt."),
        rateLimit: rateLimit.optional().describe("The agent's own budget across all providers."),
        cooldown: z
          .strictObject({
            failures: z
              .int()
              .min(1)
              .max(100)
              .default(3)
              .describe("Consecutive failed requests after which a provider is skipped."),
            seconds: z.int().min(1).max(3600).default(30).describe("How long a failing provider is skipped."),
          })
          .prefault({})
          .describe(
            "Cool-down of a provider that keeps failing; skipped providers are used when all are cooling.",
          ),
      })
      .optional()
      .describe("LLM routing; absent when the AgentType has no llm."),
    tools: z.array(sidecarTool).default([]).describe("Tools resolved for the agent."),
    memory: z
      .strictObject({
        type: z
          .enum(["ephemeral", "persistent"])
          .describe("ephemeral: in memory; persistent: SQLite in the memory volume."),
        path: z
          .string()
          .regex(/^\/\S+$/)
          .default(MEMORY_PATH)
          .describe("Directory of the SQLite file."),
        maxBytes: z.int().min(1).describe("Most bytes of values the store holds; a put over it is refused."),
      })
      .describe("The agent's memory store."),
  })
  .describe("Configuration of the agenttype sidecar.");

export type SidecarConfig = z.output<typeof sidecarConfig>;
export type SidecarProvider = z.output<typeof sidecarProvider>;
export type SidecarTool = z.output<typeof sidecarTool>;
