// Request fidelity of the OpenAI API over an Ollama provider: every field the stock openai
// client sends either reaches the faithful Ollama server with its meaning (and the answer
// shows it) or is refused with a 400 naming the field and the provider.
import OpenAI, { type APIError } from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PNG } from "../testing/images.ts";
import { matches } from "../testing/json-schema-match.ts";
import { OllamaServer } from "../testing/ollama-server.ts";
import { baseConfig, llmConfig, startTestSidecar, type TestSidecar } from "../testing/sidecar.ts";

let ollama: OllamaServer;
let sc: TestSidecar;
let client: OpenAI;

beforeAll(async () => {
  ollama = new OllamaServer();
  await ollama.listen();
  sc = await startTestSidecar(
    baseConfig({
      llm: llmConfig([{ name: "local", type: "ollama", endpoint: ollama.url, model: "llama3.2" }]),
    }),
  );
  client = new OpenAI({ baseURL: `${sc.sidecar.agentUrl}/v1`, apiKey: "unused", maxRetries: 0 });
});

afterAll(async () => {
  await sc.close();
  await ollama.close();
});

beforeEach(() => {
  ollama.requests.length = 0;
  ollama.ignoredOptions.length = 0;
});

const user = (content: OpenAI.ChatCompletionUserMessageParam["content"]) => [
  { role: "user" as const, content },
];
const upstream = () => ollama.requests.at(-1)?.body ?? {};

async function refusal(params: Record<string, unknown>): Promise<APIError> {
  const before = ollama.requests.length;
  const error = await client.chat.completions
    .create({ model: "m", messages: user("hi"), ...params } as OpenAI.ChatCompletionCreateParamsNonStreaming)
    .catch((e: unknown) => e);
  expect(error).toBeInstanceOf(OpenAI.BadRequestError);
  expect(ollama.requests).toHaveLength(before);
  return error as APIError;
}

const weather: OpenAI.ChatCompletionTool = {
  type: "function",
  function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
};
const time: OpenAI.ChatCompletionTool = { type: "function", function: { name: "get_time" } };

