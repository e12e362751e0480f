// The least a Node proxy can do, the benchmark's floor: read the body, forward it, read the
// answer, send it back. `node tests/bench/bare-proxy.mjs PORT UPSTREAM_PORT`. Plain JavaScript,
// so its memory is Node's own and not that of Node's TypeScript support.
import http from "node:http";

const [port, upstreamPort] = [Number(process.argv[2]), Number(process.argv[3])];
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
http
  .createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const payload = Buffer.concat(chunks);
      const upstream = http.request(
        {
          host: "127.0.0.1",
          port: upstreamPort,
          path: req.url,
          method: req.method,
          agent,
          headers: { "content-type": "application/json", "content-length": payload.length },
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, { "content-type": String(answer.headers["content-type"]) });
          answer.pipe(res);
        },
      );
      upstream.on("error", () => res.writeHead(502).end());
      upstream.end(payload);
    });
  })
  .listen(port, "127.0.0.1");
