// What the smoke tier's tests share: running a README command (`make TARGET VAR=value`) in the
// checkout as a user would, reading the harness's settings from tests/cluster/lib.sh, and
// checking that the project's own cluster is really gone.
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { eventually } from "../fixtures/eventually.ts";

export const repo = resolve(import.meta.dirname, "../..");

export interface Run {
  code: number | null;
  /** stdout and stderr interleaved, as a user sees them */
  output: string;
  stdout: string;
  seconds: number;
}

/**
 * Runs `make target VAR=value…` in the checkout, in the environment of this process without
 * KUBECONFIG (a user's shell may have one; pass `env` to set it), to its end or `timeoutMs`.
 */
export function make(
  target: string,
  vars: Record<string, string> = {},
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 600_000,
): Promise<Run> {
  const { KUBECONFIG: _, ...base } = process.env;
  const args = ["--no-print-directory", target, ...Object.entries(vars).map(([k, v]) => `${k}=${v}`)];
  const started = Date.now();
  return new Promise((done, fail) => {
    // Its own process group, so a timeout ends every process it started: one left holding the
    // output pipe would keep this run from ever ending.
    const child = spawn("make", args, {
      cwd: repo,
      env: { ...base, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      output += `\n[smoke] make ${target} timed out after ${timeoutMs / 1000}s: stopping it\n`;
      killGroup("SIGTERM");
      setTimeout(() => killGroup("SIGKILL"), 10_000).unref();
    }, timeoutMs);
    let output = "";
    let stdout = "";
    child.stdout.on("data", (c: Buffer) => {
      output += c;
      stdout += c;
    });
    child.stderr.on("data", (c: Buffer) => {
      output += c;
    });
    child.on("error", fail);
    child.on("close", (code) => {
      clearTimeout(timer);
      const seconds = (Date.now() - started) / 1000;
      console.log(`[smoke] make ${args.slice(1).join(" ")}: exit ${code} in ${seconds.toFixed(1)}s`);
      done({ code, output, stdout, seconds });
    });
  });
}

/** Runs a script of the repository (e.g. tests/cluster/cluster.sh status) to its end. */
export function script(
  path: string,
  ...args: string[]
): { code: number | null; stdout: string; stderr: string } {
  const { KUBECONFIG: _, ...env } = process.env;
  const r = spawnSync(resolve(repo, path), args, { cwd: repo, env, encoding: "utf8", timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Working containers in the harness's buildah storage, and overlay mounts of any of them. The
 * listing can fail while a build beside it (bench-kvm's smoke) removes its containers (seen in a
 * clean-clone run of 2026-11-28): it is asked again for up to 3 minutes before that counts.
 */
export async function buildahLeftovers(): Promise<string[]> {
  const containers = await eventually(
    "images.sh buildah containers to answer",
    async () => {
      const listing = script("tests/cluster/images.sh", "buildah", "containers", "--quiet");
      if (listing.code !== 0)
        throw new Error(
          `images.sh buildah containers failed (exit ${listing.code}): ${listing.stderr.trim()}`,
        );
      return listing;
    },
    180_000,
    5_000,
  );
  const mounts = readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .filter((line) => /\/buildah\/storage\/overlay\/[0-9a-f]+\/merged /.test(line));
  return [...containers.stdout.split("\n").filter((l) => l.trim() !== ""), ...mounts];
}

/**
 * The working containers and mounts `buildahLeftovers` lists now that it did not list in
 * `before` and that stay: what the command run in between left. A tier before this one may
 * have left its own (the e2e tier's Tilt, stopped in the middle of a rebuild, did: four working
 * containers, seen by a warm clean-clone run on 2026-11-27); they are not the command's.
 */
export async function newBuildahLeftovers(before: readonly string[]): Promise<string[]> {
  const fresh = async () => (await buildahLeftovers()).filter((leftover) => !before.includes(leftover));
  // A build another tier runs meanwhile (bench-kvm's smoke beside this one builds images) holds
  // working containers until it ends: seen once, 15 of a multi-stage build at the moment of the
  // look (clean-clone run of 2026-11-28). What the command left stays; what a build in flight
  // holds goes within minutes. So the answer is what is still there after up to 3 minutes.
  const until = Date.now() + 180_000;
  let left = await fresh();
  while (left.length > 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 5_000));
    left = await fresh();
  }
  return left;
}

/** The end of a command's output, for a failed expectation's message. */
export const tail = (run: Run, lines = 60) => run.output.trimEnd().split("\n").slice(-lines).join("\n");

/** Variables of tests/cluster/lib.sh as the scripts see them. */
export function harness<const K extends string>(...names: K[]): Record<K, string> {
  const script = `. ${JSON.stringify(resolve(repo, "tests/cluster/lib.sh"))}; ${names
    .map((n) => `printf '%s\\n' "$${n}"`)
    .join("; ")}`;
  const r = spawnSync("bash", ["-c", script], { encoding: "utf8", timeout: 10_000 });
  if (r.status !== 0) throw new Error(`reading tests/cluster/lib.sh failed: ${r.stderr}`);
  const values = r.stdout.split("\n");
  return Object.fromEntries(names.map((n, i) => [n, values[i] ?? ""])) as Record<K, string>;
}

/** Pids of live processes whose command line mentions `text` (e.g. the cluster's state dir). */
export function processesMentioning(text: string): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(text);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** True when a TCP listener holds `port` on `ip` or on every address (/proc/net/tcp). */
export function listening(ip: string, port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const hexIp = ip
    .split(".")
    .reverse()
    .map((b) => Number(b).toString(16).toUpperCase().padStart(2, "0"))
    .join("");
  const lines = ["/proc/net/tcp", "/proc/net/tcp6"].flatMap((f) => {
    try {
      return readFileSync(f, "utf8").trim().split("\n").slice(1);
    } catch {
      return [];
    }
  });
  return lines.some((line) => {
    const [, local = "", , state] = line.trim().split(/\s+/);
    const [addr = "", p] = local.split(":");
    return state === "0A" && p === hexPort && (addr === hexIp || /^0+$/.test(addr));
  });
}

/**
 * The fields of a benchmark's machine-readable last line `bench-NAME key=value …`, each value a
 * finite number except the `textKeys` (such as bench-kvm's `accel=tcg`), which must be non-empty;
 * fails naming the line when it is not there or a value is not what it should be.
 */
export function lastLineFields(
  run: Run,
  name: string,
  textKeys: readonly string[] = [],
): Record<string, number | string> {
  const last = run.stdout.trimEnd().split("\n").at(-1) ?? "";
  const [head, ...pairs] = last.split(" ");
  if (head !== name) throw new Error(`the last line is not ${name}'s: ${last}`);
  return Object.fromEntries(
    pairs.map((pair) => {
      const [key = "", value = ""] = pair.split("=");
      if (value === "") throw new Error(`${key} has no value in: ${last}`);
      if (textKeys.includes(key)) return [key, value];
      const n = Number(value);
      if (!Number.isFinite(n)) throw new Error(`${key} is not a number in: ${last}`);
      return [key, n];
    }),
  );
}
