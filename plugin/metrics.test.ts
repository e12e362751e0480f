import { describe, expect, it } from "vitest";
import { parseMetrics, summarizeMetrics } from "./metrics.ts";

// As prom-client writes them (sidecar/metrics.ts).
const TEXT = `# HELP gen_ai_client_token_usage Tokens per LLM operation.
# TYPE gen_ai_client_token_usage histogram
gen_ai_client_token_usage_bucket{le="1",gen_ai_operation_name="chat",provider="local",gen_ai_request_model="llama3.2",gen_ai_token_type="input"} 0
gen_ai_client_token_usage_sum{gen_ai_operation_name="chat",provider="local",gen_ai_request_model="llama3.2",gen_ai_token_type="input"} 120
gen_ai_client_token_usage_sum{gen_ai_operation_name="chat",provider="cloud",gen_ai_request_model="claude",gen_ai_token_type="input"} 30
gen_ai_client_token_usage_sum{gen_ai_operation_name="chat",provider="local",gen_ai_request_model="llama3.2",gen_ai_token_type="output"} 45
agenttype_llm_errors_total{provider="local",error_type="timeout"} 2
agenttype_llm_errors_total{provider="cloud",error_type="auth"} 0
agenttype_llm_fallbacks_total{provider="local",reason="failed"} 2
agenttype_llm_rate_limited_total{scope="agent"} 1
agenttype_llm_requests_total{api="chat",outcome="ok"} 7
not a sample
odd_label{msg="a \\"quoted\\" word"} 1
`;

describe("sidecar metrics", () => {
  it("parses label values with escapes and skips what is not a sample", () => {
    const odd = parseMetrics(TEXT).find((s) => s.name === "odd_label");
    expect(odd?.labels.msg).toBe('a "quoted" word');
    expect(parseMetrics(TEXT).some((s) => s.name === "not")).toBe(false);
  });

  it("sums tokens by type over providers, and keeps the non-zero counters", () => {
    const summary = summarizeMetrics(parseMetrics(TEXT));
    expect(summary.tokens).toEqual({ input: 150, output: 45 });
    expect(summary.providerErrors).toEqual([
      { labels: { provider: "local", error_type: "timeout" }, count: 2 },
    ]);
    expect(summary.fallbacks).toEqual([{ labels: { provider: "local", reason: "failed" }, count: 2 }]);
    expect(summary.rateLimited).toEqual([{ labels: { scope: "agent" }, count: 1 }]);
    expect(summary.requests).toEqual([{ labels: { api: "chat", outcome: "ok" }, count: 7 }]);
  });
});
