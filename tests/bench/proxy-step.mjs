// A proxy for `make bench-proxy-parts`: the bare proxy's work plus some of what the sidecar does
// for each pass-through request, switched on step by step, so that the CPU each part costs can be
// measured apart. `node tests/bench/proxy-step.mjs PORT UPSTREAM_PORT STEPS`, STEPS a
// "+"-separated list of:
//   parse     JSON.parse the agent's body, set the model, JSON.stringify it; parse the answer
//   deadline  per request an AbortController, a 60 s timer and an abort listener that would end
//             the upstream request, all let go when the answer is in (as the sidecar does)
//   metrics   prom-client's default metrics collected in the process
//   deps      the sidecar's large dependencies loaded into the process (fastify, zod, pino, the
//             Bedrock and MCP clients), unused
//   fastify   served through fastify (logger off, the body read as a string) instead of node:http
// Plain JavaScript, as bare-proxy.mjs, so that its memory is Node's own.
import http from "node:http";
import { createRequire } from "node:module";

const [port, upstreamPort] = [Number(process.argv[2]), Number(process.argv[3])];
const steps = new Set((process.argv[4] ?? "").split("+").filter((s) => s !== ""));
const known = ["parse", "deadline", "metrics", "deps", "fastify"];
for (const step of steps) if (!known.includes(step)) throw new Error(`unknown step ${step}; known: ${known}`);
const require = createRequire(new URL("../../package.json", import.meta.url));
if (steps.has("metrics")) require("prom-client").collectDefaultMetrics();
if (steps.has("deps")) {
  for (const name of [
    "fastify",
    "zod",
    "pino",
    "@aws-sdk/client-bedrock-runtime",
    "@modelcontextprotocol/sdk/client/index.js",
  ])
    require(name);
}
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

/**
 * Sends the agent's request upstream; `respond` gets the upstream's status and answer. Only a
 * POST's body is parsed (a GET of /v1/models tells the benchmark the proxy is up).
 */
function forward(method, path, body, respond) {
  const parse = steps.has("parse") && method === "POST";
  const payload = parse ? JSON.stringify({ ...JSON.parse(body), model: "llama3.2" }) : body;
  let letGo;
  const upstream = http.request(
    {
      host: "127.0.0.1",
      port: upstreamPort,
      path,
      method,
      agent,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
    },
    (answer) => {
      const chunks = [];
      answer.setEncoding("utf8");
      answer.on("data", (c) => chunks.push(c));
      answer.on("end", () => {
        letGo?.();
        const text = chunks.join("");
        if (parse) JSON.parse(text);
        respond(answer.statusCode ?? 502, text);
      });
    },
  );
  if (steps.has("deadline")) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error("no answer within 60 s")), 60_000);
    const onAbort = () => upstream.destroy(controller.signal.reason);
    controller.signal.addEventListener("abort", onAbort, { once: true });
    letGo = () => {
      clearTimeout(timer);
      controller.signal.removeEventListener("abort", onAbort);
    };
  }
  upstream.on("error", () => respond(502, ""));
  upstream.end(payload);
}

if (steps.has("fastify")) {
  const app = require("fastify")({ logger: false });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (_request, body, done) => done(null, body));
  const route = (request, reply) =>
    forward(request.method, request.url, request.body ?? "", (status, text) =>
      reply.code(status).type("application/json").send(text),
    );
  app.post("/v1/chat/completions", route);
  app.get("/v1/models", route);
  await app.listen({ host: "127.0.0.1", port });
} else {
  http
    .createServer((req, res) => {
      const chunks = [];
      req.setEncoding("utf8");
      req.on("data", (c) => chunks.push(c));
      req.on("end", () =>
        forward(req.method, req.url, chunks.join(""), (status, text) => {
          res.writeHead(status, { "content-type": "application/json" });
          res.end(text);
        }),
      );
    })
    .listen(port, "127.0.0.1");
}
