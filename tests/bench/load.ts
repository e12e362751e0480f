// The load and the measures the proxy benchmarks share (bench-sidecar, bench-peers): processes
// started and awaited, HTTP requests timed to the first and the last byte, open-loop load at a
// fixed rate, closed-loop load for the most a target serves, percentiles, and a process's
// memory and CPU time read from /proc.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";

/** Requests that failed (reset, refused, non-200); they are reported, not timed. */
export interface Failures {
  count: number;
}

/** A whole number of at least `min` from a command-line flag, or an error naming the flag. */
export function countFrom(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`--${flag}: expected a whole number >= ${min}, got ${value}`);
  return n;
}

/** Starts a command with its stdout drained and its stderr reported if it exits with an error. */
export function startProcess(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): ChildProcess {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.resume();
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-20_000);
  });
  child.on("exit", (code) => {
    if (code !== 0 && code !== null)
      process.stderr.write(`${args[0] ?? command} exited ${code}: ${stderr}\n`);
  });
  return child;
}

/**
 * Writes a benchmark sidecar's config to `path`: one provider, no retry, ephemeral memory, the
 * metrics port on 127.0.0.1. Returns `path`.
 */
export function writeSidecarConfig(
  path: string,
  options: { port: number; metricsPort: number; provider: object; timeoutSeconds?: number },
): string {
  writeFileSync(
    path,
    JSON.stringify({
      agent: { name: "bench", namespace: "default" },
      listen: { port: options.port, metricsPort: options.metricsPort, metricsHost: "127.0.0.1" },
      llm: {
        providers: [options.provider],
        retries: { maxAttempts: 1 },
        timeoutSeconds: options.timeoutSeconds ?? 60,
      },
      memory: { type: "ephemeral", maxBytes: 1_000_000 },
    }),
  );
  return path;
}

/** Resolves once `url` answers 2xx, polling; rejects after `timeoutMs`. */
export async function waitFor(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not come up within ${timeoutMs / 1000} s`);
}

export interface Sample {
  totalMs: number;
  firstByteMs: number;
}

/** Where the load goes: a port and path on 127.0.0.1, with extra headers (an API key). */
export interface Endpoint {
  port: number;
  path: string;
  headers?: Record<string, string>;
}

/** One POST, timed to the first and the last byte of the answer; rejects on a non-200. */
export function request(agent: http.Agent, to: Endpoint, payload: string): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    let firstByte = 0n;
    const req = http.request(
      {
        host: "127.0.0.1",
        port: to.port,
        path: to.path,
        method: "POST",
        agent,
        headers: {
          ...to.headers,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
        },
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

/** What an open-loop run did: the answers' timings, and how long the answers took to come in. */
export interface FixedRateRun {
  samples: Sample[];
  sent: number;
  /** From the first request to the last answer. */
  elapsedMs: number;
}

/**
 * Open-loop load at `rate` req/s for `ms`: requests go out on schedule whether or not earlier
 * ones finished, so a target that cannot keep up shows it in its latency and its elapsed time.
 */
export async function fixedRate(
  agent: http.Agent,
  to: Endpoint,
  payload: string,
  rate: number,
  ms: number,
  failures: Failures,
): Promise<FixedRateRun> {
  const samples: Sample[] = [];
  const pending: Promise<void>[] = [];
  const started = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - started;
      const due = Math.min(Math.floor((elapsed * rate) / 1000), Math.floor((ms * rate) / 1000));
      for (; sent < due; sent++) {
        pending.push(
          request(agent, to, payload).then(
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
  return { samples, sent, elapsedMs: performance.now() - started };
}

/** Closed-loop load: `clients` clients, each sending as soon as its last answer came; answers per second. */
export async function maxThroughput(
  agent: http.Agent,
  to: Endpoint,
  payload: string,
  clients: number,
  ms: number,
  failures: Failures,
): Promise<{ rps: number; done: number }> {
  let done = 0;
  const deadline = performance.now() + ms;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < deadline) {
        await request(agent, to, payload).then(
          () => done++,
          () => failures.count++,
        );
      }
    }),
  );
  return { rps: done / ((performance.now() - started) / 1000), done };
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

export function median(values: number[]): number {
  return percentile(values, 50);
}

export interface Percentiles {
  p50: number;
  p99: number;
}

export function percentiles(samples: Sample[], key: keyof Sample): Percentiles {
  const values = samples.map((s) => s[key]);
  return { p50: percentile(values, 50), p99: percentile(values, 99) };
}

/** Runs `measure` on every target `rounds` times, rotating the order so drift hits all alike. */
export async function interleaved<T extends string, R>(
  targets: readonly T[],
  rounds: number,
  measure: (target: T) => Promise<R>,
): Promise<Record<T, R[]>> {
  const out = Object.fromEntries(targets.map((t) => [t, [] as R[]])) as Record<T, R[]>;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < targets.length; i++) {
      const target = targets[(i + round) % targets.length] as T;
      out[target].push(await measure(target));
    }
  }
  return out;
}

/** Per round, `target`'s percentiles minus the baseline's; the median over rounds. */
export function addedOver<T extends string>(
  samples: Record<T, Sample[][]>,
  baseline: T,
  target: T,
  key: keyof Sample,
): Percentiles {
  const rounds = samples[baseline].map((base, round) => {
    const d = percentiles(base, key);
    const t = percentiles(samples[target][round] ?? [], key);
    return { p50: t.p50 - d.p50, p99: t.p99 - d.p99 };
  });
  return { p50: median(rounds.map((r) => r.p50)), p99: median(rounds.map((r) => r.p99)) };
}

/** Resident memory of a process, MiB. */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? "0");
  return kb / 1024;
}

/** CPU time (user and system) a process and its waited-for children used so far, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime, stime, cutime, cstime are fields 14-17, the 12th-15th after the state (field 3).
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);
  return ticks / CLOCK_TICKS;
}

/** USER_HZ: Linux reports CPU times in hundredths of a second on every architecture it ships. */
const CLOCK_TICKS = 100;

export const fmt = (n: number, digits = 2) => n.toFixed(digits);
