// Builds the sidecar's configuration from an AgentType and its resolved tools. Pure: the
// result is what the operator writes into the agent's ConfigMap.
import type * as z from "zod";
import type { AgentType } from "../../api/agenttype.ts";
import {
  CREDENTIALS_ROOT,
  MEMORY_PATH,
  type SidecarConfig,
  sidecarConfig,
  TOOL_SECRETS_ROOT,
} from "../../api/sidecarconfig.ts";
import type { ResolvedTool } from "../tools/resolve-tools.ts";
import { parseQuantity } from "./quantity.ts";

export interface SidecarDefaults {
  /** Memory store bound when the AgentType gives no memory size. */
  memoryMaxBytes: number;
}

/** The URL the sidecar calls for a tool: the literal URL, or the Service's cluster DNS name. */
export function toolUrl(tool: ResolvedTool): string {
  const { endpoint } = tool.agentTool.spec;
  if (endpoint.url !== undefined) return endpoint.url;
  const service = endpoint.service;
  if (service === undefined) throw new Error(`AgentTool ${tool.agentTool.metadata.name} has no endpoint`);
  const namespace = service.namespace ?? tool.agentTool.metadata.namespace;
  return `http://${service.name}.${namespace}.svc:${service.port}${service.path}`;
}

/** Directory where a tool's auth Secret is mounted in the sidecar. */
export function toolSecretDir(toolName: string): string {
  return `${TOOL_SECRETS_ROOT}/${toolName}`;
}

/** Directory where a provider's credentials Secret is mounted in the sidecar. */
export function providerCredentialsDir(providerName: string): string {
  return `${CREDENTIALS_ROOT}/${providerName}`;
}

export function buildSidecarConfig(
  agent: AgentType,
  tools: readonly ResolvedTool[],
  defaults: SidecarDefaults,
): SidecarConfig {
  const { spec } = agent;
  const config: z.input<typeof sidecarConfig> = {
    agent: { name: agent.metadata.name, namespace: agent.metadata.namespace ?? "default" },
    listen: { port: spec.sidecar.port, metricsPort: spec.sidecar.metricsPort },
    tools: tools.map((tool) => {
      const { spec: toolSpec } = tool.agentTool;
      return {
        name: tool.name,
        version: tool.version,
        description: toolSpec.description,
        protocol: toolSpec.protocol,
        url: toolUrl(tool),
        ...(toolSpec.inputSchema === undefined ? {} : { inputSchema: toolSpec.inputSchema }),
        ...(toolSpec.auth === undefined
          ? {}
          : {
              auth: {
                header: toolSpec.auth.header,
                scheme: toolSpec.auth.scheme,
                secretFile: `${toolSecretDir(tool.name)}/${toolSpec.auth.secretKeyRef.key}`,
              },
            }),
        timeoutSeconds: toolSpec.timeoutSeconds,
      };
    }),
    memory: {
      type: spec.memory.type,
      path: MEMORY_PATH,
      maxBytes:
        spec.memory.size === undefined
          ? defaults.memoryMaxBytes
          : Math.floor(parseQuantity(spec.memory.size)),
    },
  };
  if (spec.llm !== undefined) {
    const { llm } = spec;
    // llm.fallback is the order providers are tried in; without it, declaration order.
    const order = llm.fallback ?? llm.providers.map((p) => p.name);
    config.llm = {
      providers: order.flatMap((name) => {
        const provider = llm.providers.find((p) => p.name === name);
        if (provider === undefined) return [];
        const { credentialsSecretRef, ...rest } = provider;
        return [
          credentialsSecretRef === undefined
            ? rest
            : { ...rest, credentialsDir: providerCredentialsDir(name) },
        ];
      }),
      retries: llm.retries,
      timeoutSeconds: llm.timeoutSeconds,
      ...(llm.rateLimit === undefined ? {} : { rateLimit: llm.rateLimit }),
    };
  }
  // Parsed, so the defaults are filled and the operator never writes a config the sidecar rejects.
  return sidecarConfig.parse(config);
}
