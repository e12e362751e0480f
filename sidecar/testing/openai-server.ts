// A local server that speaks OpenAI's API as OpenAI does under /v1: chat completions (SSE
// chunks, tool call deltas by index, the usage chunk of stream_options, [DONE]), embeddings
// and models, with OpenAI's error objects (`{"error": {"message", "type", "param", "code"}}`)
// for a bad key, an unknown model, an unknown argument and broken tool turns; scripted faults
// for tests. What it honours: response_format, tool_choice, stop, max_tokens and
// max_completion_tokens, logprobs, n, images as data URLs.

import { createHash } from "node:crypto";
import type http from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  chunkFault,
  echoed,
  json,
  madeUpAnswer,
  promptTokens,
  type RecordedRequest,
  ScriptedServer,
  sampleOf,
} from "./scripted-server.ts";

/** The request arguments of POST /v1/chat/completions; anything else is refused, as OpenAI does. */
const CHAT_ARGUMENTS = new Set([
  "model",
  "messages",
  "stream",
  "stream_options",
  "temperature",
  "top_p",
  "max_tokens",
  "max_completion_tokens",
  "stop",
  "seed",
  "frequency_penalty",
  "presence_penalty",
  "response_format",
  "tools",
  "tool_choice",
  "parallel_tool_calls",
  "n",
  "logprobs",
  "top_logprobs",
  "logit_bias",
  "user",
  "safety_identifier",
  "prompt_cache_key",
  "metadata",
  "store",
  "service_tier",
  "reasoning_effort",
  "verbosity",
  "modalities",
  "audio",
  "prediction",
  "web_search_options",
]);

const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "invalid_request_error",
  403: "permission_denied",
  404: "invalid_request_error",
  429: "rate_limit_exceeded",
  500: "server_error",
  503: "server_error",
};

type Message = {
  role?: string;
  content?: unknown;
  tool_calls?: { id?: string; function?: { name?: string } }[];
  tool_call_id?: string;
};

export class OpenAiServer extends ScriptedServer {
  readonly #apiKey: string | undefined;
  readonly #models: string[];

  constructor(options: { apiKey?: string; models?: string[] } = {}) {
    super();
    this.#apiKey = options.apiKey;
    this.#models = options.models ?? ["gpt-4o-mini", "text-embedding-3-small"];
  }

  /** The base URL an OpenAI client (and an openai provider's endpoint) takes. */
  get baseUrl(): string {
    return `${this.url}/v1`;
  }

  protected error(
    res: ServerResponse,
    status: number,
    type: string,
    message: string,
    code: string | null = null,
  ) {
    json(res, status, { error: { message, type, param: null, code } });
  }

  protected async route(req: IncomingMessage, res: ServerResponse, request: RecordedRequest): Promise<void> {
    const auth = req.headers.authorization;
    if (this.#apiKey !== undefined && auth !== `Bearer ${this.#apiKey}`) {
      const shown = auth === undefined ? "none" : `${auth.slice(7, 10)}****${auth.slice(-4)}`;
      return this.error(
        res,
        401,
        "invalid_request_error",
        auth === undefined
          ? "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
          : `Incorrect API key provided: ${shown}. You can find your API key at https://platform.openai.com/account/api-keys.`,
        "invalid_api_key",
      );
    }
    const route = `${request.method} ${request.path}`;
    if (route === "GET /v1/models")
      return json(res, 200, {
        object: "list",
        data: this.#models.map((id) => ({ id, object: "model", created: 1_700_000_000, owned_by: "system" })),
      });
    if (route === "POST /v1/chat/completions") return this.#chat(res, request.body, req.headers);
    if (route === "POST /v1/embeddings") return this.#embeddings(res, request.body, req.headers);
    if (route === "POST /v1/responses") return this.#responses(res, request.body, req.headers);
    return this.error(res, 404, "invalid_request_error", `Invalid URL (${request.method} ${request.path})`);
  }

