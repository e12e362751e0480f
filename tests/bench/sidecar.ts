// `make bench-sidecar`: the sidecar's cost, measured side by side in one run. The same load
// (1 KB Ollama /api/chat bodies, streaming and not; a fixed 1,000 req/s, then as fast as it
// goes) is sent to a local Ollama-protocol upstream directly and through the sidecar, in
// rotating rounds; each figure is computed within a round (sidecar minus direct, measured
// seconds apart) and the median over rounds is reported, so a burst from another process on
// the machine spoils one round, not the figure. Everything runs on 127.0.0.1; the
// upstream and the sidecar run in their own processes, the sidecar bundled and started as its
// image starts it. A bare node:http proxy (bare-proxy.mjs) is measured
// alongside, as the floor any Node proxy pays on this machine, latency, throughput and memory.
// The last line is machine-readable.
//   node tests/bench/sidecar.ts [--rounds 5] [--round-ms 1000]
// (`make test` runs it with one short round, to show it still runs to its last line.)
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildSidecar, SIDECAR_NODE_FLAGS } from "../../sidecar/build.ts";
import { freePort } from "../fixtures/ports.ts";
import {
  addedOver,
  countFrom,
  type Failures,
  fixedRate,
  fmt,
  interleaved,
  maxThroughput,
  median,
  type Percentiles,
  percentiles,
  rssMiB,
  type Sample,
  startProcess,
  waitFor,
  writeSidecarConfig,
} from "./load.ts";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    "round-ms": { type: "string", default: "1000" },
  },
});

const RATE = 1000;
const ROUND_MS = countFrom("round-ms", args["round-ms"], 100);
const ROUNDS = countFrom("rounds", args.rounds, 1);
const MAX_ROUND_MS = ROUND_MS * 1.5;
const MAX_CONCURRENCY = 32;
const WARMUP_MS = ROUND_MS * 1.5;

const root = new URL("../../", import.meta.url).pathname;

/** Requests that failed (reset, refused, non-200) in the whole run; they are reported, not timed. */
const failures: Failures = { count: 0 };

/** A 1 KB request body: a long system message and a short question, so answers stay short. */
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
  return make(1024 - (make(0).length - 0));
}

const TARGETS = ["direct", "bare", "sidecar"] as const;
type Target = (typeof TARGETS)[number];
type Kind = "plain" | "stream";

