// `make bench-peers`: the sidecar beside the proxy users would pick instead, measured side by
// side in one run. The same OpenAI-compatible /v1/chat/completions requests (1 KB bodies,
// streaming and not) go to one upstream (the faithful OpenAI server, its own process) directly,
// through a bare node:http proxy (bare-proxy.mjs, the floor of any Node proxy), through the
// sidecar (an openai provider: the pass-through path, bundled and started as its image starts
// it) and through LiteLLM's proxy (from PyPI into a venv under $AGENTTYPE_CACHE, telemetry and
// network lookups off). A second sidecar serves the same requests translated to Ollama's API
// (an ollama provider, in front of the faithful Ollama server): the translated path. Fixed rates
// of 20, 200 and 1,000 req/s, each marked sustained or not; the most each serves with 32
// clients; time to first token; CPU time per request and peak RSS of each proxy. Figures are
// medians over rotating rounds, latencies added over direct within a round, CPU per request as a
// ratio to the bare proxy's in the same round (median, and the spread over rounds). The
// translated path has no latency lines: its upstream is another server, so "added over direct"
// would compare two upstreams. The last line is machine-readable.
//   node tests/bench/peers.ts [--rounds 3] [--round-ms 2000]
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { buildSidecar, SIDECAR_NODE_FLAGS } from "../../sidecar/build.ts";
import { freePort } from "../fixtures/ports.ts";
import {
  addedOver,
  countFrom,
  cpuSeconds,
  type Endpoint,
  type Failures,
  fixedRate,
  fmt,
  interleaved,
  maxThroughput,
  median,
  percentiles,
  rssMiB,
  type Sample,
  startProcess,
  waitFor,
  writeSidecarConfig,
} from "./load.ts";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    "round-ms": { type: "string", default: "2000" },
  },
});
const ROUNDS = countFrom("rounds", args.rounds, 1);
const ROUND_MS = countFrom("round-ms", args["round-ms"], 100);
const RATES = [20, 200, 1000] as const;
const CLIENTS = 32;
/** LiteLLM imports a great deal before it listens; under load, a minute is not too long. */
const LITELLM_START_MS = 180_000;

const root = new URL("../../", import.meta.url).pathname;
const failures: Failures = { count: 0 };

const TARGETS = ["direct", "bare", "sidecar", "translated", "litellm"] as const;
type Target = (typeof TARGETS)[number];
/** The targets whose latency is compared with direct's: those in front of the OpenAI upstream. */
const SAME_UPSTREAM = ["direct", "bare", "sidecar", "litellm"] as const;
const PROXIES = ["bare", "sidecar", "translated", "litellm"] as const;
type Proxy = (typeof PROXIES)[number];
const LATENCY_PROXIES = ["bare", "sidecar", "litellm"] as const;
type Kind = "plain" | "stream";
const LABELS: Record<Target, string> = {
  direct: "direct",
  bare: "bare",
  sidecar: "sidecar pass-through",
  translated: "sidecar translated",
  litellm: "litellm",
};

/** A 1 KB body: a long system message and a short question, so answers stay short. */
function body(stream: boolean): string {
  const make = (pad: number) =>
    JSON.stringify({
      model: "llama3.2",
      stream,
      messages: [
        { role: "system", content: "x".repeat(pad) },
        { role: "user", content: "what is the weather" },
      ],
    });
  return make(1024 - make(0).length);
}

/** LiteLLM's proxy in its venv: its `litellm` command, made by the project's venv script. */
async function litellmCommand(): Promise<string> {
  const { stdout } = await promisify(execFile)(
    join(root, "sidecar/testing/python/venv.sh"),
    [join(root, "tests/bench/litellm-requirements.txt")],
    { timeout: 1_800_000, maxBuffer: 16 * 1024 * 1024 },
  ).catch((error: { stderr?: string; message: string }) => {
    throw new Error(`could not make LiteLLM's venv: ${error.stderr?.trim() || error.message}`);
  });
  const python = stdout.trim().split("\n").at(-1) ?? "";
  return join(python, "..", "litellm");
}

