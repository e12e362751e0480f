// Every `make bench-*` target of the README, at a tiny size, from a stopped cluster (as after
// `make cluster-down` on a fresh clone): each must run to its machine-readable last line with
// every field a number (or, for a field that names something, such as the acceleration, present).
// Only that: the figures of a tiny, loaded run mean nothing, and the
// benchmarks themselves stay separate commands.
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { lastLineFields, make, script, tail } from "./make.ts";

const T = 900_000;

beforeAll(async () => {
  const down = await make("cluster-down");
  expect(down.code, tail(down)).toBe(0);
}, T);

afterAll(async () => {
  await make("cluster-down");
}, T);

describe("make bench-* at a tiny size", () => {
  test(
    "make bench-operator BENCH_N=20 BENCH_ROUNDS=1, from a stopped cluster, ends with its fields",
    async () => {
      const run = await make("bench-operator", { BENCH_N: "20", BENCH_ROUNDS: "1" }, {}, T);
      expect(run.code, tail(run)).toBe(0);
      const fields = lastLineFields(run, "bench-operator");
      expect(Object.keys(fields)).toEqual(
        expect.arrayContaining([
          "n",
          "ratio",
          "operator_s",
          "ceiling_s",
          "rss_mib",
          "restart_writes",
          "resync_writes",
          "operator_cpu_ms_per_at",
          "operator_gc_pause_ms_per_at",
          "ceiling_client_cpu_ms_per_at",
        ]),
      );
      expect(fields.n).toBe(20);
      // A number (its parsing of --trace-gc is tests/bench/gc-trace.test.ts): 20 AgentTypes may
      // allocate too little for a scavenge while the clock runs.
      expect(fields.operator_gc_pause_ms_per_at).toBeGreaterThanOrEqual(0);
      // It stops the control plane it started, as it found none running.
      expect(script("tests/cluster/cluster.sh", "status", "control-plane").code).toBe(1);
    },
    T,
  );

  test(
    "make bench-sidecar BENCH_ROUNDS=1 BENCH_ROUND_MS=200 ends with its fields",
    async () => {
      const run = await make("bench-sidecar", { BENCH_ROUNDS: "1", BENCH_ROUND_MS: "200" }, {}, T);
      expect(run.code, tail(run)).toBe(0);
      const fields = lastLineFields(run, "bench-sidecar");
      expect(Object.keys(fields)).toEqual(
        expect.arrayContaining([
          "p99_added_ms",
          "p50_added_ms",
          "throughput_ratio",
          "ttft_added_ms",
          "rss_mib",
        ]),
      );
      expect(run.output).toContain("medians over 1 rotating rounds");
    },
    T,
  );

  test(
    "make bench-peers BENCH_ROUNDS=1 BENCH_ROUND_MS=200 makes LiteLLM's venv and ends with its fields",
    async () => {
      const run = await make("bench-peers", { BENCH_ROUNDS: "1", BENCH_ROUND_MS: "200" }, {}, T);
      expect(run.code, tail(run)).toBe(0);
      const fields = lastLineFields(run, "bench-peers");
      expect(Object.keys(fields).sort()).toEqual(
        [
          "sidecar_rps",
          "bare_rps",
          "litellm_rps",
          "sidecar_cpu_us",
          "bare_cpu_us",
          "sidecar_stream_cpu_us",
          "bare_stream_cpu_us",
          "sidecar_stream_p99_added_ms",
          "sidecar_rss_mib",
          "litellm_rss_mib",
          "translated_rps",
          "translated_cpu_us",
          "translated_stream_cpu_us",
          "translated_rss_mib",
          "passthrough_cpu_ratio",
          "passthrough_stream_cpu_ratio",
          "translated_cpu_ratio",
          "translated_stream_cpu_ratio",
        ].sort(),
      );
      // Every proxy answered: a throughput of zero would be a target that never served.
      for (const rps of [fields.sidecar_rps, fields.bare_rps, fields.litellm_rps, fields.translated_rps])
        expect(Number(rps)).toBeGreaterThan(0);
      expect(run.output).toContain("medians over 1 rotating rounds");
    },
    T,
  );

  test(
    "make bench-proxy-parts BENCH_ROUNDS=1 BENCH_ROUND_MS=200 measures every part against the bare proxy and ends with its fields",
    async () => {
      const run = await make("bench-proxy-parts", { BENCH_ROUNDS: "1", BENCH_ROUND_MS: "200" }, {}, T);
      expect(run.code, tail(run)).toBe(0);
      const fields = lastLineFields(run, "bench-proxy-parts");
      expect(Object.keys(fields).sort()).toEqual(
        [
          "bare_cpu_us",
          "parse",
          "deadline",
          "metrics",
          "deps",
          "fastify",
          "sidecar",
          "rounds",
          "failures",
        ].sort(),
      );
      expect(fields.failures).toBe(0);
      // Every proxy used CPU for its requests: a ratio of 0 or NaN would be one that served nothing.
      for (const part of ["parse", "deadline", "metrics", "deps", "fastify", "sidecar"])
        expect(Number(fields[part])).toBeGreaterThan(0);
      expect(Number(fields.bare_cpu_us)).toBeGreaterThan(0);
    },
    T,
  );

  test(
    "make bench-hosts BENCH_ROUNDS=1 brings up its own host and control plane, ends with its fields, and takes them down",
    async () => {
      const run = await make("bench-hosts", { BENCH_ROUNDS: "1" }, {}, T);
      expect(run.code, tail(run)).toBe(0);
      const fields = lastLineFields(run, "bench-hosts");
      expect(Object.keys(fields)).toEqual(
        expect.arrayContaining(["apply_to_ready_s", "direct_s", "ratio", "rounds"]),
      );
      expect(fields.rounds).toBe(1);
      // Its host's network namespace is gone with everything in it.
      expect(existsSync("/run/netns/agenttype-bench-host")).toBe(false);
    },
    T,
  );
});
