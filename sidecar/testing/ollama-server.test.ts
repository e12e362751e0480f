// The fake Ollama must satisfy the real ollama client on its own, since the end-to-end suite
// deploys it standalone as the cluster's LLM.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { Ollama } from "ollama";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let child: ChildProcess;
let client: Ollama;
let host: string;

beforeAll(async () => {
  child = spawn(process.execPath, ["sidecar/testing/ollama-server.ts", "--port", "0", "--token", "t0ken"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [line] = (await once(child.stdout ?? child, "data")) as [Buffer];
  const port = /listening on 127\.0\.0\.1:(\d+)/.exec(line.toString())?.[1];
  host = `http://127.0.0.1:${port}`;
  client = new Ollama({ host, headers: { Authorization: "Bearer t0ken" } });
});

afterAll(() => {
  child.kill();
});

describe("ollama-server run standalone", () => {
  it("streams chat with the done fields the ollama client reads", async () => {
    const parts = [];
    for await (const part of await client.chat({
      model: "llama3.2",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    })) {
      parts.push(part);
    }
    expect(parts.map((p) => p.message.content).join("")).toBe("You said: hi");
    expect(parts.at(-1)).toMatchObject({ done: true, done_reason: "stop", eval_count: 3 });
  });

  it("answers an unknown model with Ollama's 404 error object", async () => {
    const error = await client.chat({ model: "nope", messages: [], stream: false }).catch((e: unknown) => e);
    expect(error).toMatchObject({ status_code: 404, error: 'model "nope" not found, try pulling it first' });
  });

  it("refuses requests without the token", async () => {
    const response = await fetch(`${host}/api/tags`);
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: "unauthorized" });
  });
});
