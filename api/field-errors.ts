// Parses against a zod schema and reports every problem with the field path Kubernetes users
// know (spec.llm.providers[0].region). Knows no kind, so the sidecar bundle imports it alone.
import type * as z from "zod";

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
