// OpenAI's Responses API through the sidecar with the official openai SDK, untuned (as
// OPENAI_BASE_URL sets it up), over the faithful Ollama and Bedrock servers: answers, the typed
// stream events, a tool round trip kept by previous_response_id or replayed with store: false,
// and errors in OpenAI's shape with the field named.
import OpenAI, { type APIError } from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { BedrockServer } from "../../testing/bedrock-server.ts";
import { PNG } from "../../testing/images.ts";
import type { OllamaServer } from "../../testing/ollama-server.ts";
import type { TestSidecar } from "../../testing/sidecar.ts";
import { startTwoProviders, type TwoProviders } from "../../testing/two-providers.ts";

let ollama: OllamaServer;
let bedrock: BedrockServer;
let viaOllama: TestSidecar;
let viaBedrock: TestSidecar;
let providers: TwoProviders;
let client: OpenAI;
let claude: OpenAI;

beforeAll(async () => {
  providers = await startTwoProviders({ bedrockAttempts: 1 });
  ({ ollama, bedrock, viaOllama, viaBedrock } = providers);
  // What the pod's environment gives an agent: OPENAI_BASE_URL, and any key.
  client = new OpenAI({ baseURL: `${viaOllama.sidecar.agentUrl}/v1`, apiKey: "unused" });
  claude = new OpenAI({ baseURL: `${viaBedrock.sidecar.agentUrl}/v1`, apiKey: "unused" });
});

afterAll(() => providers.close());

beforeEach(() => {
  ollama.requests.length = 0;
  bedrock.requests.length = 0;
});

const upstream = () => ollama.requests.at(-1)?.body ?? {};

const weather: OpenAI.Responses.FunctionTool = {
  type: "function",
  name: "get_weather",
  description: "Weather of a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  strict: false,
};

async function failure(client: OpenAI, params: Record<string, unknown>): Promise<APIError> {
  const error = await client.responses
    .create({ model: "gpt-5", input: "hi", ...params } as OpenAI.Responses.ResponseCreateParamsNonStreaming)
    .catch((e: unknown) => e);
  expect(error).toBeInstanceOf(OpenAI.APIError);
  return error as APIError;
}

