// The conversations behind previous_response_id, kept in the sidecar's process memory within
// bounds: at most maxEntries responses and maxBytes of their JSON, the least recently used
// forgotten first. A restart forgets them all; an agent that needs more sends the items itself.
import type { ChatMessage } from "../chat.ts";

export interface ResponseStoreLimits {
  maxEntries: number;
  maxBytes: number;
}

/** 1,000 conversations or 16 MiB, whichever comes first: the sidecar's memory stays bounded. */
export const RESPONSE_STORE_LIMITS: ResponseStoreLimits = { maxEntries: 1000, maxBytes: 16 * 1024 * 1024 };

/**
 * Kept as JSON text: the byte bound is then what the entry costs (objects would cost a multiple
 * of it), and a continuation gets its own copy to extend.
 */
interface Entry {
  json: string;
  bytes: number;
}

export class ResponseStore {
  readonly #limits: ResponseStoreLimits;
  /** In order of use, least recent first (a Map keeps insertion order). */
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;

  constructor(limits: ResponseStoreLimits = RESPONSE_STORE_LIMITS) {
    this.#limits = limits;
  }

  /** Keeps a response's conversation (its input and its output); false when it alone is over the byte bound. */
  put(id: string, conversation: readonly ChatMessage[]): boolean {
    const json = JSON.stringify(conversation);
    const bytes = Buffer.byteLength(json);
    this.delete(id);
    if (bytes > this.#limits.maxBytes) return false;
    this.#entries.set(id, { json, bytes });
    this.#bytes += bytes;
    for (const [oldest, entry] of this.#entries) {
      if (this.#entries.size <= this.#limits.maxEntries && this.#bytes <= this.#limits.maxBytes) break;
      this.#entries.delete(oldest);
      this.#bytes -= entry.bytes;
    }
    return true;
  }

  /** A copy of a response's conversation, or undefined when it was never kept or has been forgotten. */
  get(id: string): ChatMessage[] | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    // Used again: it moves to the most recent end.
    this.#entries.delete(id);
    this.#entries.set(id, entry);
    return JSON.parse(entry.json) as ChatMessage[];
  }

  delete(id: string): boolean {
    const entry = this.#entries.get(id);
    if (entry === undefined) return false;
    this.#entries.delete(id);
    this.#bytes -= entry.bytes;
    return true;
  }

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }
}
