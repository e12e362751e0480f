// The agent's /memory API over the MemoryStore: PUT, GET and DELETE /memory/{key} (keys may
// contain slashes), GET /memory?prefix= to list and GET /memory?q= to search values.
import type { FastifyInstance } from "fastify";
import * as z from "zod";
import { MemoryFullError, type MemoryStore } from "./memory.ts";
import type { Metrics } from "./metrics.ts";

const MAX_KEY_BYTES = 1024;

const listQuery = z.strictObject({
  prefix: z.string().default(""),
  q: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export function registerMemoryRoutes(app: FastifyInstance, store: MemoryStore, metrics: Metrics): void {
  const measure = () => {
    const { keys, bytes } = store.usage();
    metrics.memoryKeys.set(keys);
    metrics.memoryBytes.set(bytes);
    metrics.memoryLimitBytes.set(store.maxBytes);
  };
  measure();

  const keyOf = (params: unknown): string | undefined => {
    const key = (params as { "*"?: string })["*"] ?? "";
    return key === "" || Buffer.byteLength(key) > MAX_KEY_BYTES ? undefined : key;
  };
  const badKey = { error: `a key is 1 to ${MAX_KEY_BYTES} bytes: /memory/{key}` };

  app.put("/memory/*", async (request, reply) => {
    const key = keyOf(request.params);
    if (key === undefined) return reply.code(400).send(badKey);
    if (request.body === undefined)
      return reply.code(400).send({ error: "the body is the value to store, as JSON" });
    try {
      const item = store.put(key, JSON.stringify(request.body));
      measure();
      return reply.send({ key, updatedAt: item.updatedAt });
    } catch (error) {
      if (error instanceof MemoryFullError) return reply.code(413).send({ error: error.message });
      throw error;
    }
  });

  app.get("/memory/*", async (request, reply) => {
    const key = keyOf(request.params);
    if (key === undefined) return reply.code(400).send(badKey);
    const item = store.get(key);
    if (item === undefined) return reply.code(404).send({ error: `no memory under key "${key}"` });
    return reply.send({ key, value: JSON.parse(item.value), updatedAt: item.updatedAt });
  });

  app.delete("/memory/*", async (request, reply) => {
    const key = keyOf(request.params);
    if (key === undefined) return reply.code(400).send(badKey);
    if (!store.delete(key)) return reply.code(404).send({ error: `no memory under key "${key}"` });
    measure();
    return reply.code(204).send();
  });

  app.get("/memory", async (request, reply) => {
    const query = listQuery.safeParse(request.query);
    if (!query.success) {
      return reply.code(400).send({ error: `query: ${query.error.issues.map((i) => i.message).join("; ")}` });
    }
    const { prefix, q, limit } = query.data;
    if (q !== undefined) {
      const items = store
        .search(q, limit)
        .filter((i) => i.key.startsWith(prefix))
        .map((i) => ({ key: i.key, value: JSON.parse(i.value), updatedAt: i.updatedAt }));
      return reply.send({ items });
    }
    return reply.send({ items: store.list(prefix, limit) });
  });
}