const node = (args: string[]) => startProcess(process.execPath, args, { cwd: root });
const at = (port: number) => ({ port, path: "/api/chat" });
async function main(): Promise<void> {
  const [upstreamPort, barePort, sidecarPort, metricsPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const dir = mkdtempSync(join(tmpdir(), "bench-sidecar-"));
  const configPath = writeSidecarConfig(join(dir, "sidecar.json"), {
    port: sidecarPort,
    metricsPort,
    provider: {
      name: "local",
      type: "ollama",
      endpoint: `http://127.0.0.1:${upstreamPort}`,
      model: "llama3.2",
    },
    timeoutSeconds: 30,
  });

  await buildSidecar(join(dir, "sidecar"));
  const children = [
    node(["sidecar/testing/ollama-server.ts", "--port", String(upstreamPort)]),
    node(["tests/bench/bare-proxy.mjs", String(barePort), String(upstreamPort)]),
    node([...SIDECAR_NODE_FLAGS, join(dir, "sidecar/main.mjs"), "--config", configPath]),
  ];
  // Children must not outlive the benchmark, even when it dies of an uncaught error.
  process.on("exit", () => {
    for (const child of children) child.kill();
  });
  try {
    await waitFor(`http://127.0.0.1:${upstreamPort}/api/version`);
    await waitFor(`http://127.0.0.1:${barePort}/api/version`);
    await waitFor(`http://127.0.0.1:${metricsPort}/readyz`);
    const [barePid, sidecarPid] = [children[1]?.pid ?? 0, children[2]?.pid ?? 0];
    let rssMax = 0;
    let bareRssMax = 0;
    const rssTimer = setInterval(() => {
      rssMax = Math.max(rssMax, rssMiB(sidecarPid));
      bareRssMax = Math.max(bareRssMax, rssMiB(barePid));
    }, 100);

    const agents: Record<Target, http.Agent> = {
      direct: new http.Agent({ keepAlive: true, maxSockets: 512 }),
      bare: new http.Agent({ keepAlive: true, maxSockets: 512 }),
      sidecar: new http.Agent({ keepAlive: true, maxSockets: 512 }),
    };
    const ports: Record<Target, number> = { direct: upstreamPort, bare: barePort, sidecar: sidecarPort };
    const payloads: Record<Kind, string> = { plain: body(false), stream: body(true) };
    console.log(
      `request body ${Buffer.byteLength(payloads.plain)} bytes; medians over ${ROUNDS} rotating rounds; direct = the upstream itself, bare = a minimal node:http proxy; ${availableParallelism()} cores, load average ${fmt(loadavg()[0] ?? 0)} at start`,
    );
    for (const target of TARGETS)
      await fixedRate(agents[target], at(ports[target]), payloads.plain, RATE, WARMUP_MS, failures);

    const added: Record<string, Percentiles> = {};
    for (const kind of ["plain", "stream"] as const) {
      const samples = await interleaved(TARGETS, ROUNDS, async (t) => {
        const run = await fixedRate(agents[t], at(ports[t]), payloads[kind], RATE, ROUND_MS, failures);
        return run.samples;
      });
      const keys: (keyof Sample)[] = kind === "plain" ? ["totalMs"] : ["totalMs", "firstByteMs"];
      for (const key of keys) {
        const d = percentiles(samples.direct.flat(), key);
        const b = addedOver(samples, "direct", "bare", key);
        const s = addedOver(samples, "direct", "sidecar", key);
        const label = `${kind === "plain" ? "non-streaming" : "streaming"} at ${RATE} req/s, ${key === "totalMs" ? "whole answer" : "first byte"}`;
        console.log(
          `${label}: direct p50=${fmt(d.p50)} p99=${fmt(d.p99)} | added by bare proxy p50=${fmt(b.p50)} p99=${fmt(b.p99)} | added by sidecar p50=${fmt(s.p50)} p99=${fmt(s.p99)} (ms)`,
        );
        added[`${kind}.${key}`] = s;
      }
    }
    const ratio: Record<Kind, number> = { plain: 0, stream: 0 };
    for (const kind of ["plain", "stream"] as const) {
      const rps = await interleaved(TARGETS, ROUNDS, async (t) => {
        const run = await maxThroughput(
          agents[t],
          at(ports[t]),
          payloads[kind],
          MAX_CONCURRENCY,
          MAX_ROUND_MS,
          failures,
        );
        return run.rps;
      });
      const ratioOf = (t: Target) => median(rps[t].map((r, round) => r / (rps.direct[round] ?? Number.NaN)));
      ratio[kind] = ratioOf("sidecar");
      console.log(
        `max throughput ${kind === "plain" ? "non-streaming" : "streaming"}, ${MAX_CONCURRENCY} clients: direct ${fmt(median(rps.direct), 0)} req/s | bare proxy ${fmt(median(rps.bare), 0)} req/s (${fmt(ratioOf("bare"))}x) | sidecar ${fmt(median(rps.sidecar), 0)} req/s (${fmt(ratio[kind])}x)`,
      );
    }
    clearInterval(rssTimer);
    console.log(
      `RSS under load: sidecar max ${fmt(rssMax, 1)} MiB, bare proxy max ${fmt(bareRssMax, 1)} MiB; failed requests in the run: ${failures.count}; load average ${fmt(loadavg()[0] ?? 0)} at end`,
    );
    for (const agent of Object.values(agents)) agent.destroy();
    const plain = added["plain.totalMs"] ?? { p50: Number.NaN, p99: Number.NaN };
    const ttft = added["stream.firstByteMs"] ?? { p50: Number.NaN, p99: Number.NaN };
    console.log(
      `bench-sidecar p99_added_ms=${fmt(plain.p99)} p50_added_ms=${fmt(plain.p50)} throughput_ratio=${fmt(Math.min(ratio.plain, ratio.stream))} ttft_added_ms=${fmt(ttft.p50)} rss_mib=${fmt(rssMax, 0)}`,
    );
  } finally {
    for (const child of children) child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
