// Whether a value fits a JSON schema: types, required properties, enums. Tests check with it
// that structured answers are what the schema asked for.

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
