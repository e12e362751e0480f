// Validates a manifest of any agenttype.dev kind against its zod schema and reports every
// problem with the field path Kubernetes users know (spec.llm.providers[0].region).
import type * as z from "zod";
import { API_VERSION } from "./common.ts";
import { kinds } from "./kinds.ts";

export interface FieldError {
  /** Path of the offending field, for example spec.llm.providers[0].region. */
  path: string;
  message: string;
}

export type Validated<T = unknown> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

/** Formats a zod issue path the way the API server names fields. */
export function fieldPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, segment) => {
    if (typeof segment === "number") return `${out}[${segment}]`;
    return out === "" ? String(segment) : `${out}.${String(segment)}`;
  }, "");
}

/** Field errors of a failed parse; unknown keys are reported one field each. */
export function fieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.flatMap((issue) =>
    issue.code === "unrecognized_keys"
      ? issue.keys.map((key) => ({ path: fieldPath([...issue.path, key]), message: "unknown field" }))
      : [{ path: fieldPath(issue.path), message: issue.message }],
  );
}

/** One line per error, `path: message`. */
export function formatFieldErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => `${e.path || "(object)"}: ${e.message}`).join("\n");
}

/** Parses an object of a kind known by name. */
export function parseAs<S extends z.ZodType>(schema: S, manifest: unknown): Validated<z.output<S>> {
  const result = schema.safeParse(manifest);
  return result.success ? { ok: true, value: result.data } : { ok: false, errors: fieldErrors(result.error) };
}

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
