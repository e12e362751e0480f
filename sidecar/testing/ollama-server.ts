// A local server that speaks Ollama's REST protocol as Ollama does (NDJSON streams, error
// objects, done fields, durations), honours the request's fields as Ollama does (format,
// options, images, think, logprobs, keep_alive), with scripted faults for tests. It imports
// nothing but Node: the e2e upstream image ships this file alone. Run it standalone with
// `node sidecar/testing/ollama-server.ts --port N [--host 127.0.0.1] [--token T]`.
import { createHash } from "node:crypto";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";

/** How the server answers one request; unset fields take the normal behaviour. */
export interface Scenario {
  /** Answer with this HTTP status and Ollama's error object instead of an answer. */
  status?: number;
  error?: string;
  /** Text of the answer; the default echoes the last user message. */
  text?: string;
  toolCalls?: { name: string; arguments: Record<string, unknown> }[];
  /** done_reason of the final chunk: stop (default) or length. */
  doneReason?: string;
  /** Send an error object as a line after this many content chunks (what Ollama does when the runner fails). */
  errorAfterChunks?: number;
  /** Close the connection after this many content chunks, as a crashing server does. */
  dieAfterChunks?: number;
  /** Never answer. */
  hang?: boolean;
  /** Pause before each chunk. */
  chunkDelayMs?: number;
  /** Pause before the response headers. */
  delayMs?: number;
  /** Add the request's Authorization header to the error text, raw, base64 and URL-encoded, as careless servers do. */
  echoAuthorization?: boolean;
}

/**
 * Plays a scenario's faults before chunk `i` of a stream: at `errorAfterChunks` the stream ends
 * with the error `endWithError` writes, at `dieAfterChunks` the connection drops (20 ms later,
 * so the chunks already written reach the client, as from a real crash), and `chunkDelayMs`
 * paces it. "write" when chunk `i` is to be written, "ended" when the stream ended here, "gone"
 * when the client had left (the caller counts it as abandoned).
 */
export async function chunkFault(
  res: ServerResponse,
  scenario: Scenario,
  i: number,
  endWithError: () => void,
): Promise<"write" | "ended" | "gone"> {
  if (scenario.errorAfterChunks === i) {
    endWithError();
    return "ended";
  }
  if (scenario.dieAfterChunks === i) {
    await sleep(20);
    res.destroy();
    return "ended";
  }
  if (scenario.chunkDelayMs !== undefined) await sleep(scenario.chunkDelayMs);
  return res.destroyed ? "gone" : "write";
}

/** How the server answers the next /api/pull; unset fields pull normally. */
export interface PullScenario {
  /** Stop sending after this many progress lines of the model's layer, keeping the connection open. */
  hangAfterSteps?: number;
  /** Send this error line after the manifest, as Ollama does when the registry fails mid-pull. */
  error?: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export interface OllamaServerOptions {
  host?: string;
  port?: number;
  /** Models the server has pulled. */
  models?: string[];
  /** When set, every request needs `Authorization: Bearer <token>`. */
  token?: string;
  /** Words per streamed chunk. */
  wordsPerChunk?: number;
  /** The context window when the request sets no num_ctx, in tokens. */
  contextLength?: number;
  /** Models /api/pull can fetch, by full name (name:tag), with their size in bytes. */
  registry?: Record<string, number>;
  /** Progress lines of a model's layer during a pull. */
  pullSteps?: number;
  /** Pause before each progress line of a pull. */
  pullStepDelayMs?: number;
}

/** What the registry offers unless a test says otherwise: the usual small models. */
const DEFAULT_REGISTRY: Record<string, number> = {
  "llama3.2:latest": 2_019_393_189,
  "all-minilm:latest": 45_960_996,
  "qwen2.5:0.5b": 397_821_319,
};

const RECORDED_MAX = 200;

export class OllamaServer {
  readonly requests: RecordedRequest[] = [];
  /** Options sent that Ollama does not know; it logs "invalid option provided" and goes on without them. */
  readonly ignoredOptions: string[] = [];
  /** Streams whose client went away before the answer was complete. */
  abandoned = 0;
  readonly #server: http.Server;
  readonly #scenarios: Scenario[] = [];
  readonly #models: string[];
  readonly #token: string | undefined;
  readonly #wordsPerChunk: number;
  readonly #contextLength: number;
  readonly #hanging = new Set<ServerResponse>();
  readonly #registry: Record<string, number>;
  readonly #pullSteps: number;
  readonly #pullStepDelayMs: number;
  readonly #pullScenarios: PullScenario[] = [];

