// Builds what serves the agent from one validated config: the LLM router with its providers
// and budgets, and the tools with their credentials. A reload builds a new one beside the old,
// so requests in flight finish on the services they started with; budgets whose limits did not
// change carry over, so a reload (a rotated credential, say) does not refill them.
import { readFileSync } from "node:fs";
import { ANTHROPIC_DEFAULT_VERSION, providerEndpoint } from "../api/agenttype.ts";
import type { SidecarConfig, SidecarProvider } from "../api/sidecarconfig.ts";
import { readSecretDir } from "./config.ts";
import { Cooldown } from "./cooldown.ts";
import { AnthropicProvider } from "./llm/anthropic.ts";
import { OllamaProvider } from "./llm/ollama.ts";
import { MODEL_RETRY, ModelLifecycles, PULL_IDLE_MS } from "./llm/ollama-models.ts";
import { OpenAiProvider } from "./llm/openai.ts";
import type { LlmProvider } from "./llm/provider.ts";
import { type RateLimit, RateLimiter } from "./llm/ratelimit.ts";
import { Router } from "./llm/router.ts";
import type { Metrics } from "./metrics.ts";
import { Redactor } from "./redact.ts";
import { TOOL_COOLDOWN } from "./tools/errors.ts";
import { McpGateway } from "./tools/mcp.ts";
import type { ToolServices } from "./tools/routes.ts";

export interface Services {
  config: SidecarConfig;
  router: Router | undefined;
  /** The ollama providers' models, made ready before the sidecar reports ready. */
  models: ModelLifecycles;
  tools: ToolServices;
  budgets: Budgets;
  /** Strips every credential below from what is relayed to the agent. */
  redact: Redactor;
}

/** Rate limiters by the config field that sets them, with that field's value. */
export type Budgets = Map<string, { limit: string; limiter: RateLimiter }>;

/** The limiter for `field`: the previous services' when its limit is unchanged, else a full one. */
function budget(
  budgets: Budgets,
  previous: Budgets | undefined,
  field: string,
  limit: RateLimit,
  now: number,
) {
  const value = JSON.stringify(limit);
  const kept = previous?.get(field);
  const limiter = kept !== undefined && kept.limit === value ? kept.limiter : new RateLimiter(limit, now);
  budgets.set(field, { limit: value, limiter });
  return limiter;
}

/** A config that validates but cannot be used, named by field like a schema error. */
class ConfigError extends Error {
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = "ConfigError";
  }
}

