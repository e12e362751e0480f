import { readFileSync } from "node:fs";
import { join } from "node:path";
import { load } from "js-yaml";
import { describe, expect, it } from "vitest";
import * as z from "zod";
import { badManifests, buildBadManifest } from "../tests/fixtures/manifests.ts";
import { type JSONSchemaProps, toOpenApi, UnsupportedSchemaError } from "./crd.ts";
import { renderCrds } from "./generate-crds.ts";
import { validateManifest } from "./validate.ts";

const CRDS_DIR = join(import.meta.dirname, "..", "crds");
const rendered = renderCrds();
// biome-ignore lint/suspicious/noExplicitAny: a CRD is plain YAML data here.
const crds = rendered.map(({ yaml }) => load(yaml) as any);
const schemaOf = (kind: string): JSONSchemaProps =>
  crds.find((c) => c.spec.names.kind === kind).spec.versions[0].schema.openAPIV3Schema;

/** Every node of a schema with its path. */
function* nodes(schema: JSONSchemaProps, path: string): Generator<[string, JSONSchemaProps]> {
  yield [path, schema];
  for (const [key, child] of Object.entries(schema.properties ?? {})) yield* nodes(child, `${path}.${key}`);
  if (schema.items) yield* nodes(schema.items, `${path}[]`);
  if (schema.additionalProperties) yield* nodes(schema.additionalProperties, `${path}.*`);
}

