// `make bench-proxy-parts`: where the sidecar's CPU per pass-through request goes, part by part.
// The same OpenAI /v1/chat/completions requests (1 KB bodies, not streamed) go at a fixed rate
// through the bare proxy (bare-proxy.mjs, the floor), through proxies that add the sidecar's
// work one part at a time (proxy-step.mjs: parse and set the model, a deadline, prom-client's
// default metrics, the sidecar's dependencies loaded, fastify in front) and through the sidecar
// itself (an `openai` provider, bundled and started as its image starts it), all of them at
// once, each at the same rate. Every proxy's CPU time per request as a ratio to the bare
// proxy's in the same round: the median and the quartiles over the rounds. With two cores or
// more, the proxies run on the last core and the load and the upstream on the others
// (taskset), so that one proxy's CPU is not taken by the load it serves; at a fixed rate every
// proxy sustains, so that none is rewarded with larger batches per wake-up. --baseline DIR (a
// checkout of the project, its node_modules installed) measures DIR's sidecar beside this
// one's: an A/B of a change. The last line is machine-readable.
//   node tests/bench/proxy-parts.ts [--rounds 12] [--round-ms 3000] [--rate 150] [--baseline DIR]
import { type ChildProcess, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { buildSidecar, SIDECAR_NODE_FLAGS } from "../../sidecar/build.ts";
import { freePort } from "../fixtures/ports.ts";
import {
  countFrom,
  cpuSeconds,
  type Failures,
  fixedRate,
  fmt,
  median,
  percentile,
  startProcess,
  waitFor,
  writeSidecarConfig,
} from "./load.ts";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "12" },
    "round-ms": { type: "string", default: "3000" },
    rate: { type: "string", default: "150" },
    baseline: { type: "string" },
  },
});
const ROUNDS = countFrom("rounds", args.rounds, 1);
const ROUND_MS = countFrom("round-ms", args["round-ms"], 100);
const RATE = countFrom("rate", args.rate, 1);

/** Each proxy under test: the name printed, and the steps proxy-step.mjs adds to the bare proxy's work. */
const STEPS = {
  parse: "parse",
  deadline: "parse+deadline",
  metrics: "parse+deadline+metrics",
  deps: "parse+deadline+metrics+deps",
  fastify: "parse+deadline+metrics+deps+fastify",
} as const;
type Step = keyof typeof STEPS;
type Proxy = "bare" | Step | "sidecar" | "baseline";
/** A checkout of the project whose sidecar is measured beside this one's: an A/B of a change. */
const baseline = args.baseline === undefined ? undefined : resolve(args.baseline);
const PROXIES: readonly Proxy[] = [
  "bare",
  ...(Object.keys(STEPS) as Step[]),
  "sidecar",
  ...(baseline === undefined ? [] : (["baseline"] as const)),
];

const root = new URL("../../", import.meta.url).pathname;
const cores = availableParallelism();
/** taskset's CPU lists: the proxies on the last core, everything else on the others. */
const pinned = cores >= 2 ? { proxies: String(cores - 1), rest: `0-${cores - 2}` } : undefined;
const on = (cpus: string | undefined, command: string, commandArgs: string[]) =>
  cpus === undefined
    ? { command, args: commandArgs }
    : { command: "taskset", args: ["-c", cpus, command, ...commandArgs] };

/** A 1 KB body: a long system message and a short question, as bench-peers sends. */
function body(): string {
  const make = (pad: number) =>
    JSON.stringify({
      model: "llama3.2",
      messages: [
        { role: "system", content: "x".repeat(pad) },
        { role: "user", content: "what is the weather" },
      ],
    });
  return make(1024 - make(0).length);
}