async function main(): Promise<void> {
  const litellm = await litellmCommand();
  const [
    upstreamPort,
    ollamaPort,
    barePort,
    sidecarPort,
    metricsPort,
    translatedPort,
    translatedMetricsPort,
  ] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  const litellmPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "bench-peers-"));
  const upstream = `http://127.0.0.1:${upstreamPort}/v1`;
  const sidecarConfig = (name: string, port: number, metricsPort: number, provider: object) =>
    writeSidecarConfig(join(dir, `${name}.json`), { port, metricsPort, provider });
  const configPath = sidecarConfig("sidecar", sidecarPort, metricsPort, {
    name: "upstream",
    type: "openai",
    endpoint: upstream,
    model: "llama3.2",
  });
  const translatedConfigPath = sidecarConfig("translated", translatedPort, translatedMetricsPort, {
    name: "upstream",
    type: "ollama",
    endpoint: `http://127.0.0.1:${ollamaPort}`,
    model: "llama3.2",
  });
  const litellmConfig = join(dir, "litellm.yaml");
  writeFileSync(
    litellmConfig,
    [
      "model_list:",
      "  - model_name: llama3.2",
      "    litellm_params:",
      "      model: openai/llama3.2",
      `      api_base: ${upstream}`,
      "      api_key: bench-unused",
      "litellm_settings:",
      "  telemetry: false",
      "",
    ].join("\n"),
  );
  const litellmKey = `sk-bench-${randomBytes(16).toString("hex")}`;
  await buildSidecar(join(dir, "sidecar"));
  const node = (nodeArgs: string[]) => startProcess(process.execPath, nodeArgs, { cwd: root });
  const children = {
    upstream: node(["tests/bench/openai-upstream.ts", String(upstreamPort)]),
    ollama: node(["sidecar/testing/ollama-server.ts", "--port", String(ollamaPort)]),
    bare: node(["tests/bench/bare-proxy.mjs", String(barePort), String(upstreamPort)]),
    sidecar: node([...SIDECAR_NODE_FLAGS, join(dir, "sidecar/main.mjs"), "--config", configPath]),
    translated: node([
      ...SIDECAR_NODE_FLAGS,
      join(dir, "sidecar/main.mjs"),
      "--config",
      translatedConfigPath,
    ]),
    // Telemetry off, and the model cost map read from the package instead of fetched from GitHub.
    litellm: startProcess(
      litellm,
      [
        "--config",
        litellmConfig,
        "--host",
        "127.0.0.1",
        "--port",
        String(litellmPort),
        "--telemetry",
        "False",
      ],
      {
        cwd: dir,
        env: {
          PATH: process.env.PATH,
          HOME: dir,
          // LiteLLM refuses to start without a key; requests then carry it, as in any real setup.
          LITELLM_MASTER_KEY: litellmKey,
          LITELLM_TELEMETRY: "False",
          LITELLM_LOCAL_MODEL_COST_MAP: "True",
          LITELLM_LOG: "ERROR",
          DISABLE_SCHEMA_UPDATE: "True",
          NO_DOCS: "True",
        },
      },
    ),
  };
  // Children must not outlive the benchmark, whether it ends, fails or is stopped.
  process.on("exit", () => {
    for (const child of Object.values(children)) child.kill();
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(1));
  try {
    await waitFor(`http://127.0.0.1:${upstreamPort}/v1/models`);
    await waitFor(`http://127.0.0.1:${barePort}/v1/models`);
    await waitFor(`http://127.0.0.1:${ollamaPort}/api/version`);
    await waitFor(`http://127.0.0.1:${metricsPort}/readyz`);
    await waitFor(`http://127.0.0.1:${translatedMetricsPort}/readyz`);
    await waitFor(`http://127.0.0.1:${litellmPort}/health/liveliness`, LITELLM_START_MS);
    const pids: Record<Proxy, number> = {
      bare: children.bare.pid ?? 0,
      sidecar: children.sidecar.pid ?? 0,
      translated: children.translated.pid ?? 0,
      litellm: children.litellm.pid ?? 0,
    };
    const rss: Record<Proxy, number> = { bare: 0, sidecar: 0, translated: 0, litellm: 0 };
    const rssTimer = setInterval(() => {
      for (const p of PROXIES) rss[p] = Math.max(rss[p], rssMiB(pids[p]));
    }, 100);

    const agents = Object.fromEntries(
      TARGETS.map((t) => [t, new http.Agent({ keepAlive: true, maxSockets: 512 })]),
    ) as Record<Target, http.Agent>;
    const ports: Record<Target, number> = {
      direct: upstreamPort,
      bare: barePort,
      sidecar: sidecarPort,
      translated: translatedPort,
      litellm: litellmPort,
    };
    const at = (t: Target): Endpoint => ({
      port: ports[t],
      path: "/v1/chat/completions",
      ...(t === "litellm" ? { headers: { authorization: `Bearer ${litellmKey}` } } : {}),
    });
    const payloads: Record<Kind, string> = { plain: body(false), stream: body(true) };
    console.log(
      `request body ${Buffer.byteLength(payloads.plain)} bytes; medians over ${ROUNDS} rotating rounds of ${ROUND_MS} ms; direct = the upstream itself, bare = a minimal node:http proxy; ${availableParallelism()} cores, load average ${fmt(loadavg()[0] ?? 0)} at start`,
    );
    for (const t of TARGETS) await fixedRate(agents[t], at(t), payloads.plain, 20, ROUND_MS, failures);

    const streamP99At1000: Record<Proxy, number> = { bare: 0, sidecar: 0, translated: 0, litellm: 0 };
    for (const kind of ["plain", "stream"] as const) {
      for (const rate of RATES) {
        const runs = await interleaved(SAME_UPSTREAM, ROUNDS, (t) =>
          fixedRate(agents[t], at(t), payloads[kind], rate, ROUND_MS, failures),
        );
        const samples = Object.fromEntries(
          SAME_UPSTREAM.map((t) => [t, runs[t].map((r) => r.samples)]),
        ) as Record<(typeof SAME_UPSTREAM)[number], Sample[][]>;
        // Sustained: every request answered, the last within a second of the last one sent.
        const sustained = (t: (typeof SAME_UPSTREAM)[number]) =>
          runs[t].every((r) => r.samples.length === r.sent && r.elapsedMs <= ROUND_MS + 1000);
        const d = percentiles(samples.direct.flat(), "totalMs");
        const parts = LATENCY_PROXIES.map((p) => {
          const added = addedOver(samples, "direct", p, "totalMs");
          if (kind === "stream" && rate === 1000) streamP99At1000[p] = added.p99;
          return `${p} p50=${fmt(added.p50)} p99=${fmt(added.p99)}${sustained(p) ? "" : " (not sustained)"}`;
        });
        console.log(
          `${kind === "plain" ? "non-streaming" : "streaming"} at ${rate} req/s, added over direct (p50=${fmt(d.p50)} p99=${fmt(d.p99)}${sustained("direct") ? "" : ", not sustained"}): ${parts.join(" | ")} (ms)`,
        );
        if (kind === "stream" && rate === 20) {
          const ttft = LATENCY_PROXIES.map(
            (p) => `${p} ${fmt(addedOver(samples, "direct", p, "firstByteMs").p50)}`,
          );
          console.log(
            `time to first token at 20 req/s: direct p50=${fmt(percentiles(samples.direct.flat(), "firstByteMs").p50)}; added: ${ttft.join(" | ")} (ms)`,
          );
        }
      }
    }

    const rps: Record<Kind, Record<Target, number>> = {
      plain: { direct: 0, bare: 0, sidecar: 0, translated: 0, litellm: 0 },
      stream: { direct: 0, bare: 0, sidecar: 0, translated: 0, litellm: 0 },
    };
    const cpuUs: Record<Kind, Record<Proxy, number>> = {
      plain: { bare: 0, sidecar: 0, translated: 0, litellm: 0 },
      stream: { bare: 0, sidecar: 0, translated: 0, litellm: 0 },
    };
    /** CPU per request over the bare proxy's of the same round: the median and the spread over rounds. */
    const cpuRatio: Record<Kind, Record<"sidecar" | "translated", Spread>> = {
      plain: { sidecar: NO_SPREAD, translated: NO_SPREAD },
      stream: { sidecar: NO_SPREAD, translated: NO_SPREAD },
    };
    for (const kind of ["plain", "stream"] as const) {
      const runs = await interleaved(TARGETS, ROUNDS, async (t) => {
        const pid = t === "direct" ? undefined : pids[t];
        const before = pid === undefined ? 0 : cpuSeconds(pid);
        const run = await maxThroughput(agents[t], at(t), payloads[kind], CLIENTS, ROUND_MS, failures);
        const cpu = pid === undefined ? 0 : cpuSeconds(pid) - before;
        return { rps: run.rps, cpuUsPerRequest: run.done > 0 ? (cpu * 1e6) / run.done : Number.NaN };
      });
      for (const t of TARGETS) rps[kind][t] = median(runs[t].map((r) => r.rps));
      for (const p of PROXIES) cpuUs[kind][p] = median(runs[p].map((r) => r.cpuUsPerRequest));
      for (const path of ["sidecar", "translated"] as const)
        cpuRatio[kind][path] = spread(
          runs[path].map((r, round) => r.cpuUsPerRequest / (runs.bare[round]?.cpuUsPerRequest ?? Number.NaN)),
        );
      console.log(
        `max throughput ${kind === "plain" ? "non-streaming" : "streaming"}, ${CLIENTS} clients: direct ${fmt(rps[kind].direct, 0)} req/s | ${PROXIES.map((p) => `${LABELS[p]} ${fmt(rps[kind][p], 0)} req/s, CPU ${fmt(cpuUs[kind][p], 0)} us/request`).join(" | ")}`,
      );
    }
    const shown = (s: Spread) => `${fmt(s.median)}x (${fmt(s.min)}-${fmt(s.max)})`;
    console.log(
      `sidecar CPU per request over the bare proxy's in the same round, median (spread over ${ROUNDS} rounds): pass-through ${shown(cpuRatio.plain.sidecar)}, streaming ${shown(cpuRatio.stream.sidecar)} | translated to Ollama ${shown(cpuRatio.plain.translated)}, streaming ${shown(cpuRatio.stream.translated)}`,
    );
    clearInterval(rssTimer);
    const ratio = (a: number, b: number) => fmt(a / b);
    console.log(
      `peak RSS: ${PROXIES.map((p) => `${LABELS[p]} ${fmt(rss[p], 1)} MiB`).join(", ")}; failed requests in the run: ${failures.count}; load average ${fmt(loadavg()[0] ?? 0)} at end`,
    );
    console.log(
      `sidecar against LiteLLM: throughput ${ratio(rps.plain.sidecar, rps.plain.litellm)}x (streaming ${ratio(rps.stream.sidecar, rps.stream.litellm)}x), CPU per request ${ratio(cpuUs.plain.sidecar, cpuUs.plain.litellm)}x (streaming ${ratio(cpuUs.stream.sidecar, cpuUs.stream.litellm)}x), peak RSS ${ratio(rss.sidecar, rss.litellm)}x; against the bare proxy: CPU per request ${ratio(cpuUs.plain.sidecar, cpuUs.plain.bare)}x (streaming ${ratio(cpuUs.stream.sidecar, cpuUs.stream.bare)}x)`,
    );
    for (const agent of Object.values(agents)) agent.destroy();
    console.log(
      `bench-peers sidecar_rps=${fmt(rps.plain.sidecar, 0)} bare_rps=${fmt(rps.plain.bare, 0)} litellm_rps=${fmt(rps.plain.litellm, 0)} sidecar_cpu_us=${fmt(cpuUs.plain.sidecar, 0)} bare_cpu_us=${fmt(cpuUs.plain.bare, 0)} sidecar_stream_cpu_us=${fmt(cpuUs.stream.sidecar, 0)} bare_stream_cpu_us=${fmt(cpuUs.stream.bare, 0)} sidecar_stream_p99_added_ms=${fmt(streamP99At1000.sidecar)} sidecar_rss_mib=${fmt(rss.sidecar, 0)} litellm_rss_mib=${fmt(rss.litellm, 0)} translated_rps=${fmt(rps.plain.translated, 0)} translated_cpu_us=${fmt(cpuUs.plain.translated, 0)} translated_stream_cpu_us=${fmt(cpuUs.stream.translated, 0)} translated_rss_mib=${fmt(rss.translated, 0)} passthrough_cpu_ratio=${fmt(cpuRatio.plain.sidecar.median)} passthrough_stream_cpu_ratio=${fmt(cpuRatio.stream.sidecar.median)} translated_cpu_ratio=${fmt(cpuRatio.plain.translated.median)} translated_stream_cpu_ratio=${fmt(cpuRatio.stream.translated.median)}`,
    );
  } finally {
    for (const child of Object.values(children)) child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Spread {
  median: number;
  min: number;
  max: number;
}
const NO_SPREAD: Spread = { median: Number.NaN, min: Number.NaN, max: Number.NaN };

function spread(values: number[]): Spread {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

await main();