describe("generated CRDs", () => {
  it.each(rendered.map((r) => r.file))("crds/%s is what the generator writes (run make generate)", (file) => {
    const committed = readFileSync(join(CRDS_DIR, file), "utf8");
    expect(committed).toBe(rendered.find((r) => r.file === file)?.yaml);
  });

  it.each(["AgentType", "AgentTool", "AgentHost"])(
    "%s is structural: every node typed, no open-ended schema",
    (kind) => {
      const problems: string[] = [];
      for (const [path, node] of nodes(schemaOf(kind), kind)) {
        const intOrString = node["x-kubernetes-int-or-string"] === true;
        if (node.type === undefined && !intOrString) problems.push(`${path}: no type`);
        if (
          intOrString &&
          JSON.stringify(node.anyOf) !== JSON.stringify([{ type: "integer" }, { type: "string" }])
        ) {
          problems.push(`${path}: int-or-string needs anyOf integer, string`);
        }
        if (!intOrString && node.anyOf) problems.push(`${path}: anyOf outside int-or-string`);
        for (const forbidden of ["oneOf", "allOf", "not", "$ref", "nullable"]) {
          if (forbidden in node) problems.push(`${path}: ${forbidden}`);
        }
        if (node.properties && node.additionalProperties)
          problems.push(`${path}: properties and additionalProperties`);
        if (node.type === "array" && !node.items) problems.push(`${path}: array without items`);
      }
      expect(problems).toEqual([]);
    },
  );

  it.each(["AgentType", "AgentTool", "AgentHost"])(
    "%s: every field of spec and status has a description",
    (kind) => {
      const schema = schemaOf(kind);
      const undocumented = [...nodes(schema, kind)]
        .filter(([path]) => path.startsWith(`${kind}.spec`) || path.startsWith(`${kind}.status`))
        .filter(([path, node]) => !path.endsWith("[]") && !path.endsWith(".*") && !node.description)
        .map(([path]) => path);
      expect(undocumented).toEqual([]);
    },
  );

  it("keeps unknown fields only where a field is a passthrough", () => {
    const open = crds.flatMap((crd) =>
      [...nodes(crd.spec.versions[0].schema.openAPIV3Schema, crd.spec.names.kind)]
        .filter(([, node]) => node["x-kubernetes-preserve-unknown-fields"])
        .map(([path]) => path),
    );
    // A tool's input schema is JSON Schema, which no structural schema can type all of; its
    // outline is typed, and zod checks the rest against the meta-schema.
    expect(open.sort()).toEqual(["AgentTool.spec.inputSchema", "AgentTool.spec.inputSchema.properties.*"]);
  });

  it("carries defaults and enums into the CRD", () => {
    const spec = schemaOf("AgentType").properties?.spec?.properties ?? {};
    expect(spec.replicas).toMatchObject({ type: "integer", default: 1, minimum: 0 });
    expect(spec.language).toMatchObject({ default: "generic", enum: ["node", "python", "generic"] });
    expect(spec.memory?.default).toEqual({ type: "ephemeral", retainPolicy: "Delete" });
    // A defaulted field is never required: the API server checks defaults against `required`.
    expect(spec.sidecar?.required).toBeUndefined();
    expect(spec.llm?.properties?.retries?.required).toBeUndefined();
    expect(spec.memory?.properties?.type?.default).toBe("ephemeral");
    expect(spec.tools?.["x-kubernetes-list-type"]).toBe("map");
  });

  it("names, subresources and printer columns are what kubectl users get", () => {
    const byKind = Object.fromEntries(crds.map((c) => [c.spec.names.kind, c.spec]));
    expect(byKind.AgentType.names).toMatchObject({ shortNames: ["at"], categories: ["agents"] });
    expect(byKind.AgentTool.names).toMatchObject({ shortNames: ["atool"], categories: ["agents"] });
    expect(byKind.AgentHost.names).toMatchObject({ shortNames: ["ahost"], categories: ["agents"] });
    expect(byKind.AgentHost.scope).toBe("Cluster");
    for (const kind of ["AgentType", "AgentTool", "AgentHost"]) {
      expect(byKind[kind].versions[0].subresources.status).toEqual({});
    }
    expect(byKind.AgentType.versions[0].subresources.scale).toEqual({
      specReplicasPath: ".spec.replicas",
      statusReplicasPath: ".status.replicas",
      labelSelectorPath: ".status.selector",
    });
    const columns = byKind.AgentType.versions[0].additionalPrinterColumns.map(
      (c: { name: string }) => c.name,
    );
    expect(columns).toEqual(expect.arrayContaining(["Ready", "Replicas", "Model", "Age"]));
  });

  it("every CEL rule of a spec, other than a pattern, is exercised by a bad manifest with the same message", () => {
    const celMessages = crds.flatMap((crd) =>
      [...nodes(crd.spec.versions[0].schema.openAPIV3Schema.properties.spec, "")].flatMap(([, node]) =>
        (node["x-kubernetes-validations"] ?? [])
          .filter((v) => !/^self\.matches\("[^"]*"\)$/.test(v.rule.replaceAll('\\"', "")))
          .map((v) => v.message),
      ),
    );
    const exercised = new Set(
      badManifests
        .filter((b) => b.rule === "cel")
        .flatMap((b) => {
          const result = validateManifest(buildBadManifest(b));
          return result.ok ? [] : result.errors.map((e) => e.message);
        }),
    );
    expect(celMessages.filter((m) => !exercised.has(m))).toEqual([]);
    expect(celMessages.length).toBeGreaterThanOrEqual(10);
  });
});

describe("patterns", () => {
  it("reach the CRD as CEL rules with their message in words, not as a regular expression", () => {
    const out = toOpenApi(z.string().max(8).regex(/^a+$/, { error: "must be a's" }), "spec.s");
    expect(out).not.toHaveProperty("pattern");
    expect(out["x-kubernetes-validations"]).toEqual([
      { rule: 'self.matches("^a+$")', message: "must be a's" },
    ]);
  });

  it("need a message and a maximum length", () => {
    expect(() => toOpenApi(z.string().max(8).regex(/^a+$/), "spec.s")).toThrow(UnsupportedSchemaError);
    expect(() => toOpenApi(z.string().regex(/^a+$/, { error: "a's" }), "spec.s")).toThrow(
      "spec.s: a pattern needs a maximum length",
    );
  });

  it("no generated CRD carries an OpenAPI pattern", () => {
    for (const crd of crds) expect(JSON.stringify(crd)).not.toContain('"pattern"');
  });

  it("metadata.name of an AgentType is restricted in the CRD as in zod", () => {
    const name = schemaOf("AgentType").properties?.metadata?.properties?.name;
    expect(name).toMatchObject({ type: "string", maxLength: 52 });
    expect(name?.["x-kubernetes-validations"]?.[0]?.message).toContain("DNS-1035");
  });
});

describe("toOpenApi", () => {
  it("refuses schemas that have no structural form, naming where", () => {
    expect(() => toOpenApi(z.object({ a: z.union([z.string(), z.boolean()]) }), "spec")).toThrow(
      new UnsupportedSchemaError("spec.a: unions other than int-or-string have no structural form"),
    );
    expect(() => toOpenApi(z.int().gt(0), "spec.n")).toThrow(UnsupportedSchemaError);
  });
});
