// No credential reaches the agent in any byte: every upstream here echoes the Authorization
// header it got (raw, base64 and URL-encoded) in its errors or answers, and every API the agent
// can call through the sidecar is checked, headers and body, for any form of any credential.
import { mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AnthropicServer } from "./testing/anthropic-server.ts";
import { BedrockServer } from "./testing/bedrock-server.ts";
import { startEchoingServer, type TestMcpServer } from "./testing/mcp-server.ts";
import { echoed, OllamaServer } from "./testing/ollama-server.ts";
import { OpenAiServer } from "./testing/openai-server.ts";
import { apiKeyDir, baseConfig, llmConfig, startTestSidecar, type TestSidecar } from "./testing/sidecar.ts";

const OLLAMA_TOKEN = "ollama-Token-9f8e7d6c5b";
const AWS_KEY_ID = "AKIDECHOTEST12345678";
const AWS_SECRET = "wJalr/K7MDENG+bPxRfiCYEXAMPLEKEY/xyz";
const AWS_SESSION = "FwoGZXIvYXdzEXAMPLE/SESSION+TOKEN==";
const HTTP_TOOL_SECRET = "http-tool-Secret-42/+";
const MCP_TOOL_SECRET = "mcp-tool-Secret-77";
const OPENAI_KEY = "sk-proj-Echo/Test+Key-0123456789";
const ANTHROPIC_KEY = "sk-ant-api03-Echo_Test-Key-abcdef";
const SECRETS = [
  OLLAMA_TOKEN,
  AWS_KEY_ID,
  AWS_SECRET,
  AWS_SESSION,
  HTTP_TOOL_SECRET,
  MCP_TOOL_SECRET,
  OPENAI_KEY,
  ANTHROPIC_KEY,
];

/** The credentials found in a text: raw, URL-encoded, or base64 (either alphabet) at any offset. */
function leaked(text: string): string[] {
  const views = [text];
  try {
    views.push(decodeURIComponent(text));
  } catch {
    // Not URL-encoded throughout; the raw text is checked anyway.
  }
  for (const run of text.match(/[A-Za-z0-9+/_-]{8,}={0,2}/g) ?? []) {
    for (let offset = 0; offset < 4; offset++) {
      views.push(Buffer.from(run.slice(offset), "base64").toString("latin1"));
      views.push(Buffer.from(run.slice(offset), "base64url").toString("latin1"));
    }
  }
  return SECRETS.filter((secret) => views.some((view) => view.includes(secret)));
}

async function seen(response: Response): Promise<string> {
  return `${JSON.stringify([...response.headers])}\n${await response.text()}`;
}

let ollama: OllamaServer;
let bedrock: BedrockServer;
let mcp: TestMcpServer;
let httpTool: http.Server;
let viaOllama: TestSidecar;
let viaBedrock: TestSidecar;
let openai: OpenAiServer;
let anthropic: AnthropicServer;
let viaOpenAi: TestSidecar;
let viaAnthropic: TestSidecar;

