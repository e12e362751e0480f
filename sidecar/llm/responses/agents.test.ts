// The OpenAI Agents SDK (TypeScript, @openai/agents) runs a one-tool agent through the sidecar's
// Responses API, as an unmodified agent would with OPENAI_BASE_URL set: the model calls the
// tool, the SDK runs it and sends the result back, the model answers. Over Bedrock with the
// SDK's default strict tools, and streamed over Ollama with a non-strict tool (Ollama cannot
// hold a call to its schema, so the sidecar refuses strict tools there by name).
import { Agent, OpenAIProvider, Runner, tool } from "@openai/agents";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as z from "zod";
import type { BedrockServer } from "../../testing/bedrock-server.ts";
import type { OllamaServer } from "../../testing/ollama-server.ts";
import type { TestSidecar } from "../../testing/sidecar.ts";
import { startTwoProviders, type TwoProviders } from "../../testing/two-providers.ts";

let ollama: OllamaServer;
let bedrock: BedrockServer;
let viaOllama: TestSidecar;
let viaBedrock: TestSidecar;
let providers: TwoProviders;

beforeAll(async () => {
  providers = await startTwoProviders();
  ({ ollama, bedrock, viaOllama, viaBedrock } = providers);
});

afterAll(() => providers.close());

/** A runner whose models are the sidecar's, as OPENAI_BASE_URL makes them; no traces leave the test. */
function runnerFor(sc: TestSidecar): Runner {
  const client = new OpenAI({ baseURL: `${sc.sidecar.agentUrl}/v1`, apiKey: "unused" });
  return new Runner({
    modelProvider: new OpenAIProvider({ openAIClient: client, useResponses: true }),
    tracingDisabled: true,
  });
}

/**
 * The agent under test, on a named model unless `model` is null: for its default model (a
 * GPT-5) the SDK adds text.verbosity "low", which no provider behind the sidecar can honour.
 */
function weatherAgent(strict: boolean, asked: string[], model: string | null = "gpt-4.1") {
  const execute = async (input: unknown) => {
    const { city } = input as { city: string };
    asked.push(city);
    return `sunny in ${city}`;
  };
  const common = { name: "get_weather", description: "Weather of a city", execute };
  // The SDK takes zod parameters for strict tools only, and a JSON schema otherwise.
  const getWeather = strict
    ? tool({ ...common, parameters: z.object({ city: z.string() }), strict: true })
    : tool({
        ...common,
        parameters: {
          type: "object" as const,
          properties: { city: { type: "string" } },
          required: ["city"],
          additionalProperties: true as const,
        },
        strict: false,
      });
  return new Agent({
    name: "forecaster",
    instructions: "Answer with the tool.",
    tools: [getWeather],
    ...(model === null ? {} : { model }),
  });
}

describe("the OpenAI Agents SDK through the sidecar's Responses API", () => {
  it("runs a one-tool agent over Bedrock with the SDK's default strict tools", async () => {
    bedrock.enqueue(
      { text: "", toolUse: { name: "get_weather", input: { city: "Rome" } } },
      { text: "It is sunny in Rome." },
    );
    const asked: string[] = [];
    const result = await runnerFor(viaBedrock).run(weatherAgent(true, asked), "What is the weather in Rome?");
    expect(asked).toEqual(["Rome"]);
    expect(result.finalOutput).toBe("It is sunny in Rome.");
    const [first, second] = bedrock.requests.map((r) => r.body);
    expect(first).toMatchObject({
      system: [{ text: "Answer with the tool." }],
      toolConfig: { tools: [{ toolSpec: { name: "get_weather", strict: true } }] },
    });
    const turns = (second?.messages ?? []) as { content: object[] }[];
    expect(turns.at(-1)?.content).toEqual([
      { toolResult: { toolUseId: expect.any(String), content: [{ text: "sunny in Rome" }] } },
    ]);
  });

  it("runs it streamed over Ollama with a non-strict tool", async () => {
    ollama.enqueue(
      { text: "", toolCalls: [{ name: "get_weather", arguments: { city: "Oslo" } }] },
      { text: "Sunny in Oslo." },
    );
    const asked: string[] = [];
    const result = await runnerFor(viaOllama).run(weatherAgent(false, asked), "Weather in Oslo?", {
      stream: true,
    });
    const deltas: string[] = [];
    for await (const event of result.toTextStream()) deltas.push(event);
    await result.completed;
    expect(asked).toEqual(["Oslo"]);
    expect(deltas.join("")).toBe("Sunny in Oslo.");
    expect(result.finalOutput).toBe("Sunny in Oslo.");
    expect(ollama.requests.at(-1)?.body.messages).toEqual([
      { role: "system", content: "Answer with the tool." },
      { role: "user", content: "Weather in Oslo?" },
      {
        role: "assistant",
        content: "",
        tool_calls: [{ function: { name: "get_weather", arguments: { city: "Oslo" } } }],
      },
      { role: "tool", content: "sunny in Oslo", tool_name: "get_weather" },
    ]);
  });

  it("on the SDK's default model, is refused by name for the verbosity the SDK adds", async () => {
    const before = ollama.requests.length;
    const error = await runnerFor(viaOllama)
      .run(weatherAgent(false, [], null), "Weather?")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.APIError>).param).toBe("text.verbosity");
    expect(ollama.requests).toHaveLength(before);
  });
});