  constructor(options: OllamaServerOptions = {}) {
    this.#models = options.models ?? ["llama3.2:latest", "all-minilm:latest"];
    this.#token = options.token;
    this.#wordsPerChunk = options.wordsPerChunk ?? 1;
    this.#contextLength = options.contextLength ?? 4096;
    this.#registry = options.registry ?? DEFAULT_REGISTRY;
    this.#pullSteps = options.pullSteps ?? 4;
    this.#pullStepDelayMs = options.pullStepDelayMs ?? 0;
    this.#server = http.createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) this.#error(res, 500, String(error));
        else res.destroy();
      });
    });
    this.#server.keepAliveTimeout = 60_000;
  }

  /** Scenarios for the next requests to /api/chat, /api/generate and /api/embed, in order. */
  enqueue(...scenarios: Scenario[]): void {
    this.#scenarios.push(...scenarios);
  }

  /** Scenarios for the next requests to /api/pull, in order. */
  enqueuePull(...scenarios: PullScenario[]): void {
    this.#pullScenarios.push(...scenarios);
  }

  /** The requests but a sidecar's model checks and pulls (GET /api/tags, POST /api/pull): what agents' calls became. */
  get agentCalls(): RecordedRequest[] {
    return this.requests.filter((r) => r.path !== "/api/tags" && r.path !== "/api/pull");
  }

  /** The models the server has, by full name (name:tag), as /api/tags lists them. */
  get models(): readonly string[] {
    return this.#models;
  }

  /** Forgets a model, as `ollama rm` does. */
  removeModel(name: string): void {
    const index = this.#models.indexOf(fullName(name));
    if (index >= 0) this.#models.splice(index, 1);
  }

  listen(port = 0, host = "127.0.0.1"): Promise<string> {
    return new Promise((resolve) => {
      this.#server.listen(port, host, () => resolve(this.url));
    });
  }

  get url(): string {
    const address = this.#server.address() as AddressInfo;
    return `http://127.0.0.1:${address.port}`;
  }

  close(): Promise<void> {
    for (const res of this.#hanging) res.destroy();
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const raw = await readBody(req);
    let body: Record<string, unknown> = {};
    if (raw !== "") {
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch (error) {
        return this.#error(res, 400, `invalid character in JSON: ${(error as Error).message}`);
      }
    }
    this.requests.push({ method: req.method ?? "", path, headers: req.headers, body });
    if (this.requests.length > RECORDED_MAX) this.requests.shift();
    if (this.#token !== undefined && req.headers.authorization !== `Bearer ${this.#token}`) {
      return this.#error(res, 401, "unauthorized");
    }
    const route = `${req.method} ${path}`;
    switch (route) {
      case "GET /api/version":
        return json(res, 200, { version: "0.12.6" });
      case "GET /api/tags":
        return json(res, 200, { models: this.#models.map(modelEntry) });
      case "POST /api/pull":
        return this.#pull(res, body);
      case "POST /api/show":
        return this.#show(res, body);
      case "POST /api/chat":
      case "POST /api/generate":
        return this.#generate(res, body, path === "/api/chat", req.headers);
      case "POST /api/embed":
        return this.#embed(res, body, req.headers);
      default:
        res.writeHead(404, { "content-type": "text/plain" }).end("404 page not found");
    }
  }

  #findModel(res: ServerResponse, body: Record<string, unknown>): string | undefined {
    const model = typeof body.model === "string" ? body.model : "";
    if (model === "") {
      this.#error(res, 400, "model is required");
      return undefined;
    }
    if (!this.#models.includes(fullName(model))) {
      this.#error(res, 404, `model "${model}" not found, try pulling it first`);
      return undefined;
    }
    return model;
  }

  /**
   * /api/pull as Ollama answers it: the name in `model` (or the older `name`), NDJSON progress
   * unless `stream` is false (one object at the end, or 500 and the error), and a registry
   * failure as an error line after the manifest step with status 200, since the headers are out.
   */
  async #pull(res: ServerResponse, body: Record<string, unknown>): Promise<void> {
    const requested = typeof body.model === "string" && body.model !== "" ? body.model : body.name;
    if (typeof requested !== "string" || !VALID_NAME.test(requested)) {
      return this.#error(res, 400, "invalid model name");
    }
    const name = fullName(requested);
    const scenario = this.#pullScenarios.shift() ?? {};
    const streaming = body.stream !== false;
    const bytes = this.#registry[name];
    const failure =
      scenario.error ?? (bytes === undefined ? "pull model manifest: file does not exist" : undefined);
    const digest = createHash("sha256").update(name).digest("hex");
    const progress: Record<string, unknown>[] = [{ status: "pulling manifest" }];
    if (failure === undefined && bytes !== undefined) {
      for (let step = 0; step <= this.#pullSteps; step++) {
        const completed = Math.round((bytes * step) / this.#pullSteps);
        progress.push({
          status: `pulling ${digest.slice(0, 12)}`,
          digest: `sha256:${digest}`,
          total: bytes,
          ...(completed > 0 ? { completed } : {}),
        });
      }
      progress.push(
        { status: "verifying sha256 digest" },
        { status: "writing manifest" },
        { status: "success" },
      );
    }
    if (!streaming) {
      for (const _ of progress) await sleep(this.#pullStepDelayMs);
      if (failure !== undefined) return this.#error(res, 500, failure);
      if (!this.#models.includes(name)) this.#models.push(name);
      return json(res, 200, { status: "success" });
    }
    res.writeHead(200, { "content-type": "application/x-ndjson", date: new Date().toUTCString() });
    for (const [i, line] of progress.entries()) {
      if (scenario.hangAfterSteps !== undefined && i > scenario.hangAfterSteps) {
        this.#hanging.add(res);
        res.once("close", () => {
          this.#hanging.delete(res);
          this.abandoned++;
        });
        return;
      }
      await sleep(this.#pullStepDelayMs);
      if (res.destroyed) return;
      if (line.status === "success" && !this.#models.includes(name)) this.#models.push(name);
      res.write(`${JSON.stringify(line)}\n`);
    }
    if (failure !== undefined) res.write(`${JSON.stringify({ error: failure })}\n`);
    res.end();
  }

  #show(res: ServerResponse, body: Record<string, unknown>): void {
    if (this.#findModel(res, body) === undefined) return;
    json(res, 200, {
      license: "",
      modelfile: "# Modelfile generated by the test server\nFROM llama3.2:latest\n",
      parameters: "stop <|eot_id|>",
      template: "{{ .Prompt }}",
      details: modelEntry("llama3.2:latest").details,
      model_info: { "general.architecture": "llama", "llama.context_length": 131072 },
      capabilities: ["completion", "tools"],
      modified_at: "2025-01-01T00:00:00Z",
    });
  }

  async #generate(
    res: ServerResponse,
    body: Record<string, unknown>,
    chat: boolean,
    headers: http.IncomingHttpHeaders,
  ): Promise<void> {
    const model = this.#findModel(res, body);
    if (model === undefined) return;
    const invalid = this.#invalid(body, chat);
    if (invalid !== undefined) return this.#error(res, 400, invalid);
    const scenario = this.#scenarios.shift() ?? {};
    if (await this.#fault(res, scenario, headers)) return;
    const options = (body.options ?? {}) as Record<string, unknown>;
    const prompt = chat ? lastUserMessage(body.messages) : String(body.prompt ?? "");
    const images = chat ? imagesOf(body.messages) : ((body.images ?? []) as string[]);
    const seen = images.length === 0 ? "" : ` (and ${images.length} ${imageKinds(images)} image(s))`;
    let text = scenario.text ?? `You said: ${prompt}${seen}`;
    // A format constrains decoding: the answer is JSON, and fits the schema when one is given.
    if (body.format === "json") text = JSON.stringify({ answer: text });
    else if (typeof body.format === "object" && body.format !== null)
      text = JSON.stringify(sampleOf(body.format));
    let doneReason = scenario.doneReason ?? "stop";
    const stop = (options.stop ?? []) as string[];
    const stopAt = Math.min(...stop.map((s) => text.indexOf(s)).filter((i) => i >= 0));
    if (Number.isFinite(stopAt)) text = text.slice(0, stopAt);
    let chunks = chunkWords(text, this.#wordsPerChunk);
    const limit = typeof options.num_predict === "number" ? options.num_predict : -1;
    if (limit > 0 && chunks.length > limit) {
      chunks = chunks.slice(0, limit);
      doneReason = "length";
    }
    text = chunks.join("");
    const think = body.think;
    const thinking =
      think === true || typeof think === "string"
        ? `Thinking about "${prompt}"${typeof think === "string" ? ` at ${think} effort` : ""}.`
        : "";
    const toolCalls = (scenario.toolCalls ?? []).map((c) => ({ function: c }));
    // The prompt is cut to the context window (num_ctx, or the server's default) as Ollama does.
    const context = typeof options.num_ctx === "number" ? options.num_ctx : this.#contextLength;
    const promptTokens = Math.min(
      context,
      Math.max(1, Math.ceil(JSON.stringify(chat ? body.messages : prompt).length / 4)),
    );
    const top = typeof body.top_logprobs === "number" ? body.top_logprobs : 0;
    const logprobsOf = (content: string, i: number) =>
      body.logprobs === true ? { logprobs: [tokenLogprob(content, i, top)] } : {};
    const started = process.hrtime.bigint();
    const piece = (content: string, extra: Record<string, unknown> = {}) =>
      chat
        ? {
            model,
            created_at: new Date().toISOString(),
            message: { role: "assistant", content, ...extra },
            done: false,
          }
        : { model, created_at: new Date().toISOString(), response: content, ...extra, done: false };
    const final = () => {
      const total = Number(process.hrtime.bigint() - started);
      const done: Record<string, unknown> = {
        ...piece(""),
        done: true,
        done_reason: doneReason,
        total_duration: total,
        load_duration: 1_000_000,
        prompt_eval_count: promptTokens,
        prompt_eval_duration: 2_000_000,
        eval_count: chunks.length,
        eval_duration: Math.max(1, total - 3_000_000),
      };
      if (!chat) done.context = [1, 2, 3];
      return done;
    };
    if (body.stream === false) {
      const answer = final();
      const thought = thinking === "" ? {} : { thinking };
      if (chat)
        answer.message = {
          role: "assistant",
          content: text,
          ...thought,
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
        };
      else Object.assign(answer, { response: text, ...thought });
      if (body.logprobs === true) answer.logprobs = chunks.map((c, i) => tokenLogprob(c, i, top));
      return json(res, 200, answer);
    }
    res.writeHead(200, { "content-type": "application/x-ndjson", date: new Date().toUTCString() });
    if (thinking !== "") res.write(`${JSON.stringify(piece("", { thinking }))}\n`);
    for (const [i, content] of chunks.entries()) {
      const next = await chunkFault(res, scenario, i, () => {
        const error = "an error was encountered while running the model: unexpected EOF";
        res.end(`${JSON.stringify({ error: withEcho(error, scenario, headers) })}\n`);
      });
      if (next === "gone") this.abandoned++;
      if (next !== "write") return;
      res.write(`${JSON.stringify({ ...piece(content), ...logprobsOf(content, i) })}\n`);
    }
    if (toolCalls.length > 0) res.write(`${JSON.stringify(piece("", { tool_calls: toolCalls }))}\n`);
    res.end(`${JSON.stringify(final())}\n`);
  }

  /**
   * What Ollama answers 400 for in a generation request: images that are not plain base64, a
   * keep_alive that is no duration, a format or think it does not know, options of the wrong
   * type. Options it does not know it ignores, as Ollama does, and records them.
   */
  #invalid(body: Record<string, unknown>, chat: boolean): string | undefined {
    const images = chat ? imagesOf(body.messages, true) : ((body.images ?? []) as unknown[]);
    for (const image of images) {
      if (typeof image !== "string" || !BASE64.test(image) || image.length % 4 !== 0)
        return `illegal base64 data in image: ${String(image).slice(0, 24)}`;
    }
    const keepAlive = body.keep_alive;
    if (keepAlive !== undefined && typeof keepAlive !== "number" && !GO_DURATION.test(String(keepAlive)))
      return `time: invalid duration "${String(keepAlive)}"`;
    const format = body.format;
    if (
      format !== undefined &&
      format !== "" &&
      format !== "json" &&
      (typeof format !== "object" || format === null)
    )
      return `invalid format: ${JSON.stringify(format)}; expected "json" or a JSON schema`;
    const think = body.think;
    if (
      think !== undefined &&
      typeof think !== "boolean" &&
      !["low", "medium", "high"].includes(String(think))
    )
      return `invalid think value: ${JSON.stringify(think)}`;
    for (const [key, value] of Object.entries((body.options ?? {}) as Record<string, unknown>)) {
      const type = OPTION_TYPES[key];
      if (type === undefined) {
        this.ignoredOptions.push(key);
        continue;
      }
      const ok = type === "array" ? Array.isArray(value) : typeof value === type;
      if (!ok) return `option "${key}" must be of type ${type === "array" ? "array" : type}`;
    }
    return undefined;
  }

  async #embed(
    res: ServerResponse,
    body: Record<string, unknown>,
    headers: http.IncomingHttpHeaders,
  ): Promise<void> {
    const model = this.#findModel(res, body);
    if (model === undefined) return;
    const scenario = this.#scenarios.shift() ?? {};
    if (await this.#fault(res, scenario, headers)) return;
    const inputs = Array.isArray(body.input) ? body.input.map(String) : [String(body.input ?? "")];
    json(res, 200, {
      model,
      embeddings: inputs.map((input) =>
        embedding(input, typeof body.dimensions === "number" ? body.dimensions : 8),
      ),
      total_duration: 1_000_000,
      load_duration: 100_000,
      prompt_eval_count: inputs.reduce((n, s) => n + Math.max(1, Math.ceil(s.length / 4)), 0),
    });
  }

  /** Plays the scenario's fault, if any; true when the response is taken care of. */
  async #fault(res: ServerResponse, scenario: Scenario, headers: http.IncomingHttpHeaders): Promise<boolean> {
    if (scenario.delayMs !== undefined) await sleep(scenario.delayMs);
    if (scenario.hang === true) {
      this.#hanging.add(res);
      res.on("close", () => this.#hanging.delete(res));
      return true;
    }
    if (scenario.status !== undefined) {
      const error = scenario.error ?? http.STATUS_CODES[scenario.status] ?? "error";
      this.#error(res, scenario.status, withEcho(error, scenario, headers));
      return true;
    }
    return false;
  }

  #error(res: ServerResponse, status: number, message: string): void {
    json(res, status, { error: message });
  }
}

/** The error text, with the request's Authorization header in it when the scenario says so. */
function withEcho(error: string, scenario: Scenario, headers: http.IncomingHttpHeaders): string {
  if (scenario.echoAuthorization !== true) return error;
  return `${error} (you sent ${echoed("Authorization", headers.authorization)})`;
}

/** A header value raw, base64 and URL-encoded, as servers that echo requests write it. */
export function echoed(header: string, value: string | undefined): string {
  const raw = value ?? "";
  return `${header}: ${raw}; base64 ${Buffer.from(raw).toString("base64")}; url ${encodeURIComponent(raw)}`;
}

/** Model names Ollama accepts, roughly: [namespace/]name[:tag], no spaces. */
const VALID_NAME = /^[A-Za-z0-9][A-Za-z0-9._/-]*(:[A-Za-z0-9][A-Za-z0-9._-]*)?$/;

/** The name with its tag: Ollama reads `llama3.2` as `llama3.2:latest`. */
function fullName(model: string): string {
  return model.includes(":") ? model : `${model}:latest`;
}

function modelEntry(name: string) {
  return {
    name,
    model: name,
    modified_at: "2025-01-01T00:00:00.000000000Z",
    size: 2_019_393_189,
    digest: createHash("sha256").update(name).digest("hex"),
    details: {
      parent_model: "",
      format: "gguf",
      family: "llama",
      families: ["llama"],
      parameter_size: "3.2B",
      quantization_level: "Q4_K_M",
    },
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res
    .writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(text),
      date: new Date().toUTCString(),
    })
    .end(text);
}

/**
 * A value that satisfies a JSON schema, as a model whose output is constrained to the schema
 * produces one. Here, not in a module of its own: the e2e upstream image ships this file alone.
 */
export function sampleOf(schema: unknown): unknown {
  if (typeof schema !== "object" || schema === null) return {};
  const s = schema as Record<string, unknown>;
  if ("const" in s) return s.const;
  if (Array.isArray(s.enum)) return s.enum[0];
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    const options = s[key];
    if (Array.isArray(options) && options.length > 0) return sampleOf(options[0]);
  }
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case "string":
      return "text";
    case "integer":
    case "number":
      return typeof s.minimum === "number" ? s.minimum : 1;
    case "boolean":
      return true;
    case "null":
      return null;
    case "array":
      return [sampleOf(s.items)];
    default: {
      const properties = (s.properties ?? {}) as Record<string, unknown>;
      return Object.fromEntries(Object.entries(properties).map(([key, value]) => [key, sampleOf(value)]));
    }
  }
}

/** The options Ollama knows and the JSON type of each (api.Options of Ollama). */
const OPTION_TYPES: Readonly<Record<string, "number" | "boolean" | "array">> = {
  numa: "boolean",
  num_ctx: "number",
  num_batch: "number",
  num_gpu: "number",
  main_gpu: "number",
  low_vram: "boolean",
  f16_kv: "boolean",
  logits_all: "boolean",
  vocab_only: "boolean",
  use_mmap: "boolean",
  use_mlock: "boolean",
  embedding_only: "boolean",
  num_thread: "number",
  num_keep: "number",
  seed: "number",
  num_predict: "number",
  top_k: "number",
  top_p: "number",
  min_p: "number",
  tfs_z: "number",
  typical_p: "number",
  repeat_last_n: "number",
  temperature: "number",
  repeat_penalty: "number",
  presence_penalty: "number",
  frequency_penalty: "number",
  mirostat: "number",
  mirostat_tau: "number",
  mirostat_eta: "number",
  penalize_newline: "boolean",
  stop: "array",
};

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** A Go time.Duration as keep_alive takes it ("5m", "1h30m", "-1s", "0"). */
const GO_DURATION = /^-?(0|(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+)$/;

/** The images of the last user message, or of every message when checking them all. */
function imagesOf(messages: unknown, all = false): unknown[] {
  if (!Array.isArray(messages)) return [];
  const withImages = (messages as { role?: unknown; images?: unknown }[]).filter(
    (m) => all || m.role === "user",
  );
  const chosen = all ? withImages : withImages.slice(-1);
  return chosen.flatMap((m) => (Array.isArray(m.images) ? m.images : []));
}

/** What the images are, by their first bytes, as a vision model would tell. */
function imageKinds(images: readonly unknown[]): string {
  const kinds = images.map((image) => {
    const head = Buffer.from(String(image).slice(0, 16), "base64");
    if (head[0] === 0x89 && head.subarray(1, 4).toString("latin1") === "PNG") return "png";
    if (head[0] === 0xff && head[1] === 0xd8) return "jpeg";
    return "unknown";
  });
  return [...new Set(kinds)].join("/");
}

/** A made-up log probability for a token, with `top` alternatives, as Ollama reports them. */
function tokenLogprob(token: string, position: number, top: number) {
  const logprob = -0.1 * (position + 1);
  const alternatives = [token, token.toUpperCase(), `${token}?`].slice(0, top);
  return {
    token,
    logprob,
    ...(top > 0 ? { top_logprobs: alternatives.map((t, i) => ({ token: t, logprob: logprob - i })) } : {}),
  };
}

function lastUserMessage(messages: unknown): string {
  if (!Array.isArray(messages)) return "";
  const users = messages.filter((m: { role?: unknown }) => m.role === "user") as { content?: unknown }[];
  return String(users.at(-1)?.content ?? "");
}

/** Splits text into chunks of whole words, keeping the spaces, so joined chunks equal the text. */
function chunkWords(text: string, perChunk: number): string[] {
  const words = text.split(/(?<= )/);
  const chunks: string[] = [];
  for (let i = 0; i < words.length; i += perChunk) chunks.push(words.slice(i, i + perChunk).join(""));
  return chunks;
}

/** A deterministic unit vector, so tests can compare embeddings. */
function embedding(input: string, dimensions: number): number[] {
  const digest = createHash("sha256").update(input).digest();
  const vector = Array.from({ length: dimensions }, (_, i) => (digest[i % digest.length] ?? 0) - 128);
  const norm = Math.hypot(...vector) || 1;
  return vector.map((v) => v / norm);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "11434" },
      host: { type: "string", default: "127.0.0.1" },
      token: { type: "string" },
    },
  });
  const server = new OllamaServer(values.token === undefined ? {} : { token: values.token });
  const url = await server.listen(Number(values.port), values.host);
  console.log(`fake ollama listening on ${values.host}:${new URL(url).port}`);
}
