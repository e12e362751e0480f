// Reads the sidecar's config file and the mounted credential files. A config that fails the
// shared zod schema is refused with every offending field named.
import { readdirSync, readFileSync, statSync, unwatchFile, watchFile } from "node:fs";
import { join } from "node:path";
import { fieldErrors, formatFieldErrors } from "../api/field-errors.ts";
import { type SidecarConfig, sidecarConfig } from "../api/sidecarconfig.ts";

export type ConfigResult = { ok: true; config: SidecarConfig } | { ok: false; message: string };

export function parseConfig(text: string, source: string): ConfigResult {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return { ok: false, message: `${source}: not valid JSON: ${(error as Error).message}` };
  }
  const result = sidecarConfig.safeParse(raw);
  if (result.success) return { ok: true, config: result.data };
  const errors = formatFieldErrors(fieldErrors(result.error))
    .split("\n")
    .map((line) => `  ${line}`)
    .join("\n");
  return { ok: false, message: `${source}: invalid sidecar config:\n${errors}` };
}

export function loadConfig(path: string): ConfigResult {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    return { ok: false, message: `cannot read sidecar config ${path}: ${(error as Error).message}` };
  }
  return parseConfig(text, path);
}

/**
 * The files of a mounted Secret, key to value. Kubernetes adds `..data` and timestamped
 * directories for atomic updates; only regular files count. A trailing newline is dropped
 * because `kubectl create secret --from-file` keeps the one editors add.
 */
export function readSecretDir(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir)) {
    if (name.startsWith("..")) continue;
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    out[name] = readFileSync(path, "utf8").replace(/\r?\n$/, "");
  }
  return out;
}

/**
 * The credential files and directories a config reads, watched so that a rotated Secret is
 * picked up without a restart (Kubernetes updates a mounted Secret by swapping a symlink in
 * its directory, which changes the directory's mtime).
 */
export function credentialPaths(config: SidecarConfig): string[] {
  const providers = (config.llm?.providers ?? []).flatMap((p) =>
    p.credentialsDir === undefined ? [] : [p.credentialsDir],
  );
  const tools = config.tools.flatMap((t) => (t.auth === undefined ? [] : [t.auth.secretFile]));
  return [...new Set([...providers, ...tools])];
}

/**
 * Calls `onChange` when a file or directory may have changed. Polling, not inotify: a
 * ConfigMap update swaps a symlink, which inotify on the file itself does not report.
 */
export function watchPath(path: string, intervalMs: number, onChange: () => void): () => void {
  const listener = (
    current: { mtimeMs: number; ino: number },
    previous: { mtimeMs: number; ino: number },
  ) => {
    if (current.mtimeMs !== previous.mtimeMs || current.ino !== previous.ino) onChange();
  };
  watchFile(path, { interval: intervalMs, persistent: false }, listener);
  return () => unwatchFile(path, listener);
}
