import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryStore } from "./memory.ts";
import { baseConfig, startTestSidecar, type TestSidecar } from "./testing/sidecar.ts";

let sc: TestSidecar | undefined;
afterEach(async () => {
  await sc?.close();
  sc = undefined;
});

async function api(path: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${sc?.sidecar.agentUrl}${path}`, init);
  const text = await response.text();
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) };
}

function put(key: string, value: unknown) {
  return api(`/memory/${key}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(value),
  });
}

describe("memory API", () => {
  it("puts, gets, lists by prefix, searches and deletes", async () => {
    sc = await startTestSidecar(baseConfig());
    expect((await put("notes/paris", { text: "The Eiffel tower is in Paris" })).status).toBe(200);
    await put("notes/rome", { text: "The Colosseum is in Rome" });
    await put("todo/1", "buy bread");
    expect(await api("/memory/notes/paris")).toMatchObject({
      status: 200,
      body: { key: "notes/paris", value: { text: "The Eiffel tower is in Paris" } },
    });
    const listed = (await api("/memory?prefix=notes/")).body as { items: { key: string; bytes: number }[] };
    expect(listed.items.map((i) => i.key)).toEqual(["notes/paris", "notes/rome"]);
    const found = (await api("/memory?q=colosseum%20rome")).body as {
      items: { key: string; value: unknown }[];
    };
    expect(found.items).toEqual([
      expect.objectContaining({ key: "notes/rome", value: { text: "The Colosseum is in Rome" } }),
    ]);
    expect((await api("/memory?q=nothing%20matches%20this")).body).toEqual({ items: [] });
    expect((await api("/memory/notes/rome", { method: "DELETE" })).status).toBe(204);
    expect((await api("/memory/notes/rome")).status).toBe(404);
    expect((await api("/memory?q=colosseum")).body).toEqual({ items: [] });
  });

  it("refuses a put over the size limit with a clear error, and counts a replaced value once", async () => {
    sc = await startTestSidecar(baseConfig({ memory: { type: "ephemeral", maxBytes: 100 } }));
    expect((await put("a", "x".repeat(60))).status).toBe(200);
    expect((await put("a", "y".repeat(60))).status).toBe(200);
    const refused = await put("b", "z".repeat(60));
    expect(refused.status).toBe(413);
    expect((refused.body as { error: string }).error).toMatch(
      /memory is full: storing "b" \(62 bytes\) .* of 100 bytes/,
    );
    const metrics = await (await fetch(`${sc.sidecar.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/agenttype_memory_bytes 62/);
    expect(metrics).toMatch(/agenttype_memory_keys 1/);
  });

  it("keeps persistent memory across a sidecar restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "memory-"));
    const config = baseConfig({
      memory: { type: "persistent", path: join(dir, "memory"), maxBytes: 10_000 },
    });
    sc = await startTestSidecar(config, { dir });
    await put("plan", { step: 3 });
    await sc.close();
    sc = await startTestSidecar(config, { dir });
    expect((await api("/memory/plan")).body).toMatchObject({ value: { step: 3 } });
  });

  it("loses ephemeral memory with the sidecar", async () => {
    const dir = mkdtempSync(join(tmpdir(), "memory-"));
    sc = await startTestSidecar(baseConfig(), { dir });
    await put("plan", { step: 3 });
    await sc.close();
    sc = await startTestSidecar(baseConfig(), { dir });
    expect((await api("/memory/plan")).status).toBe(404);
  });
});

describe("MemoryStore", () => {
  it("treats prefix characters literally, including LIKE wildcards", () => {
    const store = new MemoryStore(undefined, 1000);
    store.put("a%b/1", "1");
    store.put("axb/2", "2");
    store.put("a_b/3", "3");
    expect(store.list("a%", 10).map((e) => e.key)).toEqual(["a%b/1"]);
    expect(store.list("a_", 10).map((e) => e.key)).toEqual(["a_b/3"]);
    store.close();
  });

  it("does not let search text act as query syntax", () => {
    const store = new MemoryStore(undefined, 1000);
    store.put("k", "alpha beta");
    expect(store.search('alpha" OR "zzz', 10).map((i) => i.key)).toEqual([]);
    expect(store.search("ALPHA", 10).map((i) => i.key)).toEqual(["k"]);
    store.close();
  });
});
