// Request fidelity of the Ollama API over an Ollama provider: every field and option the
// stock ollama client sends reaches the faithful Ollama server as it was sent, and the answer
// shows its effect; what no provider can honour is refused in Ollama's error shape.
import { Ollama } from "ollama";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PNG } from "../testing/images.ts";
import { matches } from "../testing/json-schema-match.ts";
import { OllamaServer } from "../testing/ollama-server.ts";
import { baseConfig, llmConfig, startTestSidecar, type TestSidecar } from "../testing/sidecar.ts";

let ollama: OllamaServer;
let sc: TestSidecar;
let client: Ollama;

beforeAll(async () => {
  ollama = new OllamaServer({ contextLength: 4096 });
  await ollama.listen();
  sc = await startTestSidecar(
    baseConfig({
      llm: llmConfig([{ name: "local", type: "ollama", endpoint: ollama.url, model: "llama3.2" }]),
    }),
  );
  client = new Ollama({ host: sc.sidecar.agentUrl });
});

afterAll(async () => {
  await sc.close();
  await ollama.close();
});

beforeEach(() => {
  ollama.requests.length = 0;
  ollama.ignoredOptions.length = 0;
});

const upstream = () => ollama.requests.at(-1)?.body ?? {};
const ask = (content: string) => [{ role: "user", content }];

/** Every option Ollama documents, each with a value of its type. */
const EVERY_OPTION = {
  numa: false,
  num_ctx: 8192,
  num_batch: 512,
  num_gpu: 1,
  main_gpu: 0,
  low_vram: false,
  f16_kv: true,
  logits_all: false,
  vocab_only: false,
  use_mmap: true,
  use_mlock: false,
  embedding_only: false,
  num_thread: 4,
  num_keep: 5,
  seed: 42,
  num_predict: 100,
  top_k: 20,
  top_p: 0.9,
  min_p: 0.05,
  tfs_z: 1,
  typical_p: 0.7,
  repeat_last_n: 33,
  temperature: 0.8,
  repeat_penalty: 1.2,
  presence_penalty: 1.5,
  frequency_penalty: 1,
  mirostat: 1,
  mirostat_tau: 0.8,
  mirostat_eta: 0.6,
  penalize_newline: true,
  stop: ["\n", "user:"],
};

