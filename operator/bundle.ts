// Bundles the operator's own code (operator/ and api/) into one file for its image:
// `node operator/bundle.ts OUTDIR` writes OUTDIR/main.mjs. Packages stay outside the bundle, in
// the image's node_modules (the native and WebAssembly parts of ssh2 and gRPC load as they are
// published). Against running the .ts sources with Node's type stripping, the process starts at
// 92 instead of 120 MiB resident (measured idle, no API server): no TypeScript compiler in the
// process and one module instead of about a hundred. The image runs `node OUTDIR/main.mjs`.
import { rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));

/**
 * How the image starts Node for the operator (the Dockerfile's ENTRYPOINT; a test checks they
 * agree, and the tests and bench-operator start it the same way). A small young generation
 * keeps the resident set near the live heap: 144 MiB at 1,000 AgentTypes instead of 340 with
 * Node's default. 4 MiB semi-spaces rather than 1: bench-operator at 1,000, the operator's CPU
 * profile, garbage collection 1.6 s of 8.8 busy against 3.1 of 11.4; at 10,000, 9.7 ms of CPU
 * per AgentType against 11.5 (one run each), peak RSS 207 MiB against 205. 8 MiB rather than 4
 * (`--trace-gc` at 10,000, one run each): scavenges 2,303 pausing 9.0 s against 4,608 pausing
 * 13.4 s, mark-compacts alike (124, 3.2 s; 113, 3.1 s), peak RSS 215 MiB against 207.
 */
export const OPERATOR_NODE_FLAGS = ["--max-semi-space-size=8", "--max-old-space-size=128"];

/**
 * The environment the image gives the operator's process (the Dockerfile's ENV; the same test
 * checks it). Two malloc arenas instead of glibc's eight per core: the operator's work runs on
 * one thread, and the arenas of Node's other threads held memory it no longer used. Measured at
 * 10,000 AgentTypes (an operator restarted on them, one run each): peak RSS 225 MiB with 2, 216
 * with 1, 245 with glibc's default.
 */
export const OPERATOR_ENV = { MALLOC_ARENA_MAX: "2" };

/** The Node versions the bundle must run on: package.json's engines. */
const TARGET = "node22.12";

export async function bundleOperator(outdir: string): Promise<string> {
  rmSync(outdir, { recursive: true, force: true });
  const main = join(outdir, "main.mjs");
  await build({
    entryPoints: [join(here, "main.ts")],
    outfile: main,
    bundle: true,
    packages: "external",
    format: "esm",
    platform: "node",
    target: TARGET,
    logLevel: "warning",
  });
  return main;
}

if (import.meta.main) {
  const out = process.argv[2];
  if (out === undefined) {
    console.error("usage: node operator/bundle.ts OUTDIR");
    process.exit(2);
  }
  console.log(`operator bundled into ${await bundleOperator(resolve(out))}`);
}