async function main(): Promise<void> {
  if (pinned === undefined)
    console.log("one core: the proxies are not pinned apart from the load (figures noisier)");
  // The load runs in this process: off the proxies' core.
  if (pinned !== undefined) execFileSync("taskset", ["-pc", pinned.rest, String(process.pid)]);
  const upstreamPort = await freePort();
  const ports = {} as Record<Proxy, number>;
  for (const p of PROXIES) ports[p] = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "bench-proxy-parts-"));
  /** A sidecar's config: an `openai` provider in front of the upstream, nothing else. */
  const sidecarConfig = (name: string, port: number, metricsPort: number) =>
    writeSidecarConfig(join(dir, `${name}.json`), {
      port,
      metricsPort,
      provider: {
        name: "upstream",
        type: "openai",
        endpoint: `http://127.0.0.1:${upstreamPort}/v1`,
        model: "llama3.2",
      },
    });
  const metricsPorts = { sidecar: await freePort(), baseline: await freePort() };
  await buildSidecar(join(dir, "sidecar"));
  if (baseline !== undefined) {
    const built = (await import(join(baseline, "sidecar/build.ts"))) as { buildSidecar: typeof buildSidecar };
    await built.buildSidecar(join(dir, "baseline"));
  }
  const node = (cpus: string | undefined, nodeArgs: string[]) => {
    const { command, args: commandArgs } = on(cpus, process.execPath, nodeArgs);
    return startProcess(command, commandArgs, { cwd: root });
  };
  const proxyCpus = pinned?.proxies;
  const children: Record<"upstream" | Exclude<Proxy, "baseline">, ChildProcess> & {
    baseline?: ChildProcess;
  } = {
    upstream: node(pinned?.rest, ["tests/bench/openai-upstream.ts", String(upstreamPort)]),
    bare: node(proxyCpus, ["tests/bench/bare-proxy.mjs", String(ports.bare), String(upstreamPort)]),
    ...(Object.fromEntries(
      Object.entries(STEPS).map(([name, steps]) => [
        name,
        node(proxyCpus, [
          "tests/bench/proxy-step.mjs",
          String(ports[name as Step]),
          String(upstreamPort),
          steps,
        ]),
      ]),
    ) as Record<Step, ChildProcess>),
    sidecar: node(proxyCpus, [
      ...SIDECAR_NODE_FLAGS,
      join(dir, "sidecar/main.mjs"),
      "--config",
      sidecarConfig("sidecar", ports.sidecar, metricsPorts.sidecar),
    ]),
    ...(baseline === undefined
      ? {}
      : {
          baseline: node(proxyCpus, [
            ...SIDECAR_NODE_FLAGS,
            join(dir, "baseline/main.mjs"),
            "--config",
            sidecarConfig("baseline", ports.baseline, metricsPorts.baseline),
          ]),
        }),
  };
  process.on("exit", () => {
    for (const child of Object.values(children)) child.kill();
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(1));
  try {
    await waitFor(`http://127.0.0.1:${upstreamPort}/v1/models`);
    for (const p of PROXIES) {
      if (p === "sidecar" || p === "baseline") await waitFor(`http://127.0.0.1:${metricsPorts[p]}/readyz`);
      else await waitFor(`http://127.0.0.1:${ports[p]}/v1/models`);
    }
    // taskset execs node in place: the child's pid is the proxy's.
    const pid = (p: Proxy) => children[p]?.pid ?? 0;
    const agents = Object.fromEntries(
      PROXIES.map((p) => [p, new http.Agent({ keepAlive: true, maxSockets: 512 })]),
    );
    const payload = body();
    const failures: Failures = { count: 0 };
    const at = (p: Proxy) => ({ port: ports[p], path: "/v1/chat/completions" });
    console.log(
      `${Buffer.byteLength(payload)}-byte requests at ${RATE} req/s to each proxy, all at once, ${ROUNDS} rounds of ${ROUND_MS} ms; ${cores} cores${pinned === undefined ? "" : `, the proxies on CPU ${pinned.proxies}`}; load average ${fmt(loadavg()[0] ?? 0)} at start`,
    );
    // One unmeasured second each: the JIT warms up before the rounds count.
    await Promise.all(
      PROXIES.map((p) => fixedRate(agents[p] as http.Agent, at(p), payload, RATE, 1000, failures)),
    );
    // Every proxy is loaded at once, each at the same rate: they share the machine's moment
    // (another process's burst, a slower core) instead of each having a turn of its own.
    const runs = Object.fromEntries(PROXIES.map((p) => [p, [] as number[]])) as Record<Proxy, number[]>;
    for (let round = 0; round < ROUNDS; round++) {
      const before = PROXIES.map((p) => cpuSeconds(pid(p)));
      const served = await Promise.all(
        PROXIES.map((p) => fixedRate(agents[p] as http.Agent, at(p), payload, RATE, ROUND_MS, failures)),
      );
      for (const [i, p] of PROXIES.entries())
        runs[p].push(((cpuSeconds(pid(p)) - (before[i] ?? 0)) * 1e6) / (served[i]?.samples.length ?? 0));
    }
    const ratios = Object.fromEntries(
      PROXIES.map((p) => [p, runs[p].map((us, round) => us / (runs.bare[round] ?? Number.NaN))]),
    ) as Record<Proxy, number[]>;
    for (const p of PROXIES) {
      const r = ratios[p];
      console.log(
        `${p.padEnd(9)} ${fmt(median(runs[p]), 0).padStart(5)} us/request, ${fmt(median(r))}x the bare proxy's (quartiles ${fmt(percentile(r, 25))}-${fmt(percentile(r, 75))})${p in STEPS ? `: ${STEPS[p as Step]}` : ""}`,
      );
    }
    if (baseline !== undefined) {
      const change = runs.sidecar.map((us, round) => us / (runs.baseline[round] ?? Number.NaN));
      console.log(
        `this sidecar over the baseline's (${baseline}): ${fmt(median(change))}x (quartiles ${fmt(percentile(change, 25))}-${fmt(percentile(change, 75))})`,
      );
    }
    console.log(`failed requests: ${failures.count}; load average ${fmt(loadavg()[0] ?? 0)} at end`);
    for (const agent of Object.values(agents)) agent.destroy();
    console.log(
      `bench-proxy-parts bare_cpu_us=${fmt(median(runs.bare), 0)} ${PROXIES.filter((p) => p !== "bare")
        .map((p) => `${p}=${fmt(median(ratios[p]))}`)
        .join(" ")} rounds=${ROUNDS} failures=${failures.count}`,
    );
  } finally {
    for (const child of Object.values(children)) child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
