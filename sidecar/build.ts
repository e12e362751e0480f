// Bundles the sidecar into plain JavaScript for its image: `node sidecar/build.ts OUTDIR`
// writes OUTDIR/main.mjs and OUTDIR/chunks/. The image runs `node OUTDIR/main.mjs` and needs no
// node_modules. Against running the .ts sources with Node's type stripping this measured
// 80 instead of 116 MiB idle RSS and 0.25 instead of 0.7 s to ready; the sidecar starts before
// the agent in every pod, so both count.
// Code that only some configs need (the AWS SDK for Bedrock, the MCP SDK for MCP tools) is
// reached through dynamic import() in the sources, so it lands in chunks of its own that are
// loaded only when a config asks for it.
import { rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));

/**
 * How the image starts Node for the sidecar (the Dockerfile's ENTRYPOINT; a test checks they
 * agree, and the benchmark starts it the same way). A small young generation keeps the resident
 * set near the live heap under load; in one bench run each, semi-space 2 MiB gave 118 MiB peak
 * RSS and 0.27x throughput, the default 210 MiB and 0.28x, 1 MiB 157 MiB and 0.20x (so many
 * scavenges that more survives into the old generation), 4 MiB 119 MiB and 0.26x.
 */
export const SIDECAR_NODE_FLAGS = ["--max-semi-space-size=2"];

/** The Node versions the bundle must run on: package.json's engines. */
const TARGET = "node22.12";

export async function buildSidecar(outdir: string): Promise<void> {
  rmSync(outdir, { recursive: true, force: true });
  await build({
    entryPoints: [join(here, "main.ts")],
    outdir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: TARGET,
    outExtension: { ".js": ".mjs" },
    chunkNames: "chunks/[name]-[hash]",
    // Bundled CommonJS packages call require() for Node's built-ins; ESM has no require.
    banner: {
      js: "import { createRequire as __agenttypeRequire } from 'node:module'; const require = __agenttypeRequire(import.meta.url);",
    },
    logLevel: "warning",
  });
}

if (import.meta.main) {
  const out = process.argv[2];
  if (out === undefined) {
    console.error("usage: node sidecar/build.ts OUTDIR");
    process.exit(2);
  }
  await buildSidecar(resolve(out));
  console.log(`sidecar bundled into ${resolve(out)}`);
}