beforeAll(async () => {
  ollama = new OllamaServer({ token: OLLAMA_TOKEN });
  bedrock = new BedrockServer();
  openai = new OpenAiServer({ apiKey: OPENAI_KEY, models: ["gpt-4o-mini"] });
  anthropic = new AnthropicServer({ apiKey: ANTHROPIC_KEY });
  httpTool = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res
        .writeHead(401, { "content-type": "application/json", "x-echo": String(req.headers["x-api-key"]) })
        .end(JSON.stringify({ error: `denied: ${echoed("X-Api-Key", String(req.headers["x-api-key"]))}` }));
    });
  });
  [mcp] = await Promise.all([
    startEchoingServer(),
    ollama.listen(),
    bedrock.listen(),
    openai.listen(),
    anthropic.listen(),
    new Promise<void>((resolve) => httpTool.listen(0, "127.0.0.1", resolve)),
  ]);
  const dir = mkdtempSync(join(tmpdir(), "echo-creds-"));
  const write = (name: string, value: string) => {
    writeFileSync(join(dir, name), `${value}\n`);
    return join(dir, name);
  };
  const ollamaDir = mkdtempSync(join(dir, "ollama-"));
  writeFileSync(join(ollamaDir, "token"), OLLAMA_TOKEN);
  const awsDir = mkdtempSync(join(dir, "aws-"));
  writeFileSync(join(awsDir, "AWS_ACCESS_KEY_ID"), AWS_KEY_ID);
  writeFileSync(join(awsDir, "AWS_SECRET_ACCESS_KEY"), AWS_SECRET);
  writeFileSync(join(awsDir, "AWS_SESSION_TOKEN"), AWS_SESSION);
  const tools = [
    {
      name: "echo",
      version: "1.0.0",
      description: "an http tool that echoes its credential",
      protocol: "http",
      url: `http://127.0.0.1:${(httpTool.address() as AddressInfo).port}/run`,
      auth: { header: "X-Api-Key", scheme: "", secretFile: write("http-token", HTTP_TOOL_SECRET) },
      timeoutSeconds: 2,
    },
    {
      name: "echoing",
      version: "1.0.0",
      description: "an MCP server that echoes its credential",
      protocol: "mcp",
      url: mcp.url,
      auth: { header: "Authorization", scheme: "Bearer", secretFile: write("mcp-token", MCP_TOOL_SECRET) },
      timeoutSeconds: 2,
    },
  ];
  const once = { retries: { maxAttempts: 1, initialBackoffMs: 1, maxBackoffMs: 1 } };
  [viaOpenAi, viaAnthropic] = await Promise.all([
    startTestSidecar(
      baseConfig({
        llm: llmConfig(
          [
            {
              name: "vllm",
              type: "openai",
              endpoint: `${openai.url}/v1`,
              model: "gpt-4o-mini",
              credentialsDir: apiKeyDir(OPENAI_KEY, dir),
            },
          ],
          { retries: { maxAttempts: 1, initialBackoffMs: 1, maxBackoffMs: 1 } },
        ),
      }),
    ),
    startTestSidecar(
      baseConfig({
        llm: llmConfig(
          [
            {
              name: "claude",
              type: "anthropic",
              endpoint: anthropic.url,
              model: "claude-sonnet-4-5",
              credentialsDir: apiKeyDir(ANTHROPIC_KEY, dir),
            },
          ],
          { retries: { maxAttempts: 1, initialBackoffMs: 1, maxBackoffMs: 1 } },
        ),
      }),
    ),
  ]);
  [viaOllama, viaBedrock] = await Promise.all([
    startTestSidecar(
      baseConfig({
        llm: llmConfig(
          [
            {
              name: "local",
              type: "ollama",
              endpoint: ollama.url,
              model: "llama3.2",
              credentialsDir: ollamaDir,
            },
          ],
          once,
        ),
        tools,
      }),
    ),
    startTestSidecar(
      baseConfig({
        llm: llmConfig(
          [
            {
              name: "claude",
              type: "bedrock",
              region: "us-east-1",
              endpoint: bedrock.url,
              model: "anthropic.claude-3-5-sonnet-20240620-v1:0",
              credentialsDir: awsDir,
            },
          ],
          once,
        ),
      }),
    ),
  ]);
});

afterAll(async () => {
  await Promise.all([viaOllama.close(), viaBedrock.close(), viaOpenAi.close(), viaAnthropic.close()]);
  await Promise.all([ollama.close(), bedrock.close(), mcp.close(), openai.close(), anthropic.close()]);
  httpTool.closeAllConnections();
  await new Promise((resolve) => httpTool.close(resolve));
});

