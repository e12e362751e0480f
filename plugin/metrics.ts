// The sidecar's Prometheus text read for what `list` and `describe` show: tokens used, failed
// provider attempts, fallbacks and rate-limit hits (names from sidecar/metrics.ts). Pure.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Samples of the text exposition format; comments and malformed lines are skipped. */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (match === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (match[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    const value = Number(match[4]);
    if (!Number.isNaN(value)) samples.push({ name: match[1] as string, labels, value });
  }
  return samples;
}

export interface Counted {
  labels: Record<string, string>;
  count: number;
}

export interface SidecarMetrics {
  tokens: { input: number; output: number };
  requests: Counted[];
  providerErrors: Counted[];
  fallbacks: Counted[];
  rateLimited: Counted[];
}

export function summarizeMetrics(samples: readonly Sample[]): SidecarMetrics {
  const counted = (name: string) =>
    samples.filter((s) => s.name === name && s.value > 0).map((s) => ({ labels: s.labels, count: s.value }));
  const tokens = (type: string) =>
    samples
      .filter((s) => s.name === "gen_ai_client_token_usage_sum" && s.labels.gen_ai_token_type === type)
      .reduce((n, s) => n + s.value, 0);
  return {
    tokens: { input: tokens("input"), output: tokens("output") },
    requests: counted("agenttype_llm_requests_total"),
    providerErrors: counted("agenttype_llm_errors_total"),
    fallbacks: counted("agenttype_llm_fallbacks_total"),
    rateLimited: counted("agenttype_llm_rate_limited_total"),
  };
}