describe("Ollama fields over Ollama", () => {
  it("passes every documented option verbatim, and Ollama knows them all", async () => {
    await client.chat({ model: "m", messages: ask("hi"), options: EVERY_OPTION, stream: false });
    expect(upstream().options).toEqual(EVERY_OPTION);
    expect(ollama.ignoredOptions).toEqual([]);
    await client.generate({
      model: "m",
      prompt: "hi",
      options: { num_predict: -1, num_ctx: 2048 },
      stream: false,
    });
    expect(upstream().options).toEqual({ num_predict: -1, num_ctx: 2048 });
  });

  it("sizes the context window with num_ctx: a long prompt is no longer cut to the default", async () => {
    const long = "word ".repeat(6000);
    const cut = await client.chat({ model: "m", messages: ask(long), stream: false });
    expect(cut.prompt_eval_count).toBe(4096);
    const whole = await client.chat({
      model: "m",
      messages: ask(long),
      options: { num_ctx: 16384 },
      stream: false,
    });
    expect(upstream().options).toEqual({ num_ctx: 16384 });
    expect(whole.prompt_eval_count).toBeGreaterThan(7000);
  });

  it("refuses an option Ollama does not have, naming it", async () => {
    const error = await client
      .chat({ model: "m", messages: ask("hi"), options: { num_ctxx: 8192 } as never, stream: false })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      status_code: 400,
      error: "invalid request: options.num_ctxx: unknown field",
    });
    expect(ollama.requests).toHaveLength(0);
  });

  it("format json and a format schema reach Ollama, and the answer is JSON that fits", async () => {
    const json = await client.chat({
      model: "m",
      messages: ask("json please"),
      format: "json",
      stream: false,
    });
    expect(upstream().format).toBe("json");
    expect(JSON.parse(json.message.content)).toEqual({ answer: "You said: json please" });
    const schema = {
      type: "object",
      properties: { name: { type: "string" }, age: { type: "integer" } },
      required: ["name", "age"],
    };
    let streamed = "";
    for await (const part of await client.chat({
      model: "m",
      messages: ask("x"),
      format: schema,
      stream: true,
    })) {
      streamed += part.message.content;
    }
    expect(upstream().format).toEqual(schema);
    expect(matches(JSON.parse(streamed), schema)).toBe(true);
    const generated = await client.generate({ model: "m", prompt: "x", format: schema, stream: false });
    expect(matches(JSON.parse(generated.response ?? ""), schema)).toBe(true);
  });

  it("passes images, and refuses one sent as a data URL, naming it", async () => {
    const seen = await client.chat({
      model: "m",
      messages: [{ role: "user", content: "what is it?", images: [PNG] }],
      stream: false,
    });
    expect((upstream().messages as { images?: string[] }[])[0]?.images).toEqual([PNG]);
    expect(seen.message.content).toBe("You said: what is it? (and 1 png image(s))");
    const generated = await client.generate({
      model: "m",
      prompt: "and this?",
      images: [PNG],
      stream: false,
    });
    expect(generated.response).toBe("You said: and this? (and 1 png image(s))");
    const error = await client
      .chat({
        model: "m",
        messages: [{ role: "user", content: "x", images: [`data:image/png;base64,${PNG}`] }],
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      status_code: 400,
      error: expect.stringContaining("messages[0].images[0]"),
    });
  });

  it("think reaches Ollama and its thinking comes back, whole and streamed", async () => {
    const whole = await client.chat({ model: "m", messages: ask("why?"), think: true, stream: false });
    expect(upstream().think).toBe(true);
    expect(whole.message).toMatchObject({ content: "You said: why?", thinking: 'Thinking about "why?".' });
    let thinking = "";
    let content = "";
    for await (const part of await client.chat({
      model: "m",
      messages: ask("why?"),
      think: "high",
      stream: true,
    })) {
      thinking += part.message.thinking ?? "";
      content += part.message.content;
    }
    expect(upstream().think).toBe("high");
    expect(thinking).toBe('Thinking about "why?" at high effort.');
    expect(content).toBe("You said: why?");
    const generated = await client.generate({ model: "m", prompt: "why?", think: true, stream: false });
    expect(generated.thinking).toBe('Thinking about "why?".');
    // Earlier thinking in the history goes back to the model as it was.
    await client.chat({
      model: "m",
      messages: [...ask("a"), { role: "assistant", content: "b", thinking: "hmm" }, ...ask("c")],
      stream: false,
    });
    expect((upstream().messages as { thinking?: string }[])[1]?.thinking).toBe("hmm");
  });

  it("keep_alive, logprobs and top_logprobs reach Ollama, and logprobs come back", async () => {
    const answer = await client.chat({
      model: "m",
      messages: ask("hi"),
      keep_alive: "10m",
      logprobs: true,
      top_logprobs: 1,
      stream: false,
    });
    expect(upstream()).toMatchObject({ keep_alive: "10m", logprobs: true, top_logprobs: 1 });
    expect(answer.logprobs?.map((l) => l.token)).toEqual(["You ", "said: ", "hi"]);
    expect(answer.logprobs?.[0]).toEqual({
      token: "You ",
      logprob: -0.1,
      top_logprobs: [{ token: "You ", logprob: -0.1 }],
    });
    await client.generate({ model: "m", prompt: "hi", keep_alive: 0, stream: false });
    expect(upstream().keep_alive).toBe(0);
    const bad = await client
      .chat({ model: "m", messages: ask("hi"), keep_alive: "soon" })
      .catch((e: unknown) => e);
    expect(bad).toMatchObject({
      status_code: 400,
      error: expect.stringContaining('time: invalid duration "soon"'),
    });
  });

  it("stop and num_predict cut the answer, as Ollama does", async () => {
    const stopped = await client.generate({
      model: "m",
      prompt: "a b c d",
      options: { stop: ["c"] },
      stream: false,
    });
    expect(stopped.response).toBe("You said: a b ");
    const limited = await client.chat({
      model: "m",
      messages: ask("a b c d"),
      options: { num_predict: 3 },
      stream: false,
    });
    expect(limited).toMatchObject({ message: { content: "You said: a " }, done_reason: "length" });
  });

  it("refuses /api/generate fields that need Ollama's raw generate, naming each", async () => {
    const cases: [string, Partial<Parameters<Ollama["generate"]>[0]>][] = [
      ["suffix", { suffix: "}" }],
      ["raw", { raw: true }],
      ["template", { template: "{{ .Prompt }}" }],
      ["context", { context: [1, 2, 3] }],
    ];
    for (const [field, extra] of cases) {
      const error = await client
        .generate({ model: "m", prompt: "x", ...extra, stream: false })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ status_code: 400, error: expect.stringContaining(`${field}: `) });
    }
    expect(ollama.requests).toHaveLength(0);
  });

  it("passes embed's dimensions, truncate, keep_alive and options", async () => {
    const embedded = await client.embed({
      model: "m",
      input: ["a", "b"],
      dimensions: 4,
      truncate: false,
      keep_alive: "1m",
      options: { num_ctx: 512 },
    });
    expect(upstream()).toMatchObject({
      dimensions: 4,
      truncate: false,
      keep_alive: "1m",
      options: { num_ctx: 512 },
    });
    expect(embedded.embeddings.map((e) => e.length)).toEqual([4, 4]);
  });
});
