// Turns the zod schemas into CustomResourceDefinitions: structural OpenAPI v3 with the
// descriptions, defaults, enums, bounds and CEL rules the schemas carry. Pure: no I/O.
import * as z from "zod";
import { CEL_KEY, type CelValidation, GROUP, VERSION } from "./common.ts";

/** The subset of apiextensions.k8s.io/v1 JSONSchemaProps this generator writes. */
export interface JSONSchemaProps {
  type?: "object" | "array" | "string" | "integer" | "number" | "boolean";
  description?: string;
  properties?: Record<string, JSONSchemaProps>;
  required?: string[];
  additionalProperties?: JSONSchemaProps;
  items?: JSONSchemaProps;
  enum?: unknown[];
  default?: unknown;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  anyOf?: JSONSchemaProps[];
  "x-kubernetes-int-or-string"?: boolean;
  "x-kubernetes-preserve-unknown-fields"?: boolean;
  "x-kubernetes-list-type"?: string;
  "x-kubernetes-list-map-keys"?: string[];
  "x-kubernetes-validations"?: { rule: string; message: string; fieldPath?: string; reason?: string }[];
}

// Extensions copied from a schema's metadata into the CRD as they are.
const PASSTHROUGH_META = [
  "description",
  "format",
  "maxLength",
  "maxProperties",
  "x-kubernetes-int-or-string",
  "x-kubernetes-preserve-unknown-fields",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
  CEL_KEY,
] as const;

/** Thrown for a schema construct that has no structural OpenAPI form; names where it is. */
export class UnsupportedSchemaError extends Error {}

interface Bounds {
  min?: number;
  max?: number;
  integer?: boolean;
  patterns: { pattern: RegExp; message: string }[];
}

/** Reads the bounds a schema's checks (.min, .max, .regex, z.int) put on its values. */
function checkBounds(schema: z.ZodType): Bounds {
  const bounds: Bounds = { patterns: [] };
  const defs = (schema._zod.def.checks ?? []).map(
    (check) => check._zod.def as unknown as Record<string, unknown>,
  );
  // z.int() is a format schema: its own first check.
  if (schema._zod.traits.has("$ZodCheck"))
    defs.unshift(schema._zod.def as unknown as Record<string, unknown>);
  for (const def of defs) {
    if (def.inclusive === false)
      throw new UnsupportedSchemaError("exclusive bounds (.gt, .lt) are not supported; use .min, .max");
    switch (def.check) {
      case "min_length":
      case "greater_than":
        bounds.min = Math.max(bounds.min ?? -Infinity, Number(def.minimum ?? def.value));
        break;
      case "max_length":
      case "less_than":
        bounds.max = Math.min(bounds.max ?? Infinity, Number(def.maximum ?? def.value));
        break;
      case "number_format":
        bounds.integer = String(def.format).includes("int");
        break;
      case "string_format":
        if (def.pattern instanceof RegExp) {
          // The message a user sees, in words: zod keeps it as a function of the issue.
          const message =
            typeof def.error === "function" ? (def.error as (i: object) => unknown)({}) : undefined;
          if (typeof message !== "string") {
            throw new UnsupportedSchemaError(`pattern ${def.pattern.source} has no message in words`);
          }
          bounds.patterns.push({ pattern: def.pattern, message });
        }
        break;
    }
  }
  return bounds;
}

/**
 * A pattern becomes a CEL rule rather than an OpenAPI `pattern`, so the API server answers
 * with the message in words instead of the regular expression.
 */
function patternRules(bounds: Bounds): NonNullable<JSONSchemaProps["x-kubernetes-validations"]> {
  return bounds.patterns.map(({ pattern, message }) => ({
    rule: `self.matches(${JSON.stringify(pattern.source)})`,
    message,
  }));
}

function scalarBounds(out: JSONSchemaProps, bounds: Bounds, path: string, kind: "Length" | "imum"): void {
  if (bounds.patterns.length > 0) {
    if (kind !== "Length" || bounds.max === undefined) {
      throw new UnsupportedSchemaError(
        `${path}: a pattern needs a maximum length (the CEL cost is bounded by it)`,
      );
    }
    out[CEL_KEY] = patternRules(bounds);
  }
  if (kind === "Length") {
    if (bounds.min !== undefined) out.minLength = bounds.min;
    if (bounds.max !== undefined) out.maxLength = bounds.max;
  } else {
    if (bounds.min !== undefined) out.minimum = bounds.min;
    if (bounds.max !== undefined) out.maximum = bounds.max;
  }
}