function post(sc: TestSidecar, path: string, body: object): Promise<Response> {
  return fetch(`${sc.sidecar.agentUrl}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

const messages = [{ role: "user", content: "hello" }];

describe("credentials echoed by upstreams", () => {
  it("never reach the agent through the OpenAI and Ollama APIs over an Ollama provider", async () => {
    const texts: string[] = [];
    const cases: [string, object][] = [
      ["/v1/chat/completions", { model: "m", messages }],
      ["/v1/chat/completions", { model: "m", messages, stream: true }],
      ["/v1/embeddings", { model: "m", input: "x" }],
      ["/api/chat", { model: "m", messages, stream: false }],
      ["/api/generate", { model: "m", prompt: "hello" }],
      ["/api/embed", { model: "m", input: "x" }],
    ];
    ollama.enqueue(
      { status: 401, error: "unauthorized", echoAuthorization: true },
      { errorAfterChunks: 2, echoAuthorization: true },
      { status: 403, error: "forbidden", echoAuthorization: true },
      { status: 400, error: "bad request", echoAuthorization: true },
      { errorAfterChunks: 1, echoAuthorization: true },
      { status: 401, error: "unauthorized", echoAuthorization: true },
    );
    for (const [path, body] of cases) texts.push(await seen(await post(viaOllama, path, body)));
    for (const text of texts) {
      expect(text).toContain("you sent Authorization: Bearer [redacted]");
      expect(leaked(text)).toEqual([]);
    }
    expect(leaked(viaOllama.logs.join(""))).toEqual([]);
  });

  it("never reach the agent through either API over a Bedrock provider", async () => {
    bedrock.enqueue(
      { status: 403, exception: "AccessDeniedException", echoAuthorization: true },
      { streamException: { afterDeltas: 1, type: "throttlingException" }, echoAuthorization: true },
      { status: 400, exception: "ValidationException", echoAuthorization: true },
    );
    const texts = [
      await seen(await post(viaBedrock, "/v1/chat/completions", { model: "m", messages })),
      await seen(await post(viaBedrock, "/api/chat", { model: "m", messages })),
      await seen(await post(viaBedrock, "/api/generate", { model: "m", prompt: "hi", stream: false })),
    ];
    for (const text of texts) {
      expect(text).toContain("you sent Authorization: [redacted]");
      expect(leaked(text)).toEqual([]);
    }
    expect(leaked(viaBedrock.logs.join(""))).toEqual([]);
  });

  it.each([
    {
      api: "the Anthropic Messages API",
      path: "/v1/messages",
      body: { model: "m", max_tokens: 50, messages },
    },
    { api: "the Responses API", path: "/v1/responses", body: { model: "m", input: "hello" } },
  ])("never reach the agent through $api over either provider", async ({ path, body }) => {
    ollama.enqueue(
      { status: 401, error: "unauthorized", echoAuthorization: true },
      { errorAfterChunks: 1, echoAuthorization: true },
    );
    bedrock.enqueue(
      { status: 403, exception: "AccessDeniedException", echoAuthorization: true },
      { streamException: { afterDeltas: 1, type: "throttlingException" }, echoAuthorization: true },
    );
    const texts = [
      await seen(await post(viaOllama, path, body)),
      await seen(await post(viaOllama, path, { ...body, stream: true })),
      await seen(await post(viaBedrock, path, body)),
      await seen(await post(viaBedrock, path, { ...body, stream: true })),
    ];
    for (const text of texts) {
      expect(text).toMatch(/you sent Authorization: (Bearer )?\[redacted\]/);
      expect(leaked(text)).toEqual([]);
    }
    expect(texts[1]).toContain("event: error");
    expect(leaked(viaOllama.logs.join("") + viaBedrock.logs.join(""))).toEqual([]);
  });

  it("never reach the agent through any API over an openai or an anthropic provider, passed through or translated", async () => {
    const fail = { status: 401, error: "unauthorized", echoAuthorization: true };
    const failMidStream = { errorAfterChunks: 1, echoAuthorization: true };
    const cases: [TestSidecar, OpenAiServer | AnthropicServer, object, string, object][] = [
      [viaOpenAi, openai, fail, "/v1/chat/completions", { model: "m", messages }],
      [viaOpenAi, openai, failMidStream, "/v1/chat/completions", { model: "m", messages, stream: true }],
      [viaOpenAi, openai, fail, "/v1/responses", { model: "m", input: "hello", store: false }],
      [
        viaOpenAi,
        openai,
        failMidStream,
        "/v1/responses",
        { model: "m", input: "hello", store: false, stream: true },
      ],
      [viaOpenAi, openai, fail, "/v1/responses", { model: "m", input: "hello" }],
      [
        viaOpenAi,
        openai,
        failMidStream,
        "/v1/messages",
        { model: "m", max_tokens: 50, messages, stream: true },
      ],
      [viaOpenAi, openai, failMidStream, "/api/chat", { model: "m", messages }],
      [viaOpenAi, openai, fail, "/v1/embeddings", { model: "m", input: "x" }],
      [viaAnthropic, anthropic, fail, "/v1/messages", { model: "m", max_tokens: 50, messages }],
      [
        viaAnthropic,
        anthropic,
        failMidStream,
        "/v1/messages",
        { model: "m", max_tokens: 50, messages, stream: true },
      ],
      [
        viaAnthropic,
        anthropic,
        failMidStream,
        "/v1/chat/completions",
        { model: "m", messages, stream: true },
      ],
      [viaAnthropic, anthropic, fail, "/v1/responses", { model: "m", input: "hello", stream: true }],
      [viaAnthropic, anthropic, fail, "/api/generate", { model: "m", prompt: "hello", stream: false }],
    ];
    for (const [sidecar, upstream, scenario, path, body] of cases) {
      upstream.enqueue(scenario);
      const text = await seen(await post(sidecar, path, body));
      expect(text, `${path} ${JSON.stringify(body)}`).toMatch(
        /you sent (Authorization: Bearer|x-api-key:) \[redacted\]/,
      );
      expect(leaked(text)).toEqual([]);
    }
    expect(leaked(viaOpenAi.logs.join("") + viaAnthropic.logs.join(""))).toEqual([]);
  });

  it("never reach the agent through tool calls, tool listings and the MCP gateway", async () => {
    const texts = [
      await seen(await post(viaOllama, "/tools/echo/invoke", { text: "hi" })),
      await seen(await post(viaOllama, "/tools/echoing__whoami/invoke", {})),
      await seen(await post(viaOllama, "/tools/echoing__fail/invoke", {})),
      await seen(await fetch(`${viaOllama.sidecar.agentUrl}/tools`)),
    ];
    const client = new Client({ name: "agent", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${viaOllama.sidecar.agentUrl}/mcp`)));
    texts.push(JSON.stringify(await client.listTools()));
    texts.push(JSON.stringify(await client.callTool({ name: "echoing__whoami", arguments: {} })));
    texts.push(JSON.stringify(await client.callTool({ name: "echoing__fail", arguments: {} })));
    await client.close();
    for (const text of texts) expect(leaked(text)).toEqual([]);
    expect(texts.filter((t) => t.includes("[redacted]"))).toHaveLength(texts.length);
    expect(leaked(viaOllama.logs.join(""))).toEqual([]);
  });
});
