// What the faithful OpenAI and Anthropic servers share: a node:http server that records the
// requests it gets, plays scripted faults, and makes up answers the way a model would (echo
// the prompt, honour stop sequences and token limits, fill a JSON schema).
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Scenario } from "./ollama-server.ts";

export { chunkFault, echoed, type Scenario, sampleOf } from "./ollama-server.ts";

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
  /** The body as it came, to check a pass-through changed nothing else. */
  raw: string;
}

export abstract class ScriptedServer {
  readonly requests: RecordedRequest[] = [];
  /** Streams whose client went away before the answer was complete. */
  abandoned = 0;
  readonly #server: http.Server;
  readonly #scenarios: Scenario[] = [];
  readonly #hanging = new Set<ServerResponse>();

  constructor() {
    this.#server = http.createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) this.error(res, 500, "api_error", String(error));
        else res.destroy();
      });
    });
    this.#server.keepAliveTimeout = 60_000;
  }

  /** Answers one request whose body parsed; the base recorded it already. */
  protected abstract route(
    req: IncomingMessage,
    res: ServerResponse,
    request: RecordedRequest,
  ): Promise<void>;

  /** Answers an error in the protocol's own shape. */
  protected abstract error(res: ServerResponse, status: number, type: string, message: string): void;

  /** Scenarios for the next generation requests, in order. */
  enqueue(...scenarios: Scenario[]): void {
    this.#scenarios.push(...scenarios);
  }

  protected nextScenario(): Scenario {
    return this.#scenarios.shift() ?? {};
  }

  listen(port = 0, host = "127.0.0.1"): Promise<string> {
    return new Promise((resolve) => this.#server.listen(port, host, () => resolve(this.url)));
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    for (const res of this.#hanging) res.destroy();
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  /** Plays the scenario's delay, hang or error status; true when the response is taken care of. */
  protected async fault(
    res: ServerResponse,
    scenario: Scenario,
    headers: http.IncomingHttpHeaders,
    echo: (headers: http.IncomingHttpHeaders) => string,
    typeOf: (status: number) => string,
  ): Promise<boolean> {
    if (scenario.delayMs !== undefined) await sleep(scenario.delayMs);
    if (scenario.hang === true) {
      this.#hanging.add(res);
      res.on("close", () => this.#hanging.delete(res));
      return true;
    }
    if (scenario.status === undefined) return false;
    const message = scenario.error ?? http.STATUS_CODES[scenario.status] ?? "error";
    const echoed = scenario.echoAuthorization === true ? ` (you sent ${echo(headers)})` : "";
    this.error(res, scenario.status, typeOf(scenario.status), `${message}${echoed}`);
    return true;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const raw = await readBody(req);
    let body: Record<string, unknown> = {};
    if (raw !== "") {
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch (error) {
        return this.error(
          res,
          400,
          "invalid_request_error",
          `the body is not JSON: ${(error as Error).message}`,
        );
      }
    }
    const request = { method: req.method ?? "", path, headers: req.headers, body, raw };
    this.requests.push(request);
    if (this.requests.length > 200) this.requests.shift();
    return this.route(req, res, request);
  }
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res
    .writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) })
    .end(text);
}

/** The answer a model makes up: the prompt echoed, cut at the first stop sequence and at `limit` words. */
export function madeUpAnswer(
  text: string,
  stop: readonly string[],
  limit: number | undefined,
): { chunks: string[]; stoppedBy?: string; cut: boolean } {
  let answer = text;
  let stoppedBy: string | undefined;
  for (const s of stop) {
    const at = answer.indexOf(s);
    if (at >= 0) {
      answer = answer.slice(0, at);
      stoppedBy = s;
    }
  }
  let chunks = answer.split(/(?<= )/).filter((c) => c !== "");
  const cut = limit !== undefined && chunks.length > limit;
  if (cut) chunks = chunks.slice(0, limit);
  return { chunks, cut, ...(stoppedBy === undefined ? {} : { stoppedBy }) };
}

/** Tokens of a prompt as the faithful servers count them: four characters each. */
export function promptTokens(value: unknown): number {
  return Math.max(1, Math.ceil(JSON.stringify(value ?? "").length / 4));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
