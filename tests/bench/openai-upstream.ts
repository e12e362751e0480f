// bench-peers' upstream: the faithful OpenAI server (sidecar/testing/openai-server.ts) on its own,
// serving the model llama3.2 without a key. `node tests/bench/openai-upstream.ts PORT`.
import { OpenAiServer } from "../../sidecar/testing/openai-server.ts";

const server = new OpenAiServer({ models: ["llama3.2"] });
const url = await server.listen(Number(process.argv[2]));
console.log(`openai upstream listening on ${url}`);
