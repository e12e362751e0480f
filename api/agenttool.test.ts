import { describe, expect, it } from "vitest";
import { jsonSchemaProblem } from "./agenttool.ts";

describe("jsonSchemaProblem", () => {
  it("accepts JSON Schemas of draft 2020-12 and draft-07", () => {
    expect(
      jsonSchemaProblem({ type: "object", properties: { a: { type: ["string", "null"] } } }),
    ).toBeUndefined();
    expect(
      jsonSchemaProblem({
        $schema: "http://json-schema.org/draft-07/schema#",
        type: "object",
        definitions: {},
      }),
    ).toBeUndefined();
  });

  it("says what is wrong with one that is not", () => {
    expect(jsonSchemaProblem({ type: "object", properties: { a: { type: "text" } } })).toContain(
      "inputSchema/properties/a/type",
    );
    expect(jsonSchemaProblem({ type: "object", required: "a" })).toContain(
      "inputSchema/required must be array",
    );
    expect(jsonSchemaProblem({ $schema: "http://json-schema.org/draft-04/schema#", type: "object" })).toBe(
      "$schema must be JSON Schema draft 2020-12 or draft-07",
    );
  });
});