/** The structural OpenAPI v3 schema of a zod schema; `path` names it in errors. */
export function toOpenApi(schema: z.ZodType, path = "$"): JSONSchemaProps {
  const def = schema._zod.def as z.core.$ZodTypeDef & Record<string, unknown>;
  const meta = z.globalRegistry.get(schema) ?? {};
  let out: JSONSchemaProps;
  switch (def.type) {
    case "optional":
    case "nonoptional":
      out = toOpenApi(def.innerType as z.ZodType, path);
      break;
    case "default":
      out = { ...toOpenApi(def.innerType as z.ZodType, path), default: def.defaultValue };
      break;
    case "prefault":
      // The API server checks a default against CEL rules before nested defaults apply, so
      // the CRD carries the value with them applied, as zod produces it.
      out = {
        ...toOpenApi(def.innerType as z.ZodType, path),
        default: (def.innerType as z.ZodType).parse(def.defaultValue),
      };
      break;
    case "object": {
      const shape = def.shape as Record<string, z.ZodType>;
      const properties: Record<string, JSONSchemaProps> = {};
      const required: string[] = [];
      for (const [key, field] of Object.entries(shape)) {
        properties[key] = toOpenApi(field, `${path}.${key}`);
        // optin is "optional" for .optional() and "defaulted" for .default()/.prefault().
        if (field._zod.optin === undefined) required.push(key);
      }
      out = { type: "object" };
      if (Object.keys(properties).length > 0) out.properties = properties;
      if (required.length > 0) out.required = required;
      break;
    }
    case "string":
      out = { type: "string" };
      // An explicit format (date-time, ...) replaces zod's own pattern for it.
      if (meta.format === undefined) scalarBounds(out, checkBounds(schema), path, "Length");
      break;
    case "number": {
      const bounds = checkBounds(schema);
      out = { type: bounds.integer ? "integer" : "number" };
      scalarBounds(out, bounds, path, "imum");
      break;
    }
    case "boolean":
      out = { type: "boolean" };
      break;
    case "enum":
      out = { type: "string", enum: Object.values(def.entries as Record<string, string>) };
      break;
    case "literal":
      out = { type: "string", enum: [...(def.values as unknown[])] };
      break;
    case "array": {
      const bounds = checkBounds(schema);
      out = { type: "array", items: toOpenApi(def.element as z.ZodType, `${path}[]`) };
      if (bounds.min !== undefined) out.minItems = bounds.min;
      if (bounds.max !== undefined) out.maxItems = bounds.max;
      break;
    }
    case "record":
      out = { type: "object", additionalProperties: toOpenApi(def.valueType as z.ZodType, `${path}.*`) };
      break;
    case "union":
      // The only union a structural schema allows: Kubernetes' int-or-string.
      if (meta["x-kubernetes-int-or-string"] !== true) {
        throw new UnsupportedSchemaError(`${path}: unions other than int-or-string have no structural form`);
      }
      out = { anyOf: [{ type: "integer" }, { type: "string" }] };
      break;
    default:
      throw new UnsupportedSchemaError(`${path}: zod type "${def.type}" has no structural form`);
  }
  for (const key of PASSTHROUGH_META) {
    if (meta[key] === undefined) continue;
    // Rules from patterns come first, then the schema's own.
    if (key === CEL_KEY) out[CEL_KEY] = [...(out[CEL_KEY] ?? []), ...(meta[key] as CelValidation[])];
    else (out as Record<string, unknown>)[key] = meta[key];
  }
  return out;
}

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description: string;
  priority?: number;
}

export interface KindDefinition {
  kind: string;
  plural: string;
  shortNames: string[];
  scope: "Namespaced" | "Cluster";
  /** The whole object's schema; its spec and status become the CRD's. */
  schema: z.ZodObject;
  printerColumns: PrinterColumn[];
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath: string };
}

/** The schema of metadata.name: a CRD may restrict a name (and nothing else of metadata). */
function metadataName(schema: z.ZodObject): z.ZodType {
  const metadata = (schema.shape as Record<string, z.ZodType>).metadata;
  const name = (metadata as z.ZodObject | undefined)?.shape?.name as z.ZodType | undefined;
  if (name === undefined) throw new UnsupportedSchemaError("the object schema needs metadata.name");
  return name;
}

/** The CustomResourceDefinition of one kind, ready to serialize. */
export function buildCrd(kind: KindDefinition): Record<string, unknown> {
  const shape = kind.schema.shape as Record<string, z.ZodType>;
  const spec = shape.spec;
  const status = shape.status;
  if (spec === undefined || status === undefined) {
    throw new UnsupportedSchemaError(`${kind.kind}: the object schema needs spec and status`);
  }
  const description = z.globalRegistry.get(kind.schema)?.description;
  const openAPIV3Schema: JSONSchemaProps = {
    type: "object",
    ...(description === undefined ? {} : { description }),
    properties: {
      apiVersion: {
        type: "string",
        description: "Versioned schema of this representation of an object; agenttype.dev/v1alpha1.",
      },
      kind: { type: "string", description: `Kind of the object; ${kind.kind}.` },
      metadata: {
        type: "object",
        properties: { name: toOpenApi(metadataName(kind.schema), "metadata.name") },
      },
      spec: toOpenApi(spec, "spec"),
      status: toOpenApi(status, "status"),
    },
    required: ["spec"],
  };
  const subresources: Record<string, unknown> = { status: {} };
  if (kind.scale !== undefined) subresources.scale = kind.scale;
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${kind.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      names: {
        kind: kind.kind,
        listKind: `${kind.kind}List`,
        plural: kind.plural,
        singular: kind.kind.toLowerCase(),
        shortNames: kind.shortNames,
        categories: ["agents"],
      },
      scope: kind.scope,
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema },
          subresources,
          additionalPrinterColumns: kind.printerColumns,
        },
      ],
    },
  };
}
