// The sidecar's Prometheus metrics. LLM metrics follow the OpenTelemetry gen_ai semantic
// conventions where they define one (names with dots become underscores); the rest are ours.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

// Bucket boundaries advised by the OpenTelemetry gen_ai conventions.
const DURATION_BUCKETS = [
  0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304];

const MODEL_LABELS = ["gen_ai_operation_name", "provider", "gen_ai_request_model"] as const;

export class Metrics {
  readonly registry = new Registry();
  readonly operationDuration = new Histogram({
    name: "gen_ai_client_operation_duration_seconds",
    help: "Duration of LLM operations answered by a provider, by operation, provider and model.",
    labelNames: MODEL_LABELS,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly tokenUsage = new Histogram({
    name: "gen_ai_client_token_usage",
    help: "Tokens per LLM operation, by token type (input, output), provider and model.",
    labelNames: [...MODEL_LABELS, "gen_ai_token_type"],
    buckets: TOKEN_BUCKETS,
    registers: [this.registry],
  });
  readonly timeToFirstChunk = new Histogram({
    name: "gen_ai_client_operation_time_to_first_chunk_seconds",
    help: "Time from the agent's request to the first streamed chunk, by provider and model.",
    labelNames: MODEL_LABELS,
    buckets: TTFT_BUCKETS,
    registers: [this.registry],
  });
  readonly requests = new Counter({
    name: "agenttype_llm_requests_total",
    help: "LLM requests of the agent, by agent-facing API and outcome (ok, error, rate_limited, cancelled).",
    labelNames: ["api", "outcome"],
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: "agenttype_llm_errors_total",
    help: "Failed provider attempts, by provider and error class (throttled, timeout, auth, ...).",
    labelNames: ["provider", "error_type"],
    registers: [this.registry],
  });
  readonly retries = new Counter({
    name: "agenttype_llm_retries_total",
    help: "Retries of a provider after a retryable failure.",
    labelNames: ["provider"],
    registers: [this.registry],
  });
  readonly fallbacks = new Counter({
    name: "agenttype_llm_fallbacks_total",
    help: "Times a request moved past a provider, by that provider and why (failed, cooled_down, rate_limited).",
    labelNames: ["provider", "reason"],
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: "agenttype_llm_rate_limited_total",
    help: "Requests refused with 429 because a budget was used up, by budget (agent or all providers).",
    labelNames: ["scope"],
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: "agenttype_llm_requests_in_flight",
    help: "LLM requests being answered now.",
    registers: [this.registry],
  });
  readonly toolCalls = new Counter({
    name: "agenttype_tool_calls_total",
    help: "Tool calls forwarded to tool servers, by tool.",
    labelNames: ["tool"],
    registers: [this.registry],
  });
  readonly toolErrors = new Counter({
    name: "agenttype_tool_errors_total",
    help: "Failed tool calls and listings, by tool and error class (timeout, unavailable, error).",
    labelNames: ["tool", "error_type"],
    registers: [this.registry],
  });
  readonly memoryBytes = new Gauge({
    name: "agenttype_memory_bytes",
    help: "Bytes of values in the agent's memory store.",
    registers: [this.registry],
  });
  readonly memoryLimitBytes = new Gauge({
    name: "agenttype_memory_limit_bytes",
    help: "Most bytes of values the agent's memory store accepts.",
    registers: [this.registry],
  });
  readonly memoryKeys = new Gauge({
    name: "agenttype_memory_keys",
    help: "Keys in the agent's memory store.",
    registers: [this.registry],
  });
  readonly modelReady = new Gauge({
    name: "agenttype_llm_model_ready",
    help: "1 when an ollama provider's model is on its server, 0 while it is checked, pulled or failing, by provider and model.",
    labelNames: ["provider", "gen_ai_request_model"],
    registers: [this.registry],
  });
  readonly modelPullCompletedBytes = new Gauge({
    name: "agenttype_llm_model_pull_completed_bytes",
    help: "Bytes of the layer being pulled that have arrived, as Ollama's /api/pull reports them, by provider and model.",
    labelNames: ["provider", "gen_ai_request_model"],
    registers: [this.registry],
  });
  readonly modelPullTotalBytes = new Gauge({
    name: "agenttype_llm_model_pull_total_bytes",
    help: "Size of the layer being pulled, as Ollama's /api/pull reports it, by provider and model.",
    labelNames: ["provider", "gen_ai_request_model"],
    registers: [this.registry],
  });
  readonly modelFailures = new Counter({
    name: "agenttype_llm_model_failures_total",
    help: "Failed checks and pulls of an ollama provider's model (each tried again with backoff), by provider and model.",
    labelNames: ["provider", "gen_ai_request_model"],
    registers: [this.registry],
  });
  readonly configReloads = new Counter({
    name: "agenttype_config_reloads_total",
    help: "Reloads of the sidecar's config file, by result (ok, invalid).",
    labelNames: ["result"],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