describe("Responses API over an Ollama provider", () => {
  it("answers with the instructions and sampling fields reaching Ollama, and usage", async () => {
    const response = await client.responses.create({
      model: "gpt-5",
      instructions: "Be brief.",
      input: "hello sidecar",
      max_output_tokens: 50,
      temperature: 0.3,
      top_p: 0.8,
    });
    expect(response.id).toMatch(/^resp_/);
    expect(response.object).toBe("response");
    expect(response.status).toBe("completed");
    expect(response.model).toBe("llama3.2");
    expect(response.output_text).toBe("You said: hello sidecar");
    expect(response.output).toEqual([
      {
        id: expect.stringMatching(/^msg_/),
        type: "message",
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text: "You said: hello sidecar", annotations: [], logprobs: [] }],
      },
    ]);
    expect(response.usage?.output_tokens).toBe(4);
    expect(response.usage?.total_tokens).toBe((response.usage?.input_tokens ?? 0) + 4);
    expect(upstream()).toMatchObject({
      stream: false,
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "hello sidecar" },
      ],
      options: { num_predict: 50, temperature: 0.3, top_p: 0.8 },
    });
  });

  it("says incomplete when max_output_tokens cut the answer", async () => {
    const response = await client.responses.create({
      model: "m",
      input: "one two three",
      max_output_tokens: 2,
    });
    expect(response.status).toBe("incomplete");
    expect(response.incomplete_details).toEqual({ reason: "max_output_tokens" });
  });

  it("runs a tool round trip through previous_response_id, without the earlier instructions", async () => {
    ollama.enqueue({ text: "", toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }] });
    const first = await client.responses.create({
      model: "m",
      instructions: "You forecast.",
      input: "weather in Paris?",
      tools: [weather],
    });
    const call = first.output.find(
      (i): i is OpenAI.Responses.ResponseFunctionToolCall => i.type === "function_call",
    );
    expect(call).toMatchObject({ name: "get_weather", arguments: '{"city":"Paris"}', status: "completed" });
    expect(upstream().tools).toEqual([
      {
        type: "function",
        function: { name: "get_weather", description: "Weather of a city", parameters: weather.parameters },
      },
    ]);
    if (call === undefined) throw new Error("no function call");
    const second = await client.responses.create({
      model: "m",
      previous_response_id: first.id,
      input: [{ type: "function_call_output", call_id: call.call_id, output: "sunny" }],
      tools: [weather],
    });
    expect(second.previous_response_id).toBe(first.id);
    expect(upstream().messages).toEqual([
      { role: "user", content: "weather in Paris?" },
      {
        role: "assistant",
        content: "",
        tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris" } } }],
      },
      { role: "tool", content: "sunny", tool_name: "get_weather" },
    ]);
    await client.responses.create({ model: "m", previous_response_id: second.id, input: "and tomorrow?" });
    expect((upstream().messages as object[]).slice(-2)).toEqual([
      { role: "assistant", content: "You said: weather in Paris?" },
      { role: "user", content: "and tomorrow?" },
    ]);
  });

  it("with store: false keeps nothing, and the agent replays the items itself", async () => {
    ollama.enqueue({ text: "", toolCalls: [{ name: "get_weather", arguments: { city: "Oslo" } }] });
    const input: OpenAI.Responses.ResponseInput = [{ role: "user", content: "weather in Oslo?" }];
    const first = await client.responses.create({ model: "m", input, tools: [weather], store: false });
    expect((first as { store?: boolean }).store).toBe(false);
    const gone = await failure(client, { previous_response_id: first.id });
    expect(gone.status).toBe(400);
    expect(gone.param).toBe("previous_response_id");
    expect(gone.code).toBe("previous_response_not_found");
    expect(gone.message).toContain(`previous response "${first.id}" is not in the sidecar's store`);
    const call = first.output.find(
      (i): i is OpenAI.Responses.ResponseFunctionToolCall => i.type === "function_call",
    );
    if (call === undefined) throw new Error("no function call");
    const second = await client.responses.create({
      model: "m",
      store: false,
      tools: [weather],
      input: [
        ...input,
        ...(first.output as OpenAI.Responses.ResponseInputItem[]),
        { type: "function_call_output", call_id: call.call_id, output: "snow" },
      ],
    });
    expect(second.output_text).toBe("You said: weather in Oslo?");
    expect((upstream().messages as object[]).slice(1)).toEqual([
      {
        role: "assistant",
        content: "",
        tool_calls: [{ function: { name: "get_weather", arguments: { city: "Oslo" } } }],
      },
      { role: "tool", content: "snow", tool_name: "get_weather" },
    ]);
  });

  it("streams typed events with sequence numbers, and the SDK's stream helper assembles the response", async () => {
    const stream = await client.responses.create({ model: "m", input: "one two", stream: true });
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    expect(events.map((e) => e.type)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ]);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const done = events.at(-1);
    expect(done?.type === "response.completed" && done.response.usage?.output_tokens).toBe(4);

    const helper = client.responses.stream({ model: "m", input: "three four" });
    const deltas: string[] = [];
    helper.on("response.output_text.delta", (event) => deltas.push(event.delta));
    const final = await helper.finalResponse();
    expect(deltas.join("")).toBe("You said: three four");
    expect(final.output_text).toBe("You said: three four");
    expect(upstream().stream).toBe(true);
  });

  it("streams a function call, and continues from a streamed response by its id", async () => {
    ollama.enqueue({ text: "", toolCalls: [{ name: "get_weather", arguments: { city: "Rome" } }] });
    const helper = client.responses.stream({ model: "m", input: "weather in Rome?", tools: [weather] });
    const argumentDeltas: string[] = [];
    helper.on("response.function_call_arguments.delta", (event) => argumentDeltas.push(event.delta));
    const final = await helper.finalResponse();
    expect(argumentDeltas).toEqual(['{"city":"Rome"}']);
    const call = final.output.find((i) => i.type === "function_call");
    expect(call).toMatchObject({ name: "get_weather", arguments: '{"city":"Rome"}' });
    if (call?.type !== "function_call") throw new Error("no function call");
    await client.responses.create({
      model: "m",
      previous_response_id: final.id,
      input: [{ type: "function_call_output", call_id: call.call_id, output: "warm" }],
      tools: [weather],
    });
    expect((upstream().messages as object[]).at(-1)).toEqual({
      role: "tool",
      content: "warm",
      tool_name: "get_weather",
    });
  });

  it("maps reasoning effort to think, answers with a reasoning item, and takes it back as thinking", async () => {
    const first = await client.responses.create({ model: "m", input: "why?", reasoning: { effort: "low" } });
    expect(upstream().think).toBe("low");
    expect(first.output[0]).toMatchObject({
      type: "reasoning",
      content: [{ type: "reasoning_text", text: 'Thinking about "why?" at low effort.' }],
    });
    await client.responses.create({
      model: "m",
      input: [
        { role: "user", content: "why?" },
        ...(first.output as OpenAI.Responses.ResponseInputItem[]),
        { role: "user", content: "so?" },
      ],
    });
    expect((upstream().messages as object[])[1]).toEqual({
      role: "assistant",
      content: "You said: why?",
      thinking: 'Thinking about "why?" at low effort.',
    });
  });

  it("passes input images to Ollama, and maps text.format to Ollama's format", async () => {
    const response = await client.responses.create({
      model: "m",
      input: [
        {
          role: "user",
          content: [
            { type: "input_text", text: "what is this?" },
            { type: "input_image", image_url: `data:image/png;base64,${PNG}`, detail: "auto" },
          ],
        },
      ],
      text: { format: { type: "json_object" } },
    });
    expect((upstream().messages as object[])[0]).toEqual({
      role: "user",
      content: "what is this?",
      images: [PNG],
    });
    expect(upstream().format).toBe("json");
    expect(JSON.parse(response.output_text)).toEqual({
      answer: "You said: what is this? (and 1 png image(s))",
    });
  });

  it("refuses what no provider can honour, in OpenAI's shape with the field named", async () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ tools: [{ type: "web_search" }] }, "tools[0].type", "hosted tools"],
      [{ truncation: "auto" }, "truncation", "truncation auto reaches no provider"],
      [{ include: ["reasoning.encrypted_content"] }, "include", "include reaches no provider"],
      [{ background: true }, "background", "background responses"],
      [{ input: [{ type: "item_reference", id: "msg_1" }] }, "input[0]", "item references reach no provider"],
      [
        {
          input: [
            {
              role: "user",
              content: [{ type: "input_image", image_url: "https://example.com/a.png", detail: "auto" }],
            },
          ],
        },
        "input[0].content[0].image_url",
        "does not fetch remote images",
      ],
      [
        { tools: [weather], tool_choice: { type: "function", name: "nope" } },
        "tool_choice",
        'no tool named "nope"',
      ],
      [{ frequency_penalty: 1 }, "frequency_penalty", "unknown field"],
      [
        { input: [{ type: "reasoning", summary: [], encrypted_content: "x" }] },
        "input[0].encrypted_content",
        "encrypted reasoning reaches no provider",
      ],
    ];
    for (const [params, param, words] of cases) {
      const error = await failure(client, params);
      expect(error.status).toBe(400);
      expect(error.param).toBe(param);
      expect(error.message).toContain(words);
    }
    const strict = await failure(client, { tools: [{ ...weather, strict: true }] });
    expect(strict.message).toContain('provider "local" (ollama) cannot honour tools[0].strict');
    const forced = await failure(client, { tools: [weather], tool_choice: "required" });
    expect(forced.param).toBe("tool_choice");
    expect(ollama.requests).toHaveLength(0);
  });

  it("answers its own errors in OpenAI's shape", async () => {
    const bad = await fetch(`${viaOllama.sidecar.agentUrl}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({
      error: {
        type: "invalid_request_error",
        code: "invalid_json",
        message: expect.stringContaining("not valid JSON"),
      },
    });
  });

  it("ends a stream that fails after it started with an error event", async () => {
    ollama.enqueue({ errorAfterChunks: 2 });
    const stream = await client.responses.create({ model: "m", input: "one two three", stream: true });
    const seen: string[] = [];
    const error = await (async () => {
      for await (const event of stream) seen.push(event.type);
    })().catch((e: unknown) => e);
    expect(seen.slice(0, 2)).toEqual(["response.created", "response.in_progress"]);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as APIError).message).toContain("failed after the answer had started");
  });
});

describe("Responses API over a Bedrock provider", () => {
  it("streams text and a function call from Converse, and maps tool_choice and json_schema", async () => {
    bedrock.enqueue({ text: "Let me check. ", toolUse: { name: "get_weather", input: { city: "Rome" } } });
    const stream = await claude.responses.create({
      model: "m",
      input: "weather in Rome?",
      tools: [{ ...weather, strict: true }],
      stream: true,
    });
    const types: string[] = [];
    let final: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.completed") final = event.response;
    }
    expect(types.filter((t) => t.startsWith("response.output_item"))).toEqual([
      "response.output_item.added",
      "response.output_item.done",
      "response.output_item.added",
      "response.output_item.done",
    ]);
    expect(final?.output.map((i) => i.type)).toEqual(["message", "function_call"]);
    const converse = bedrock.requests.at(-1)?.body ?? {};
    expect(converse.toolConfig).toMatchObject({
      tools: [{ toolSpec: { name: "get_weather", strict: true } }],
    });

    const schema = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
    await claude.responses.create({
      model: "m",
      input: "forecast",
      tools: [weather],
      tool_choice: { type: "function", name: "get_weather" },
      text: { format: { type: "json_schema", name: "forecast", schema } },
    });
    expect(bedrock.requests.at(-1)?.body).toMatchObject({
      toolConfig: { toolChoice: { tool: { name: "get_weather" } } },
      outputConfig: { textFormat: { type: "json_schema", structure: { jsonSchema: { name: "forecast" } } } },
    });
  });
});
