// Validates a manifest of any agenttype.dev kind, choosing the schema by apiVersion and kind.
import { API_VERSION } from "./common.ts";
import { parseAs, type Validated } from "./field-errors.ts";
import { kinds } from "./kinds.ts";

/** Validates a manifest of any agenttype.dev kind, choosing the schema by apiVersion and kind. */
export function validateManifest(manifest: unknown): Validated {
  const { apiVersion, kind } = (manifest ?? {}) as { apiVersion?: unknown; kind?: unknown };
  if (apiVersion !== API_VERSION) {
    return { ok: false, errors: [{ path: "apiVersion", message: `must be ${API_VERSION}` }] };
  }
  const definition = kinds.find((k) => k.kind === kind);
  if (definition === undefined) {
    const known = kinds.map((k) => k.kind).join(", ");
    return { ok: false, errors: [{ path: "kind", message: `must be one of ${known}` }] };
  }
  return parseAs(definition.schema, manifest);
}
