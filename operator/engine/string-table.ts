// One copy of each short string the informers' caches hold. JSON.parse gives every object its
// own copy of every string value, so 10,000 AgentTypes hold 10,000 copies of their namespace,
// of "agenttype.dev/v1alpha1", of each condition's reason and message: measured in a heap
// snapshot of the operator at 10,000 AgentTypes, a third of its 102 MiB live heap was strings,
// most of them such copies.

/** Values that differ in every object or every version: kept out of the table, which they would only fill. */
const UNIQUE_KEYS = new Set([
  "uid",
  "resourceVersion",
  "creationTimestamp",
  "lastTransitionTime",
  "appliedDigest",
]);

/** Strings longer than this are rarely shared and are left as they are. */
const MAX_LENGTH = 256;

/**
 * A bounded table of strings: `intern` returns the table's copy of a value equal to the one
 * given. Once it holds `capacity` strings it starts afresh, so strings of objects long gone do
 * not pile up; what the caches still reference stays alive through them.
 */
export class StringTable {
  readonly #strings = new Map<string, string>();
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#strings.size;
  }

  intern(value: string): string {
    const known = this.#strings.get(value);
    if (known !== undefined) return known;
    if (this.#strings.size >= this.#capacity) this.#strings.clear();
    this.#strings.set(value, value);
    return value;
  }

  /**
   * `value` with every short string in it replaced by the table's copy, in place (a freshly
   * parsed object the caller owns); values under UNIQUE_KEYS are left out.
   */
  internAll<T>(value: T): T {
    return this.#internValue(value, undefined) as T;
  }

  #internValue(value: unknown, key: string | undefined): unknown {
    if (typeof value === "string")
      return value.length > MAX_LENGTH || (key !== undefined && UNIQUE_KEYS.has(key))
        ? value
        : this.intern(value);
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) value[i] = this.#internValue(value[i], undefined);
    } else if (value !== null && typeof value === "object") {
      const record = value as Record<string, unknown>;
      for (const k of Object.keys(record)) record[k] = this.#internValue(record[k], k);
    }
    return value;
  }
}
