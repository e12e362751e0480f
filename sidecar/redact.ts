// Removes every credential the sidecar holds from what it relays to the agent. An upstream's
// error text or a tool's answer may echo the request's headers; the agent must never get a
// credential byte, whether raw, URL-encoded, JSON-escaped or base64 at any byte alignment.

const REDACTED = "[redacted]";
/** Shorter values are not treated as secrets: they would match ordinary text everywhere. */
const MIN_SECRET_LENGTH = 6;
/** A SigV4 Authorization value: the access key id, the signed headers and the signature. */
const SIGV4 =
  /AWS4-HMAC-SHA256 Credential=[^\s",]+(?:,\s*SignedHeaders=[^\s",]+)?(?:,\s*Signature=[0-9a-f]+)?/g;

/**
 * The base64 text of `secret` as it appears inside the base64 of any longer text: the
 * characters that depend on the secret's bytes alone, for each of the three byte alignments.
 */
function base64Cores(secret: Buffer): string[] {
  const cores: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), secret]).toString("base64");
    const from = Math.ceil((4 * offset) / 3);
    const to = Math.floor((4 * (offset + secret.length)) / 3);
    const core = encoded.slice(from, to);
    if (core.length >= MIN_SECRET_LENGTH) {
      cores.push(core, core.replaceAll("+", "-").replaceAll("/", "_"));
    }
  }
  return cores;
}

/** Every form in which `secret` may appear in a text. */
export function secretForms(secret: string): string[] {
  const forms = new Set<string>([secret]);
  const uri = encodeURIComponent(secret);
  forms.add(uri);
  forms.add(uri.replaceAll("%20", "+"));
  const json = JSON.stringify(secret).slice(1, -1);
  forms.add(json);
  forms.add(json.replaceAll("/", "\\/"));
  for (const core of base64Cores(Buffer.from(secret, "utf8"))) forms.add(core);
  return [...forms];
}

export class Redactor {
  readonly #pattern: RegExp | undefined;

  constructor(secrets: Iterable<string>) {
    const forms = new Set<string>();
    for (const secret of secrets) {
      const value = secret.trim();
      if (value.length < MIN_SECRET_LENGTH) continue;
      for (const form of secretForms(value)) forms.add(form);
    }
    // Longest first, so a form that contains another is replaced whole.
    const alternatives = [...forms]
      .sort((a, b) => b.length - a.length)
      .map((form) => form.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    this.#pattern = alternatives.length === 0 ? undefined : new RegExp(alternatives.join("|"), "g");
  }

  text(text: string): string {
    const withoutSigV4 = text.includes("AWS4-HMAC-SHA256") ? text.replace(SIGV4, REDACTED) : text;
    return this.#pattern === undefined ? withoutSigV4 : withoutSigV4.replace(this.#pattern, REDACTED);
  }

  /** A JSON value with every string in it (keys included) redacted. */
  value<T>(value: T): T {
    if (typeof value === "string") return this.text(value) as T;
    if (Array.isArray(value)) return value.map((item: unknown) => this.value(item)) as T;
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(
        Object.entries(value).map(([key, item]) => [this.text(key), this.value(item)]),
      ) as T;
    }
    return value;
  }
}