describe("OpenAI fields over Ollama", () => {
  it("json_object reaches Ollama as format json, and the answer is JSON", async () => {
    const completion = await client.chat.completions.create({
      model: "m",
      messages: user("give me json"),
      response_format: { type: "json_object" },
    });
    expect(upstream().format).toBe("json");
    expect(JSON.parse(completion.choices[0]?.message.content ?? "")).toEqual({
      answer: "You said: give me json",
    });
  });

  it("json_schema reaches Ollama as the format schema, and the answer fits it", async () => {
    const schema = {
      type: "object",
      properties: { city: { type: "string" }, days: { type: "integer" }, sunny: { type: "boolean" } },
      required: ["city", "days", "sunny"],
      additionalProperties: false,
    };
    const completion = await client.chat.completions.create({
      model: "m",
      messages: user("forecast"),
      response_format: { type: "json_schema", json_schema: { name: "forecast", schema, strict: true } },
    });
    expect(upstream().format).toEqual(schema);
    const answer: unknown = JSON.parse(completion.choices[0]?.message.content ?? "");
    expect(matches(answer, schema)).toBe(true);
    const described = await refusal({
      response_format: { type: "json_schema", json_schema: { name: "f", description: "a forecast", schema } },
    });
    expect(described.param).toBe("response_format");
    expect(described.message).toContain('provider "local" (ollama) cannot honour response_format');
  });

  it("tool_choice auto sends the tools, none withholds them, allowed_tools sends only those", async () => {
    await client.chat.completions.create({
      model: "m",
      messages: user("x"),
      tools: [weather, time],
      tool_choice: "auto",
    });
    expect((upstream().tools as unknown[]).length).toBe(2);
    await client.chat.completions.create({
      model: "m",
      messages: user("x"),
      tools: [weather, time],
      tool_choice: "none",
    });
    expect(upstream().tools).toBeUndefined();
    await client.chat.completions.create({
      model: "m",
      messages: user("x"),
      tools: [weather, time],
      tool_choice: {
        type: "allowed_tools",
        allowed_tools: { mode: "auto", tools: [{ type: "function", function: { name: "get_time" } }] },
      },
    });
    expect(upstream().tools).toEqual([
      { type: "function", function: { name: "get_time", description: "", parameters: { type: "object" } } },
    ]);
  });

  it("refuses what Ollama cannot force: required, a named function, parallel_tool_calls false, strict tools", async () => {
    for (const tool_choice of ["required", { type: "function", function: { name: "get_weather" } }]) {
      const error = await refusal({ tools: [weather], tool_choice });
      expect(error.param).toBe("tool_choice");
      expect(error.code).toBe("unsupported_parameter");
      expect(error.message).toBe(
        '400 provider "local" (ollama) cannot honour tool_choice: Ollama cannot make the model call a tool',
      );
    }
    expect((await refusal({ tools: [weather], parallel_tool_calls: false })).param).toBe(
      "parallel_tool_calls",
    );
    const strict = await refusal({
      tools: [time, { ...weather, function: { ...weather.function, strict: true } }],
    });
    expect(strict.param).toBe("tools[1].function.strict");
    // true is what Ollama does anyway: several calls in one turn are allowed.
    await client.chat.completions.create({
      model: "m",
      messages: user("x"),
      tools: [weather],
      parallel_tool_calls: true,
    });
    expect(upstream().tools).toHaveLength(1);
  });

  it("sends a base64 image to Ollama without its data URL prefix, and the model sees it", async () => {
    const completion = await client.chat.completions.create({
      model: "m",
      messages: user([
        { type: "text", text: "what is this?" },
        { type: "image_url", image_url: { url: `data:image/png;base64,${PNG}`, detail: "auto" } },
      ]),
    });
    expect((upstream().messages as { images?: string[] }[])[0]?.images).toEqual([PNG]);
    expect(completion.choices[0]?.message.content).toBe("You said: what is this? (and 1 png image(s))");
  });

  it("refuses a remote image URL and an image detail, naming the part", async () => {
    const remote = await refusal({
      messages: user([{ type: "image_url", image_url: { url: "https://example.com/cat.png" } }]),
    });
    expect(remote.param).toBe("messages[0].content[0].image_url.url");
    expect(remote.message).toContain("the sidecar does not fetch remote images");
    const detail = await refusal({
      messages: user([
        { type: "image_url", image_url: { url: `data:image/png;base64,${PNG}`, detail: "high" } },
      ]),
    });
    expect(detail.param).toBe("messages[0].content[0].image_url.detail");
  });

  it("passes stop, seed, temperature, top_p, penalties and the token limit, and the answer obeys them", async () => {
    const cut = await client.chat.completions.create({
      model: "m",
      messages: user("one two three four five"),
      stop: ["three"],
      seed: 42,
      temperature: 0.3,
      top_p: 0.9,
      frequency_penalty: 0.5,
      presence_penalty: -0.5,
      max_completion_tokens: 100,
    });
    expect(upstream().options).toEqual({
      stop: ["three"],
      seed: 42,
      temperature: 0.3,
      top_p: 0.9,
      frequency_penalty: 0.5,
      presence_penalty: -0.5,
      num_predict: 100,
    });
    expect(cut.choices[0]?.message.content).toBe("You said: one two ");
    const short = await client.chat.completions.create({
      model: "m",
      messages: user("a b c d"),
      max_tokens: 2,
    });
    expect(upstream().options).toEqual({ num_predict: 2 });
    expect(short.choices[0]).toMatchObject({ message: { content: "You said: " }, finish_reason: "length" });
    expect(ollama.ignoredOptions).toEqual([]);
  });

  it("answers logprobs with the top alternatives, whole and streamed", async () => {
    const completion = await client.chat.completions.create({
      model: "m",
      messages: user("hi"),
      logprobs: true,
      top_logprobs: 2,
    });
    expect(upstream()).toMatchObject({ logprobs: true, top_logprobs: 2 });
    const content = completion.choices[0]?.logprobs?.content ?? [];
    expect(content.map((l) => l.token)).toEqual(["You ", "said: ", "hi"]);
    expect(content[0]).toEqual({
      token: "You ",
      logprob: -0.1,
      bytes: [...Buffer.from("You ")],
      top_logprobs: [
        { token: "You ", logprob: -0.1, bytes: [...Buffer.from("You ")] },
        { token: "YOU ", logprob: -1.1, bytes: [...Buffer.from("YOU ")] },
      ],
    });
    const tokens: string[] = [];
    for await (const chunk of await client.chat.completions.create({
      model: "m",
      messages: user("hi"),
      logprobs: true,
      stream: true,
    })) {
      tokens.push(...(chunk.choices[0]?.logprobs?.content ?? []).map((l) => l.token));
    }
    expect(tokens).toEqual(["You ", "said: ", "hi"]);
    expect((await refusal({ top_logprobs: 2 })).param).toBe("top_logprobs");
  });

  it("maps reasoning_effort to Ollama's think, none to false, and refuses levels Ollama lacks", async () => {
    await client.chat.completions.create({ model: "m", messages: user("hi"), reasoning_effort: "low" });
    expect(upstream().think).toBe("low");
    const none = await client.chat.completions.create({
      model: "m",
      messages: user("hi"),
      reasoning_effort: "none",
    });
    expect(upstream().think).toBe(false);
    expect(none.choices[0]?.message.content).toBe("You said: hi");
    const xhigh = await refusal({ reasoning_effort: "xhigh" });
    expect(xhigh.param).toBe("reasoning_effort");
  });

  it("refuses n > 1, service tiers and metadata Ollama does not have, naming the provider", async () => {
    expect((await refusal({ n: 2 })).message).toBe(
      '400 provider "local" (ollama) cannot honour n: Ollama answers with one choice per request',
    );
    expect((await refusal({ service_tier: "flex" })).param).toBe("service_tier");
    expect((await refusal({ metadata: { team: "a" } })).param).toBe("metadata");
    await client.chat.completions.create({
      model: "m",
      messages: user("hi"),
      n: 1,
      service_tier: "auto",
      store: false,
    });
    expect(ollama.requests).toHaveLength(1);
  });

  it("refuses fields no provider has, and fields OpenAI's API does not have, by name", async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ user: "u-1" }, "user", /end-user identifiers reach no provider/],
      [{ store: true }, "store", /stores no completions/],
      [{ logit_bias: { "50256": -100 } }, "logit_bias", /token biases/],
      [{ modalities: ["text", "audio"] }, "modalities[1]", /text only/],
      [{ service_tier: "scale" }, "service_tier", /auto, default, flex or priority/],
      [{ verbosity: "low" }, "verbosity", /verbosity/],
      [{ top_k: 5 }, "top_k", /unknown field/],
      [
        { messages: [{ role: "user", content: "x", name: "alice" }] },
        "messages[0].name",
        /participant names/,
      ],
      [
        { messages: user([{ type: "input_audio", input_audio: { data: "AAAA", format: "wav" } }]) },
        "messages[0].content[0]",
        /audio input/,
      ],
    ];
    for (const [params, param, message] of cases) {
      const error = await refusal(params);
      expect(error.param).toBe(param);
      expect(error.message).toMatch(message);
    }
  });
});
