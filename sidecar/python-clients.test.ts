// The official Python clients through a real sidecar, untuned: the openai SDK (chat completions
// and responses), the OpenAI Agents SDK running a one-tool agent, and the anthropic SDK
// (streaming and a tool round trip). Each is a script in testing/python/ run by the venv that
// testing/python/venv.sh makes from the pinned requirements; the scripts get the sidecar's URL
// and a placeholder key through the variables the pod contract sets, and print what they got.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BedrockServer } from "./testing/bedrock-server.ts";
import type { OllamaServer } from "./testing/ollama-server.ts";
import { startTwoProviders, type TwoProviders } from "./testing/two-providers.ts";

const run = promisify(execFile);
const PYTHON_DIR = join(import.meta.dirname, "testing", "python");
/** A cold venv is a few hundred MB from PyPI; a warm one is reused at once. */
const VENV_TIMEOUT_MS = 900_000;
const SCRIPT_TIMEOUT_MS = 120_000;

let python: string;
let providers: TwoProviders;
let ollama: OllamaServer;
let bedrock: BedrockServer;

beforeAll(async () => {
  // No skip: a machine that cannot make the venv fails here, with the script's reason.
  const made = await run(join(PYTHON_DIR, "venv.sh"), [], {
    timeout: VENV_TIMEOUT_MS,
    maxBuffer: 16 * 1024 * 1024,
  }).catch((error: { stderr?: string; message: string }) => {
    throw new Error(`could not make the Python venv: ${error.stderr?.trim() || error.message}`);
  });
  python = made.stdout.trim().split("\n").at(-1) ?? "";
  providers = await startTwoProviders();
  ({ ollama, bedrock } = providers);
}, VENV_TIMEOUT_MS + 30_000);

afterAll(() => providers?.close());

/** Runs a script with only the pod contract's variables for the client; its one JSON line. */
async function script(name: string, env: Record<string, string>): Promise<Record<string, unknown>> {
  const { stdout } = await run(python, [join(PYTHON_DIR, name)], {
    timeout: SCRIPT_TIMEOUT_MS,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...env },
  }).catch((error: { stderr?: string; message: string }) => {
    throw new Error(`${name} failed: ${error.stderr?.trim() || error.message}`);
  });
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as Record<string, unknown>;
}

const openaiEnv = (sc: TwoProviders["viaOllama"]) => ({
  OPENAI_BASE_URL: `${sc.sidecar.agentUrl}/v1`,
  OPENAI_API_KEY: "agenttype-placeholder",
});

// Python starts and imports the SDKs in about a second on an idle machine, many under load.
describe("the official Python clients through the sidecar", { timeout: SCRIPT_TIMEOUT_MS }, () => {
  it("openai: chat completions plain, streamed, with a JSON schema and a tool call; responses plain and streamed", async () => {
    ollama.enqueue(
      {},
      {},
      {},
      { text: "", toolCalls: [{ name: "get_weather", arguments: { city: "Oslo" } }] },
    );
    const got = await script("openai_client.py", openaiEnv(providers.viaOllama));
    expect(got.chat).toMatchObject({
      text: "You said: hello there",
      finish_reason: "stop",
      model: "llama3.2",
      total_tokens: expect.any(Number),
    });
    expect(got.chat_stream).toEqual({ text: "You said: stream this", total_tokens: expect.any(Number) });
    expect(got.json_schema).toEqual({ name: expect.any(String), population: expect.any(Number) });
    expect(got.tool_calls).toEqual({
      finish_reason: "tool_calls",
      calls: [{ name: "get_weather", arguments: { city: "Oslo" } }],
    });
    expect(got.responses).toEqual({ text: "You said: hello again", status: "completed" });
    const streamed = got.responses_stream as { events: string[]; text: string };
    expect(streamed.text).toBe("You said: stream again");
    expect(streamed.events[0]).toBe("response.created");
    expect(streamed.events).toContain("response.output_text.delta");
    expect(streamed.events.at(-1)).toBe("response.completed");
    const chats = ollama.agentCalls.filter((r) => r.path === "/api/chat").map((r) => r.body);
    expect(chats.find((b) => b.format !== undefined)?.format).toMatchObject({
      required: ["name", "population"],
    });
    expect(
      chats.find((b) => b.messages !== undefined && JSON.stringify(b.messages).includes("hello again")),
    ).toMatchObject({
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "hello again" },
      ],
    });
  });

  it("openai-agents: runs a one-tool agent through the Responses API", async () => {
    bedrock.enqueue(
      { text: "", toolUse: { name: "get_weather", input: { city: "Rome" } } },
      { text: "It is sunny in Rome." },
    );
    const got = await script("agents_tool.py", {
      ...openaiEnv(providers.viaBedrock),
      OPENAI_AGENTS_DISABLE_TRACING: "1",
    });
    expect(got).toEqual({ asked: ["Rome"], final: "It is sunny in Rome." });
    const [first, second] = bedrock.requests.slice(-2).map((r) => r.body);
    expect(first).toMatchObject({
      system: [{ text: "Answer with the tool." }],
      toolConfig: { tools: [{ toolSpec: { name: "get_weather", strict: true } }] },
    });
    const turns = (second?.messages ?? []) as { content: object[] }[];
    expect(turns.at(-1)?.content).toEqual([
      { toolResult: { toolUseId: expect.any(String), content: [{ text: "sunny in Rome" }] } },
    ]);
  });

  it("anthropic: a message, a streamed one and a tool round trip", async () => {
    bedrock.enqueue(
      {},
      {},
      { text: "", toolUse: { name: "get_weather", input: { city: "Rome" } } },
      {
        text: "Sunny in Rome.",
      },
    );
    const got = await script("anthropic_client.py", {
      ANTHROPIC_BASE_URL: providers.viaBedrock.sidecar.agentUrl,
      ANTHROPIC_API_KEY: "agenttype-placeholder",
    });
    expect(got.message).toEqual({
      text: "You said: hello there",
      stop_reason: "end_turn",
      input_tokens: expect.any(Number),
      output_tokens: expect.any(Number),
    });
    expect(got.stream).toEqual({
      text: "You said: stream this",
      stop_reason: "end_turn",
      output_tokens: expect.any(Number),
    });
    expect(got.tool).toEqual({
      first_stop_reason: "tool_use",
      name: "get_weather",
      input: { city: "Rome" },
      final: "Sunny in Rome.",
      final_stop_reason: "end_turn",
    });
    const last = bedrock.requests.at(-1)?.body as { messages: { role: string; content: object[] }[] };
    expect(last.messages.at(-1)?.content).toEqual([
      { toolResult: { toolUseId: expect.any(String), content: [{ text: "sunny in Rome" }] } },
    ]);
  });
});
