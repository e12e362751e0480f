// Starts a real sidecar for tests from a config object written to a temporary file, with
// its log lines captured so tests can check what is (and is not) logged.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { Sidecar } from "../server.ts";

export interface TestSidecar {
  sidecar: Sidecar;
  dir: string;
  configPath: string;
  logs: string[];
  /** Rewrites the config file; the sidecar picks it up at its next poll. */
  writeConfig(config: object): void;
  close(): Promise<void>;
}

/**
 * A directory holding an API key as the operator mounts a provider's Secret into the sidecar
 * (its `apiKey` file), made under `parent`.
 */
export function apiKeyDir(key: string, parent = tmpdir()): string {
  const dir = mkdtempSync(join(parent, "api-key-"));
  writeFileSync(join(dir, "apiKey"), key);
  return dir;
}

export function writeJson(path: string, value: object): void {
  writeFileSync(path, JSON.stringify(value, null, 2));
}

export function baseConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    agent: { name: "demo", namespace: "default" },
    listen: { metricsHost: "127.0.0.1" },
    memory: { type: "ephemeral", maxBytes: 1_000_000 },
    ...overrides,
  };
}

export function llmConfig(providers: object[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    providers,
    retries: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 5 },
    timeoutSeconds: 5,
    ...extra,
  };
}

export async function startTestSidecar(
  config: object,
  options: { debug?: boolean; dir?: string; reloadIntervalMs?: number } = {},
): Promise<TestSidecar> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "sidecar-test-"));
  const configPath = join(dir, "sidecar.json");
  writeJson(configPath, config);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(chunk.toString("utf8"));
      done();
    },
  });
  const logger = pino({ level: options.debug === true ? "debug" : "info" }, sink);
  const sidecar = await Sidecar.start({
    configPath,
    logger,
    debug: options.debug ?? false,
    reloadIntervalMs: options.reloadIntervalMs ?? 50,
    port: 0,
    metricsPort: 0,
  });
  return {
    sidecar,
    dir,
    configPath,
    logs,
    writeConfig: (next) => writeJson(configPath, next),
    close: async () => {
      await sidecar.close();
      if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}
