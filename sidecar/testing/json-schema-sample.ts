// A value that satisfies a JSON schema, as a model whose output is constrained to the schema
// would produce one: the faithful test servers answer structured-output requests with it.

export function sampleOf(schema: unknown): unknown {
  if (typeof schema !== "object" || schema === null) return {};
  const s = schema as Record<string, unknown>;
  if ("const" in s) return s.const;
  if (Array.isArray(s.enum)) return s.enum[0];
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    const options = s[key];
    if (Array.isArray(options) && options.length > 0) return sampleOf(options[0]);
  }
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case "string":
      return "text";
    case "integer":
    case "number":
      return typeof s.minimum === "number" ? s.minimum : 1;
    case "boolean":
      return true;
    case "null":
      return null;
    case "array":
      return [sampleOf(s.items)];
    default: {
      const properties = (s.properties ?? {}) as Record<string, unknown>;
      return Object.fromEntries(Object.entries(properties).map(([key, value]) => [key, sampleOf(value)]));
    }
  }
}

/** Whether a value has the shape a schema asks for: types, required properties, enums. */
export function matches(value: unknown, schema: unknown): boolean {
  if (typeof schema !== "object" || schema === null) return true;
  const s = schema as Record<string, unknown>;
  if (Array.isArray(s.enum) && !s.enum.includes(value)) return false;
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case "string":
      return typeof value === "string";
    case "integer":
      return Number.isInteger(value);
    case "number":
      return typeof value === "number";
    case "boolean":
      return typeof value === "boolean";
    case "array":
      return Array.isArray(value) && value.every((item) => matches(item, s.items));
    case "object": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
      const record = value as Record<string, unknown>;
      const required = Array.isArray(s.required) ? (s.required as string[]) : [];
      if (required.some((key) => !(key in record))) return false;
      const properties = (s.properties ?? {}) as Record<string, unknown>;
      return Object.entries(properties).every(([key, sub]) => !(key in record) || matches(record[key], sub));
    }
    default:
      return true;
  }
}
