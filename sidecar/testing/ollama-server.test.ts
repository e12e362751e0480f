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

  it("lists its models as the ollama client reads them", async () => {
    const { models } = await client.list();
    expect(models.map((m) => m.name)).toEqual(["llama3.2:latest", "all-minilm:latest"]);
    expect(models[0]).toMatchObject({ model: "llama3.2:latest", details: { family: "llama" } });
  });

  it("pulls a model with streamed progress, after which it is listed and answers", async () => {
    const statuses: { status: string; total?: number; completed?: number }[] = [];
    for await (const progress of await client.pull({ model: "qwen2.5:0.5b", stream: true })) {
      statuses.push(progress);
    }
    expect(statuses[0]).toEqual({ status: "pulling manifest" });
    const layer = statuses.filter((s) => s.status.startsWith("pulling ") && s.total !== undefined);
    expect(layer.at(-1)).toMatchObject({ total: 397_821_319, completed: 397_821_319 });
    expect(statuses.slice(-3).map((s) => s.status)).toEqual([
      "verifying sha256 digest",
      "writing manifest",
      "success",
    ]);
    expect((await client.list()).models.map((m) => m.name)).toContain("qwen2.5:0.5b");
    const answer = await client.chat({ model: "qwen2.5:0.5b", messages: [{ role: "user", content: "hi" }] });
    expect(answer.message.content).toBe("You said: hi");
  });

  it("ends a pull of a model the registry lacks with Ollama's error line, which the client throws", async () => {
    const pulling = async () => {
      for await (const _ of await client.pull({ model: "no-such-model", stream: true })) {
        // progress until the error line
      }
    };
    await expect(pulling()).rejects.toThrow("pull model manifest: file does not exist");
  });

  it("answers a pull without streaming with one object, or 500 and the error", async () => {
    expect(await client.pull({ model: "all-minilm", stream: false })).toEqual({ status: "success" });
    const error = await client.pull({ model: "no-such-model", stream: false }).catch((e: unknown) => e);
    expect(error).toMatchObject({ status_code: 500, error: "pull model manifest: file does not exist" });
  });

  it("refuses a pull of an invalid model name with 400", async () => {
    const error = await client.pull({ model: "not a name", stream: false }).catch((e: unknown) => e);
    expect(error).toMatchObject({ status_code: 400, error: "invalid model name" });
  });

  it("refuses requests without the token", async () => {
    const response = await fetch(`${host}/api/tags`);
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: "unauthorized" });
  });
});
