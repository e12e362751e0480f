// Two sidecars for the agent-API tests: one over the faithful Ollama server, one over the
// faithful Bedrock server (with credentials in a directory, as the pod mounts them). Each API's
// tests drive both with its official client.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BedrockServer } from "./bedrock-server.ts";
import { OllamaServer } from "./ollama-server.ts";
import { baseConfig, llmConfig, startTestSidecar, type TestSidecar } from "./sidecar.ts";

export const BEDROCK_MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0";

export interface TwoProviders {
  ollama: OllamaServer;
  bedrock: BedrockServer;
  /** provider "local" (ollama, model llama3.2) */
  viaOllama: TestSidecar;
  /** provider "claude" (bedrock, us-east-1, BEDROCK_MODEL) */
  viaBedrock: TestSidecar;
  close(): Promise<void>;
}

/** Starts both upstreams and both sidecars; `bedrockAttempts: 1` makes a Bedrock error final at once. */
export async function startTwoProviders(options: { bedrockAttempts?: number } = {}): Promise<TwoProviders> {
  const ollama = new OllamaServer();
  const bedrock = new BedrockServer();
  await Promise.all([ollama.listen(), bedrock.listen()]);
  const awsDir = mkdtempSync(join(tmpdir(), "two-providers-aws-"));
  writeFileSync(join(awsDir, "AWS_ACCESS_KEY_ID"), "AKIDTWOPROVIDERS");
  writeFileSync(join(awsDir, "AWS_SECRET_ACCESS_KEY"), "two-providers-test-secret-key");
  const retries =
    options.bedrockAttempts === undefined
      ? undefined
      : { retries: { maxAttempts: options.bedrockAttempts, initialBackoffMs: 1, maxBackoffMs: 1 } };
  const [viaOllama, viaBedrock] = await Promise.all([
    startTestSidecar(
      baseConfig({
        llm: llmConfig([{ name: "local", type: "ollama", endpoint: ollama.url, model: "llama3.2" }]),
      }),
    ),
    startTestSidecar(
      baseConfig({
        llm: llmConfig(
          [
            {
              name: "claude",
              type: "bedrock",
              region: "us-east-1",
              endpoint: bedrock.url,
              model: BEDROCK_MODEL,
              credentialsDir: awsDir,
            },
          ],
          retries,
        ),
      }),
    ),
  ]);
  return {
    ollama,
    bedrock,
    viaOllama,
    viaBedrock,
    async close() {
      await Promise.all([viaOllama.close(), viaBedrock.close()]);
      await Promise.all([ollama.close(), bedrock.close()]);
    },
  };
}
