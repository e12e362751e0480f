// An HTTP tool as an AgentTool of protocol http reaches it: POST /evaluate with
// {"expression": "(2 + 3) * 7"} answers {"expression", "result"}; each call is logged, so the
// e2e suite can see in `kubectl logs` that the agent's call arrived. Arithmetic only (numbers,
// + - * /, parentheses), parsed here: nothing is evaluated as code.
import http from "node:http";
import { parseArgs } from "node:util";

class Parser {
  #pos = 0;
  readonly #text: string;
  constructor(text: string) {
    this.#text = text.replace(/\s+/g, "");
  }

  parse(): number {
    const value = this.#sum();
    if (this.#pos !== this.#text.length)
      throw new Error(`unexpected "${this.#text[this.#pos]}" at ${this.#pos}`);
    return value;
  }

  #sum(): number {
    let value = this.#product();
    while (this.#text[this.#pos] === "+" || this.#text[this.#pos] === "-") {
      const op = this.#text[this.#pos++];
      const right = this.#product();
      value = op === "+" ? value + right : value - right;
    }
    return value;
  }

  #product(): number {
    let value = this.#factor();
    while (this.#text[this.#pos] === "*" || this.#text[this.#pos] === "/") {
      const op = this.#text[this.#pos++];
      const right = this.#factor();
      value = op === "*" ? value * right : value / right;
    }
    return value;
  }

  #factor(): number {
    if (this.#text[this.#pos] === "-") {
      this.#pos++;
      return -this.#factor();
    }
    if (this.#text[this.#pos] === "(") {
      this.#pos++;
      const value = this.#sum();
      if (this.#text[this.#pos++] !== ")") throw new Error("missing )");
      return value;
    }
    const match = /^\d+(\.\d+)?/.exec(this.#text.slice(this.#pos));
    if (match === null) throw new Error(`a number expected at ${this.#pos}`);
    this.#pos += match[0].length;
    return Number(match[0]);
  }
}

const { values } = parseArgs({ options: { port: { type: "string", default: "8000" } } });
const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const reply = (status: number, body: unknown) =>
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (req.url !== "/evaluate") return reply(404, { error: "POST /evaluate" });
    // Another method on the endpoint is 405, as HTTP has it: the operator's probe (a GET) then
    // sees a live tool, where a 404 would mark the AgentTool unavailable.
    if (req.method !== "POST") {
      res.setHeader("allow", "POST");
      return reply(405, { error: "POST /evaluate" });
    }
    try {
      const { expression } = JSON.parse(Buffer.concat(chunks).toString()) as { expression?: unknown };
      if (typeof expression !== "string") return reply(400, { error: "expression: a string is required" });
      const result = new Parser(expression).parse();
      console.log(`tool-server: evaluate ${JSON.stringify(expression)} = ${result}`);
      return reply(200, { expression, result: String(result) });
    } catch (error) {
      return reply(400, { error: (error as Error).message });
    }
  });
});
server.listen(Number(values.port), "0.0.0.0", () => console.log(`tool-server listening on ${values.port}`));
process.once("SIGTERM", () => server.close(() => process.exit(0)));