/** The Authorization header of an ollama provider with a token, none without. */
function bearer(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

function readCredentials(dir: string, field: string): Record<string, string> {
  try {
    return readSecretDir(dir);
  } catch (error) {
    throw new ConfigError(field, `cannot read the credentials directory ${dir}: ${(error as Error).message}`);
  }
}

async function buildProvider(
  p: SidecarProvider,
  field: string,
  credentials: Record<string, string> | undefined,
): Promise<LlmProvider> {
  if (p.type === "ollama") {
    // The schema requires an endpoint for ollama; the check keeps the types honest.
    if (p.endpoint === undefined)
      throw new ConfigError(`${field}.endpoint`, "an ollama provider needs an endpoint");
    const token = credentials?.token;
    return new OllamaProvider({
      name: p.name,
      endpoint: p.endpoint,
      model: p.model,
      ...(token === undefined ? {} : { token }),
    });
  }
  if (p.type === "openai" || p.type === "anthropic") {
    const apiKey = credentials?.apiKey;
    if (credentials !== undefined && apiKey === undefined)
      throw new ConfigError(
        `${field}.credentialsDir`,
        `${p.credentialsDir} must hold the file apiKey (the key of the provider's Secret)`,
      );
    const common = {
      name: p.name,
      model: p.model,
      ...(apiKey === undefined ? {} : { apiKey }),
      ...(p.headers === undefined ? {} : { headers: p.headers }),
    };
    if (p.type === "anthropic")
      return new AnthropicProvider({
        ...common,
        endpoint: providerEndpoint(p),
        version: p.anthropicVersion ?? ANTHROPIC_DEFAULT_VERSION,
      });
    // The schema requires an endpoint for openai; the check keeps the types honest.
    if (p.endpoint === undefined)
      throw new ConfigError(`${field}.endpoint`, "an openai provider needs an endpoint");
    return new OpenAiProvider({ ...common, endpoint: p.endpoint });
  }
  if (p.region === undefined) throw new ConfigError(`${field}.region`, "a bedrock provider needs a region");
  let aws: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
  if (credentials !== undefined) {
    const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = credentials;
    if (accessKeyId === undefined || secretAccessKey === undefined) {
      throw new ConfigError(
        `${field}.credentialsDir`,
        `${p.credentialsDir} must hold the files AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (keys of the provider's Secret)`,
      );
    }
    aws = { accessKeyId, secretAccessKey };
    if (credentials.AWS_SESSION_TOKEN !== undefined) aws.sessionToken = credentials.AWS_SESSION_TOKEN;
  }
  // The AWS SDK costs tens of MiB of memory; only agents with a Bedrock provider load it.
  const { BedrockProvider } = await import("./llm/bedrock.ts");
  return new BedrockProvider({
    name: p.name,
    model: p.model,
    region: p.region,
    ...(p.endpoint === undefined ? {} : { endpoint: p.endpoint }),
    ...(aws === undefined ? {} : { credentials: aws }),
  });
}

export async function buildServices(
  config: SidecarConfig,
  metrics: Metrics,
  previous?: Budgets,
): Promise<Services> {
  const now = Date.now();
  const budgets: Budgets = new Map();
  let router: Router | undefined;
  let models = new ModelLifecycles([]);
  const held: string[] = [];
  if (config.llm !== undefined) {
    const llm = config.llm;
    const credentials = llm.providers.map((p, i) =>
      p.credentialsDir === undefined
        ? undefined
        : readCredentials(p.credentialsDir, `llm.providers[${i}].credentialsDir`),
    );
    for (const values of credentials) held.push(...Object.values(values ?? {}));
    const providers = await Promise.all(
      llm.providers.map((p, i) => buildProvider(p, `llm.providers[${i}]`, credentials[i])),
    );
    router = new Router({
      providers: llm.providers.map((p, i) => ({
        provider: providers[i] as LlmProvider,
        where: p.type === "bedrock" && p.endpoint === undefined ? `region ${p.region}` : providerEndpoint(p),
        timeoutMs: (p.timeoutSeconds ?? llm.timeoutSeconds) * 1000,
        ...(p.rateLimit === undefined
          ? {}
          : { limiter: budget(budgets, previous, `llm.providers[${p.name}].rateLimit`, p.rateLimit, now) }),
      })),
      retries: llm.retries,
      cooldown: llm.cooldown,
      ...(llm.rateLimit === undefined
        ? {}
        : { limiter: budget(budgets, previous, "llm.rateLimit", llm.rateLimit, now) }),
      metrics,
    });
    models = new ModelLifecycles(
      llm.providers.flatMap((p, i) =>
        p.type === "ollama" && p.endpoint !== undefined
          ? [
              {
                provider: p.name,
                server: { endpoint: p.endpoint.replace(/\/+$/, ""), headers: bearer(credentials[i]?.token) },
                model: p.model,
                pull: p.pull ?? "IfNotPresent",
                checkTimeoutMs: (p.timeoutSeconds ?? llm.timeoutSeconds) * 1000,
                pullIdleMs: PULL_IDLE_MS,
                retry: MODEL_RETRY,
              },
            ]
          : [],
      ),
    );
  }
  const secrets = new Map<string, string>();
  for (const [i, tool] of config.tools.entries()) {
    if (tool.auth === undefined) continue;
    try {
      secrets.set(tool.name, readFileSync(tool.auth.secretFile, "utf8").replace(/\r?\n$/, ""));
    } catch (error) {
      throw new ConfigError(
        `tools[${i}].auth.secretFile`,
        `cannot read the tool's credential: ${(error as Error).message}`,
      );
    }
  }
  held.push(...secrets.values());
  const redact = new Redactor(held);
  return {
    config,
    router,
    models,
    budgets,
    redact,
    tools: {
      tools: config.tools,
      secrets,
      redact,
      gateway: new McpGateway(config.tools, secrets, metrics, redact),
      httpCooldowns: new Map(
        config.tools.filter((t) => t.protocol === "http").map((t) => [t.name, new Cooldown(TOOL_COOLDOWN)]),
      ),
    },
  };
}