  #model(res: ServerResponse, body: Record<string, unknown>): string | undefined {
    const model = body.model;
    if (typeof model !== "string" || model === "") {
      this.error(res, 400, "invalid_request_error", "you must provide a model parameter");
      return undefined;
    }
    if (!this.#models.includes(model)) {
      this.error(
        res,
        404,
        "invalid_request_error",
        `The model \`${model}\` does not exist or you do not have access to it.`,
        "model_not_found",
      );
      return undefined;
    }
    return model;
  }

  /** What OpenAI answers 400 for; undefined when the request is valid. */
  #invalid(body: Record<string, unknown>): string | undefined {
    const unknown = Object.keys(body).find((k) => !CHAT_ARGUMENTS.has(k));
    if (unknown !== undefined) return `Unrecognized request argument supplied: ${unknown}`;
    if (!Array.isArray(body.messages) || body.messages.length === 0)
      return "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.";
    const messages = body.messages as Message[];
    const open = new Set<string>();
    for (const [i, m] of messages.entries()) {
      if (!["system", "developer", "user", "assistant", "tool"].includes(String(m.role)))
        return `Invalid value: '${String(m.role)}'. Supported values are: 'system', 'assistant', 'user', 'tool', and 'developer'.`;
      if (m.role === "tool") {
        if (m.tool_call_id === undefined || !open.has(m.tool_call_id))
          return "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.";
        open.delete(m.tool_call_id);
        continue;
      }
      if (open.size > 0)
        return `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...open].join(", ")}`;
      for (const call of m.tool_calls ?? []) open.add(call.id ?? "");
      if (Array.isArray(m.content)) {
        for (const part of m.content as { type?: string; image_url?: { url?: string } }[]) {
          if (part.type !== "image_url") continue;
          if (m.role !== "user")
            return `Invalid 'messages[${i}]': image_url parts are only allowed in user messages.`;
          const url = part.image_url?.url ?? "";
          if (
            !/^data:image\/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/]+=*$/.test(url) &&
            !url.startsWith("https://")
          )
            return "Invalid image URL: the URL must be a valid HTTP or HTTPS URL or a base64 data URL of a png, jpeg, gif or webp image.";
        }
      }
    }
    const n = body.n;
    if (n !== undefined && (typeof n !== "number" || n < 1 || n > 128))
      return "Invalid 'n': must be between 1 and 128.";
    if (body.tool_choice !== undefined && !Array.isArray(body.tools))
      return "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.";
    return undefined;
  }

  async #chat(
    res: ServerResponse,
    body: Record<string, unknown>,
    headers: http.IncomingHttpHeaders,
  ): Promise<void> {
    const model = this.#model(res, body);
    if (model === undefined) return;
    const invalid = this.#invalid(body);
    if (invalid !== undefined) return this.error(res, 400, "invalid_request_error", invalid);
    const scenario = this.nextScenario();
    if (await this.fault(res, scenario, headers, echo, typeOf)) return;
    const messages = body.messages as Message[];
    const lastUser = messages.filter((m) => m.role === "user").at(-1);
    const parts = Array.isArray(lastUser?.content)
      ? (lastUser.content as { type?: string; text?: string }[])
      : [{ type: "text", text: String(lastUser?.content ?? "") }];
    const prompt = parts
      .filter((p) => p.type === "text")
      .map((p) => p.text)
      .join(" ");
    const images = parts.filter((p) => p.type === "image_url").length;
    let text = scenario.text ?? `You said: ${prompt}${images === 0 ? "" : ` (and ${images} image(s))`}`;
    const format = body.response_format as { type?: string; json_schema?: { schema?: unknown } } | undefined;
    if (format?.type === "json_object") text = JSON.stringify({ answer: text });
    else if (format?.type === "json_schema") text = JSON.stringify(sampleOf(format.json_schema?.schema));
    const stop = typeof body.stop === "string" ? [body.stop] : ((body.stop ?? []) as string[]);
    const limit = (body.max_completion_tokens ?? body.max_tokens) as number | undefined;
    const answer = madeUpAnswer(text, stop, limit);
    const toolCalls = this.#toolCalls(body, scenario);
    const finish =
      toolCalls.length > 0 ? "tool_calls" : answer.cut ? "length" : (scenario.doneReason ?? "stop");
    const usage = {
      prompt_tokens: promptTokens(messages),
      completion_tokens: answer.chunks.length,
      total_tokens: promptTokens(messages) + answer.chunks.length,
    };
    const id = `chatcmpl-${createHash("sha256").update(JSON.stringify(body)).digest("hex").slice(0, 24)}`;
    const created = Math.floor(Date.now() / 1000);
    const logprobs = (chunk: string, i: number) =>
      body.logprobs === true
        ? {
            content: [
              {
                token: chunk,
                logprob: -0.1 * (i + 1),
                bytes: [...Buffer.from(chunk)],
                top_logprobs: Array.from({ length: Number(body.top_logprobs ?? 0) }, (_, k) => ({
                  token: k === 0 ? chunk : `${chunk}${k}`,
                  logprob: -0.1 * (i + 1) - k,
                  bytes: null,
                })),
              },
            ],
            refusal: null,
          }
        : null;
    const n = Number(body.n ?? 1);
    if (body.stream !== true) {
      const content = answer.chunks.join("");
      return json(res, 200, {
        id,
        object: "chat.completion",
        created,
        model,
        choices: Array.from({ length: n }, (_, index) => ({
          index,
          message: {
            role: "assistant",
            content: toolCalls.length > 0 && content === "" ? null : content,
            refusal: null,
            ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
            annotations: [],
          },
          logprobs:
            body.logprobs === true
              ? { content: answer.chunks.flatMap((c, i) => logprobs(c, i)?.content ?? []), refusal: null }
              : null,
          finish_reason: finish,
        })),
        usage,
        service_tier: "default",
        system_fingerprint: "fp_faithful",
      });
    }
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
    const base = {
      id,
      object: "chat.completion.chunk",
      created,
      model,
      service_tier: "default",
      system_fingerprint: "fp_faithful",
    };
    const send = (choices: object[], extra: object = {}) =>
      res.write(`data: ${JSON.stringify({ ...base, choices, ...extra })}\n\n`);
    const includeUsage =
      (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
    send(
      [
        {
          index: 0,
          delta: { role: "assistant", content: "", refusal: null },
          logprobs: null,
          finish_reason: null,
        },
      ],
      includeUsage ? { usage: null } : {},
    );
    for (const [i, chunk] of answer.chunks.entries()) {
      const next = await chunkFault(res, scenario, i, () => {
        const error = "The server had an error while processing your request. Sorry about that!";
        const echoedText = scenario.echoAuthorization === true ? ` (you sent ${echo(headers)})` : "";
        res.end(
          `data: ${JSON.stringify({ error: { message: `${error}${echoedText}`, type: "server_error", param: null, code: null } })}\n\n`,
        );
      });
      if (next === "gone") this.abandoned++;
      if (next !== "write") return;
      send(
        [{ index: 0, delta: { content: chunk }, logprobs: logprobs(chunk, i), finish_reason: null }],
        includeUsage ? { usage: null } : {},
      );
    }
    for (const [index, call] of toolCalls.entries()) {
      // As OpenAI streams them: the id and name first, then the arguments in two pieces.
      const args = call.function.arguments;
      const half = Math.floor(args.length / 2);
      send([
        {
          index: 0,
          delta: {
            tool_calls: [
              { index, id: call.id, type: "function", function: { name: call.function.name, arguments: "" } },
            ],
          },
          logprobs: null,
          finish_reason: null,
        },
      ]);
      send([
        {
          index: 0,
          delta: { tool_calls: [{ index, function: { arguments: args.slice(0, half) } }] },
          logprobs: null,
          finish_reason: null,
        },
      ]);
      send([
        {
          index: 0,
          delta: { tool_calls: [{ index, function: { arguments: args.slice(half) } }] },
          logprobs: null,
          finish_reason: null,
        },
      ]);
    }
    send(
      [{ index: 0, delta: {}, logprobs: null, finish_reason: finish }],
      includeUsage ? { usage: null } : {},
    );
    if (includeUsage) send([], { usage });
    res.end("data: [DONE]\n\n");
  }

  /** The calls the model makes: the scenario's, or one forced by tool_choice, with arguments that fit the schema. */
  #toolCalls(
    body: Record<string, unknown>,
    scenario: { toolCalls?: { name: string; arguments: Record<string, unknown> }[] },
  ) {
    const tools = (body.tools ?? []) as { function?: { name?: string; parameters?: unknown } }[];
    const choice = body.tool_choice as string | { function?: { name?: string } } | undefined;
    let calls = scenario.toolCalls ?? [];
    if (choice === "none") calls = [];
    else if (
      calls.length === 0 &&
      tools.length > 0 &&
      (choice === "required" || typeof choice === "object")
    ) {
      const name = typeof choice === "object" ? choice.function?.name : tools[0]?.function?.name;
      const tool = tools.find((t) => t.function?.name === name);
      calls = [
        { name: name ?? "", arguments: sampleOf(tool?.function?.parameters) as Record<string, unknown> },
      ];
    }
    return calls.map((c, i) => ({
      id: `call_${createHash("sha256").update(`${c.name}${i}`).digest("hex").slice(0, 24)}`,
      type: "function" as const,
      function: { name: c.name, arguments: JSON.stringify(c.arguments) },
    }));
  }

  /**
   * POST /v1/responses as OpenAI answers it: a response object, or when streaming its typed
   * events (response.created, in_progress, output_item.added, content_part.added,
   * output_text.delta per word, the .done events, response.completed), each numbered.
   */
  async #responses(res: ServerResponse, body: Record<string, unknown>, headers: http.IncomingHttpHeaders) {
    const model = this.#model(res, body);
    if (model === undefined) return;
    const unknown = Object.keys(body).find((k) => !RESPONSES_PARAMETERS.has(k));
    if (unknown !== undefined)
      return this.error(res, 400, "invalid_request_error", `Unknown parameter: '${unknown}'.`);
    if (typeof body.input !== "string" && !Array.isArray(body.input))
      return this.error(res, 400, "invalid_request_error", "Missing required parameter: 'input'.");
    if (typeof body.previous_response_id === "string")
      return this.error(
        res,
        400,
        "invalid_request_error",
        `Previous response with id '${body.previous_response_id}' not found.`,
      );
    const scenario = this.nextScenario();
    if (await this.fault(res, scenario, headers, echo, typeOf)) return;
    const text = scenario.text ?? `You said: ${lastUserText(body.input)}`;
    const answer = madeUpAnswer(text, [], body.max_output_tokens as number | undefined);
    const id = `resp_${createHash("sha256").update(JSON.stringify(body)).digest("hex").slice(0, 24)}`;
    const itemId = `msg_${id.slice(5)}`;
    const createdAt = Math.floor(Date.now() / 1000);
    const outputText = answer.chunks.join("");
    const usage = {
      input_tokens: promptTokens([body.instructions, body.input]),
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: answer.chunks.length,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: promptTokens([body.instructions, body.input]) + answer.chunks.length,
    };
    const part = (t: string) => ({ type: "output_text", text: t, annotations: [], logprobs: [] });
    const item = (status: string, t: string) => ({
      id: itemId,
      type: "message",
      status,
      role: "assistant",
      content: t === "" && status === "in_progress" ? [] : [part(t)],
    });
    const response = (status: string, output: object[], withUsage: boolean) => ({
      id,
      object: "response",
      created_at: createdAt,
      status,
      error: null,
      incomplete_details: answer.cut ? { reason: "max_output_tokens" } : null,
      instructions: body.instructions ?? null,
      max_output_tokens: body.max_output_tokens ?? null,
      model,
      output,
      parallel_tool_calls: true,
      previous_response_id: null,
      store: body.store !== false,
      temperature: body.temperature ?? 1,
      text: { format: { type: "text" } },
      tool_choice: body.tool_choice ?? "auto",
      tools: body.tools ?? [],
      top_p: body.top_p ?? 1,
      usage: withUsage ? usage : null,
      metadata: body.metadata ?? {},
    });
    const finalStatus = answer.cut ? "incomplete" : "completed";
    if (body.stream !== true)
      return json(res, 200, response(finalStatus, [item("completed", outputText)], true));
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
    let sequence = 0;
    const send = (type: string, data: object) =>
      res.write(
        `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...data })}\n\n`,
      );
    send("response.created", { response: response("in_progress", [], false) });
    send("response.in_progress", { response: response("in_progress", [], false) });
    send("response.output_item.added", { output_index: 0, item: item("in_progress", "") });
    send("response.content_part.added", {
      item_id: itemId,
      output_index: 0,
      content_index: 0,
      part: part(""),
    });
    for (const [i, chunk] of answer.chunks.entries()) {
      const next = await chunkFault(res, scenario, i, () => {
        const echoedText = scenario.echoAuthorization === true ? ` (you sent ${echo(headers)})` : "";
        res.end(
          `event: error\ndata: ${JSON.stringify({ type: "error", sequence_number: sequence++, code: "server_error", message: `The server had an error${echoedText}`, param: null })}\n\n`,
        );
      });
      if (next === "gone") this.abandoned++;
      if (next !== "write") return;
      send("response.output_text.delta", {
        item_id: itemId,
        output_index: 0,
        content_index: 0,
        delta: chunk,
        logprobs: [],
      });
    }
    send("response.output_text.done", {
      item_id: itemId,
      output_index: 0,
      content_index: 0,
      text: outputText,
      logprobs: [],
    });
    send("response.content_part.done", {
      item_id: itemId,
      output_index: 0,
      content_index: 0,
      part: part(outputText),
    });
    send("response.output_item.done", { output_index: 0, item: item("completed", outputText) });
    send(`response.${finalStatus}`, {
      response: response(finalStatus, [item("completed", outputText)], true),
    });
    res.end();
  }

  async #embeddings(
    res: ServerResponse,
    body: Record<string, unknown>,
    headers: http.IncomingHttpHeaders,
  ): Promise<void> {
    const model = this.#model(res, body);
    if (model === undefined) return;
    const unknown = Object.keys(body).find(
      (k) => !["model", "input", "dimensions", "encoding_format", "user"].includes(k),
    );
    if (unknown !== undefined)
      return this.error(
        res,
        400,
        "invalid_request_error",
        `Unrecognized request argument supplied: ${unknown}`,
      );
    const scenario = this.nextScenario();
    if (await this.fault(res, scenario, headers, echo, typeOf)) return;
    const inputs = Array.isArray(body.input) ? body.input.map(String) : [String(body.input ?? "")];
    const dimensions = typeof body.dimensions === "number" ? body.dimensions : 8;
    const vector = (input: string) => {
      const digest = createHash("sha256").update(input).digest();
      const v = Array.from({ length: dimensions }, (_, i) => (digest[i % digest.length] ?? 0) - 128);
      const norm = Math.hypot(...v) || 1;
      return v.map((x) => x / norm);
    };
    const tokens = inputs.reduce((n, s) => n + Math.max(1, Math.ceil(s.length / 4)), 0);
    json(res, 200, {
      object: "list",
      data: inputs.map((input, index) => {
        const embedding = vector(input);
        return {
          object: "embedding",
          index,
          embedding:
            body.encoding_format === "base64"
              ? Buffer.from(new Float32Array(embedding).buffer).toString("base64")
              : embedding,
        };
      }),
      model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  }
}

/** The request parameters of POST /v1/responses; anything else is refused, as OpenAI does. */
const RESPONSES_PARAMETERS = new Set([
  "model",
  "input",
  "instructions",
  "stream",
  "store",
  "previous_response_id",
  "tools",
  "tool_choice",
  "parallel_tool_calls",
  "temperature",
  "top_p",
  "max_output_tokens",
  "text",
  "reasoning",
  "metadata",
  "service_tier",
  "include",
  "truncation",
  "user",
  "background",
  "stream_options",
  "prompt_cache_key",
  "safety_identifier",
]);

type ResponsesItem = { type?: string; role?: string; content?: unknown };

/** The text of the last user message of a Responses input. */
function lastUserText(input: unknown): string {
  if (typeof input === "string") return input;
  const users = ((input ?? []) as ResponsesItem[]).filter(
    (i) => (i.type === undefined || i.type === "message") && i.role === "user",
  );
  const content = users.at(-1)?.content;
  if (typeof content === "string") return content;
  return ((content ?? []) as { type?: string; text?: string }[])
    .filter((p) => p.type === "input_text")
    .map((p) => p.text)
    .join(" ");
}

function echo(headers: http.IncomingHttpHeaders): string {
  return echoed("Authorization", headers.authorization);
}

function typeOf(status: number): string {
  return ERROR_TYPES[status] ?? (status >= 500 ? "server_error" : "invalid_request_error");
}
