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
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildSidecar, SIDECAR_NODE_FLAGS } from "../../sidecar/build.ts";
import { freePort } from "../fixtures/ports.ts";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    "round-ms": { type: "string", default: "1000" },
  },
});
/** A whole number of at least `min`, or an error naming the flag. */
function countFrom(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`--${flag}: expected a whole number >= ${min}, got ${value}`);
  return n;
}

const RATE = 1000;
const ROUND_MS = countFrom("round-ms", args["round-ms"], 100);
const ROUNDS = countFrom("rounds", args.rounds, 1);
const MAX_ROUND_MS = ROUND_MS * 1.5;
const MAX_CONCURRENCY = 32;
const WARMUP_MS = ROUND_MS * 1.5;

const root = new URL("../../", import.meta.url).pathname;

/** Requests that failed (reset, refused, non-200) in the whole run; they are reported, not timed. */
const failures = { count: 0 };

function startProcess(args: string[]): ChildProcess {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.resume();
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  child.on("exit", (code) => {
    if (code !== 0 && code !== null) process.stderr.write(`${args[0]} exited ${code}: ${stderr}\n`);
  });
  return child;
}

async function waitFor(url: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not come up within 20s`);
}

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

interface Sample {
  totalMs: number;
  firstByteMs: number;
}

function request(agent: http.Agent, port: number, payload: string): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    let firstByte = 0n;
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path: "/api/chat",
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
      },
      (res) => {
        res.on("data", () => {
          if (firstByte === 0n) firstByte = process.hrtime.bigint();
        });
        res.on("end", () => {
          if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
          const end = process.hrtime.bigint();
          resolve({ totalMs: Number(end - started) / 1e6, firstByteMs: Number(firstByte - started) / 1e6 });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

/** Open-loop load at a fixed rate: requests go out on schedule whether or not earlier ones finished. */
async function fixedRate(agent: http.Agent, port: number, payload: string, ms: number): Promise<Sample[]> {
  const samples: Sample[] = [];
  const pending: Promise<void>[] = [];
  const started = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - started;
      const due = Math.min(Math.floor((elapsed * RATE) / 1000), Math.floor((ms * RATE) / 1000));
      for (; sent < due; sent++) {
        pending.push(
          request(agent, port, payload).then(
            (s) => void samples.push(s),
            () => void failures.count++,
          ),
        );
      }
      if (elapsed >= ms) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  await Promise.all(pending);
  return samples;
}

/** Closed-loop load: a fixed number of clients, each sending as soon as its last answer came. */
async function maxThroughput(agent: http.Agent, port: number, payload: string, ms: number): Promise<number> {
  let done = 0;
  const deadline = performance.now() + ms;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: MAX_CONCURRENCY }, async () => {
      while (performance.now() < deadline) {
        await request(agent, port, payload).then(
          () => done++,
          () => failures.count++,
        );
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? "0");
  return kb / 1024;
}

const fmt = (n: number, digits = 2) => n.toFixed(digits);

const TARGETS = ["direct", "bare", "sidecar"] as const;
type Target = (typeof TARGETS)[number];
type Kind = "plain" | "stream";
interface Percentiles {
  p50: number;
  p99: number;
}

/** Runs `measure` on every target, ROUNDS times, rotating the order so drift hits all alike. */
async function interleaved<T>(measure: (target: Target) => Promise<T>): Promise<Record<Target, T[]>> {
  const out: Record<Target, T[]> = { direct: [], bare: [], sidecar: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < TARGETS.length; i++) {
      const target = TARGETS[(i + round) % TARGETS.length] as Target;
      out[target].push(await measure(target));
    }
  }
  return out;
}

function percentiles(samples: Sample[], key: keyof Sample): Percentiles {
  const values = samples.map((s) => s[key]);
  return { p50: percentile(values, 50), p99: percentile(values, 99) };
}

function median(values: number[]): number {
  return percentile(values, 50);
}

/** Per round, `target` minus direct; the median over rounds. */
function addedOver(samples: Record<Target, Sample[][]>, target: Target, key: keyof Sample): Percentiles {
  const rounds = samples.direct.map((direct, round) => {
    const d = percentiles(direct, key);
    const t = percentiles(samples[target][round] ?? [], key);
    return { p50: t.p50 - d.p50, p99: t.p99 - d.p99 };
  });
  return { p50: median(rounds.map((r) => r.p50)), p99: median(rounds.map((r) => r.p99)) };
}

async function main(): Promise<void> {
  const [upstreamPort, barePort, sidecarPort, metricsPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const dir = mkdtempSync(join(tmpdir(), "bench-sidecar-"));
  const configPath = join(dir, "sidecar.json");
  writeFileSync(
    configPath,
    JSON.stringify({
      agent: { name: "bench", namespace: "default" },
      listen: { port: sidecarPort, metricsPort, metricsHost: "127.0.0.1" },
      llm: {
        providers: [
          { name: "local", type: "ollama", endpoint: `http://127.0.0.1:${upstreamPort}`, model: "llama3.2" },
        ],
        retries: { maxAttempts: 1 },
        timeoutSeconds: 30,
      },
      memory: { type: "ephemeral", maxBytes: 1_000_000 },
    }),
  );
  await buildSidecar(join(dir, "sidecar"));
  const children = [
    startProcess(["sidecar/testing/ollama-server.ts", "--port", String(upstreamPort)]),
    startProcess(["tests/bench/bare-proxy.mjs", String(barePort), String(upstreamPort)]),
    startProcess([...SIDECAR_NODE_FLAGS, join(dir, "sidecar/main.mjs"), "--config", configPath]),
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
    for (const target of TARGETS) await fixedRate(agents[target], ports[target], payloads.plain, WARMUP_MS);

    const added: Record<string, Percentiles> = {};
    for (const kind of ["plain", "stream"] as const) {
      const samples = await interleaved((t) => fixedRate(agents[t], ports[t], payloads[kind], ROUND_MS));
      const keys: (keyof Sample)[] = kind === "plain" ? ["totalMs"] : ["totalMs", "firstByteMs"];
      for (const key of keys) {
        const d = percentiles(samples.direct.flat(), key);
        const b = addedOver(samples, "bare", key);
        const s = addedOver(samples, "sidecar", key);
        const label = `${kind === "plain" ? "non-streaming" : "streaming"} at ${RATE} req/s, ${key === "totalMs" ? "whole answer" : "first byte"}`;
        console.log(
          `${label}: direct p50=${fmt(d.p50)} p99=${fmt(d.p99)} | added by bare proxy p50=${fmt(b.p50)} p99=${fmt(b.p99)} | added by sidecar p50=${fmt(s.p50)} p99=${fmt(s.p99)} (ms)`,
        );
        added[`${kind}.${key}`] = s;
      }
    }
    const ratio: Record<Kind, number> = { plain: 0, stream: 0 };
    for (const kind of ["plain", "stream"] as const) {
      const rps = await interleaved((t) => maxThroughput(agents[t], ports[t], payloads[kind], MAX_ROUND_MS));
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
