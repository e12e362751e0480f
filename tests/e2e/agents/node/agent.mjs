// A sample agent that knows nothing about AgentType: it talks to "OpenAI" with the stock
// `openai` client (OPENAI_BASE_URL and OPENAI_API_KEY from the environment), lists and calls
// its tools and writes its memory over plain HTTP at the URLs it is given, logs what it did,
// then stays up as a long-running agent does.
import { hostname } from "node:os";
import OpenAI from "openai";

const toolsUrl = process.env.AGENTTYPE_TOOLS_URL;
const memoryUrl = process.env.AGENTTYPE_MEMORY_URL;

async function json(url, init) {
  const response = await fetch(url, init);
  const body = await response.json();
  if (!response.ok)
    throw new Error(`${init?.method ?? "GET"} ${url}: ${response.status} ${JSON.stringify(body)}`);
  return body;
}

async function main() {
  const openai = new OpenAI();
  const completion = await openai.chat.completions.create({
    model: process.env.MODEL ?? "llama3.2",
    messages: [{ role: "user", content: "What is 6 * 7? (asked by the node agent)" }],
  });
  console.log(`llm: ${completion.choices[0].message.content} [model ${completion.model}]`);

  const { tools } = await json(toolsUrl);
  console.log(`tools: ${tools.map((t) => `${t.name}@${t.version}`).join(", ")}`);
  const answer = await json(`${toolsUrl}/calculator/invoke`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ expression: "6 * 7" }),
  });
  console.log(`tool calculator: 6 * 7 = ${answer.result}`);

  const key = `runs/${hostname()}`;
  await json(`${memoryUrl}/${key}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ question: "6 * 7", answer: answer.result, version: process.env.AGENT_VERSION }),
  });
  const stored = await json(`${memoryUrl}/${key}`);
  console.log(`memory: ${key} = ${JSON.stringify(stored.value)}`);
  console.log(`agent done (version ${process.env.AGENT_VERSION ?? "unset"})`);
}

main().catch((error) => {
  console.error(`agent failed: ${error.message}`);
  process.exitCode = 1;
});
// A long-running agent: stay up until the pod is stopped.
const keepAlive = setInterval(() => {}, 1 << 30);
process.once("SIGTERM", () => clearInterval(keepAlive));
