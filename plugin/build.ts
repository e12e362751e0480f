// Builds `kubectl-agenttype` as one executable a user runs with nothing but kubectl installed
// (docs/adr/0013-kubectl-plugin-single-executable.md): esbuild bundles the plugin and its dependencies
// into one CommonJS file, Node's single-executable-application support turns it into a blob,
// and postject injects the blob into a copy of the Node binary running this script. Then the
// krew archive and a krew manifest carrying its sha256 are written beside it.
// Usage: node plugin/build.ts [OUT_DIR]   (default dist/plugin)
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { arch, platform } from "node:os";
import { join, resolve } from "node:path";
import { build } from "esbuild";

const repo = resolve(import.meta.dirname, "..");
const out = resolve(process.argv[2] ?? join(repo, "dist", "plugin"));
const BIN = "kubectl-agenttype";
/** The fuse Node's SEA support looks for; postject flips it (nodejs.org/api/single-executable-applications.html). */
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";
const STEP_DEADLINE_MS = 300_000;

if (platform() !== "linux")
  throw new Error(
    `plugin/build.ts builds on Linux only (this is ${platform()}): macOS would also need codesign`,
  );
mkdirSync(out, { recursive: true });

const bundle = join(out, `${BIN}.cjs`);
await build({
  entryPoints: [join(repo, "plugin", "main.ts")],
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node22",
  outfile: bundle,
  logLevel: "warning",
  legalComments: "none",
});

const seaConfig = join(out, "sea-config.json");
const blob = join(out, "sea-prep.blob");
writeFileSync(
  seaConfig,
  JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: false }),
);
execFileSync(process.execPath, ["--experimental-sea-config", seaConfig], {
  stdio: "inherit",
  timeout: STEP_DEADLINE_MS,
});
const executable = join(out, BIN);
copyFileSync(process.execPath, executable);
chmodSync(executable, 0o755);
execFileSync(
  join(repo, "node_modules", ".bin", "postject"),
  [executable, "NODE_SEA_BLOB", blob, "--sentinel-fuse", SEA_FUSE],
  // postject warns about ELF notes it does not read: noise, kept off the terminal.
  { stdio: "pipe", timeout: STEP_DEADLINE_MS },
);

// krew: one archive per platform, the manifest naming its sha256.
const krewArch = ({ x64: "amd64", arm64: "arm64" } as Record<string, string>)[arch()] ?? arch();
const archive = join(out, `${BIN}-linux-${krewArch}.tar.gz`);
execFileSync("tar", ["-czf", archive, "-C", out, BIN], { timeout: STEP_DEADLINE_MS });
const sha256 = createHash("sha256").update(readFileSync(archive)).digest("hex");
const version = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")).version as string;
const manifest = readFileSync(join(repo, "plugin", "krew", "agenttype.yaml"), "utf8")
  .replaceAll("v0.0.0", `v${version}`)
  .replace(/sha256: .*/, `sha256: ${sha256}`)
  .replace(/arch: amd64/, `arch: ${krewArch}`)
  .replace(/kubectl-agenttype-linux-amd64\.tar\.gz/, `${BIN}-linux-${krewArch}.tar.gz`);
writeFileSync(join(out, "agenttype.yaml"), manifest);
console.log(`${executable}\n${archive} sha256 ${sha256}\n${join(out, "agenttype.yaml")}`);
