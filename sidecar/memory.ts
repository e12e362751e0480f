// The agent's key-value memory on SQLite (node:sqlite): a file in the memory volume when
// persistent, so it survives restarts, or an in-memory database when ephemeral. Values are
// text; the store refuses a put that would take it past its byte limit.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";

export interface MemoryItem {
  key: string;
  value: string;
  updatedAt: string;
}

export interface MemoryEntry {
  key: string;
  bytes: number;
  updatedAt: string;
}

export class MemoryFullError extends Error {
  constructor(key: string, bytes: number, used: number, limit: number) {
    super(
      `memory is full: storing "${key}" (${bytes} bytes) would bring the store to ${used + bytes} of ${limit} bytes (memory.maxBytes); delete keys first or give the agent a larger memory`,
    );
    this.name = "MemoryFullError";
  }
}

const MEMORY_FILE = "memory.sqlite";

export class MemoryStore {
  readonly #db: DatabaseSync;
  #maxBytes: number;
  readonly #put: StatementSync;
  readonly #get: StatementSync;
  readonly #delete: StatementSync;
  readonly #sizeOf: StatementSync;
  readonly #list: StatementSync;
  readonly #search: StatementSync;
  readonly #totals: StatementSync;
  readonly #indexDelete: StatementSync;
  readonly #indexInsert: StatementSync;

  /** `dir` undefined keeps the store in memory. */
  constructor(dir: string | undefined, maxBytes: number) {
    if (dir !== undefined) mkdirSync(dir, { recursive: true });
    this.#db = new DatabaseSync(dir === undefined ? ":memory:" : join(dir, MEMORY_FILE));
    this.#maxBytes = maxBytes;
    // WAL keeps readers and the writer apart and survives a crash without a torn write.
    if (dir !== undefined) this.#db.exec("PRAGMA journal_mode = WAL");
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS memory (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        updated_at TEXT NOT NULL
      ) STRICT;
      CREATE VIRTUAL TABLE IF NOT EXISTS memory_fts USING fts5(key UNINDEXED, value);
    `);
    this.#put = this.#db.prepare(
      "INSERT INTO memory (key, value, bytes, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, bytes = excluded.bytes, updated_at = excluded.updated_at",
    );
    this.#get = this.#db.prepare("SELECT key, value, updated_at AS updatedAt FROM memory WHERE key = ?");
    this.#delete = this.#db.prepare("DELETE FROM memory WHERE key = ?");
    this.#sizeOf = this.#db.prepare("SELECT bytes FROM memory WHERE key = ?");
    // Prefix match by range, not LIKE, so keys with % or _ need no escaping and the index is used.
    this.#list = this.#db.prepare(
      "SELECT key, bytes, updated_at AS updatedAt FROM memory WHERE key >= ? AND key < ? ORDER BY key LIMIT ?",
    );
    this.#search = this.#db.prepare(
      "SELECT m.key, m.value, m.updated_at AS updatedAt FROM memory_fts f JOIN memory m ON m.key = f.key WHERE memory_fts MATCH ? ORDER BY rank LIMIT ?",
    );
    this.#totals = this.#db.prepare("SELECT COUNT(*) AS keys, COALESCE(SUM(bytes), 0) AS bytes FROM memory");
    this.#indexDelete = this.#db.prepare("DELETE FROM memory_fts WHERE key = ?");
    this.#indexInsert = this.#db.prepare("INSERT INTO memory_fts (key, value) VALUES (?, ?)");
  }

  set maxBytes(value: number) {
    this.#maxBytes = value;
  }

  get maxBytes(): number {
    return this.#maxBytes;
  }

  usage(): { keys: number; bytes: number } {
    const row = this.#totals.get() as { keys: number; bytes: number };
    return { keys: Number(row.keys), bytes: Number(row.bytes) };
  }

  put(key: string, value: string): MemoryItem {
    const bytes = Buffer.byteLength(value);
    const previous = (this.#sizeOf.get(key) as { bytes: number } | undefined)?.bytes ?? 0;
    const used = this.usage().bytes - previous;
    if (used + bytes > this.#maxBytes) throw new MemoryFullError(key, bytes, used, this.#maxBytes);
    const updatedAt = new Date().toISOString();
    this.#db.exec("BEGIN");
    try {
      this.#put.run(key, value, bytes, updatedAt);
      this.#indexDelete.run(key);
      this.#indexInsert.run(key, value);
      this.#db.exec("COMMIT");
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
    return { key, value, updatedAt };
  }

  get(key: string): MemoryItem | undefined {
    return this.#get.get(key) as MemoryItem | undefined;
  }

  delete(key: string): boolean {
    this.#db.exec("BEGIN");
    try {
      const { changes } = this.#delete.run(key);
      this.#indexDelete.run(key);
      this.#db.exec("COMMIT");
      return Number(changes) > 0;
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  list(prefix: string, limit: number): MemoryEntry[] {
    // The smallest string greater than every string starting with the prefix.
    const end = prefix === "" ? "\u{10FFFF}" : `${prefix}\u{10FFFF}`;
    return this.#list.all(prefix, end, limit) as unknown as MemoryEntry[];
  }

  /** Values matching all words of `text`, best match first. */
  search(text: string, limit: number): MemoryItem[] {
    const words = text.match(/[\p{L}\p{N}_]+/gu) ?? [];
    if (words.length === 0) return [];
    // Each word quoted, so the agent's text is never parsed as FTS5 query syntax.
    const query = words.map((w) => `"${w}"`).join(" ");
    return this.#search.all(query, limit) as unknown as MemoryItem[];
  }

  close(): void {
    this.#db.close();
  }
}
