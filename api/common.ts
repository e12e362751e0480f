// Field schemas shared by the three kinds, and the two helpers that attach Kubernetes
// extensions (CEL rules, list types) so that zod and the generated CRD enforce the same rule.
import { validRange } from "semver";
import * as z from "zod";

export const GROUP = "agenttype.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

/** One CEL rule as the API server runs it, plus the same rule in TypeScript for zod. */
export interface CrossFieldRule<T> {
  /** CEL expression over `self`, evaluated by the API server (x-kubernetes-validations). */
  cel: string;
  /** Message shown by both the API server and zod when the rule fails. */
  message: string;
  /** Field the error names, relative to the object the rule sits on (default: the object). */
  field?: string;
  /** Kubernetes error reason: Required value for a missing field, Invalid value otherwise. */
  reason?: "FieldValueRequired" | "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueDuplicate";
  /** The same rule in TypeScript; true when the value is valid. */
  holds: (value: T) => boolean;
}

export interface CelValidation {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: string;
}

export const CEL_KEY = "x-kubernetes-validations";

/** Attaches a cross-field rule: a zod refinement and the matching CEL rule for the CRD. */
export function withRule<S extends z.ZodType>(schema: S, rule: CrossFieldRule<z.output<S>>): S {
  const previous = (z.globalRegistry.get(schema)?.[CEL_KEY] as CelValidation[] | undefined) ?? [];
  const path = rule.field === undefined ? [] : rule.field.split(".");
  const validation: CelValidation = { rule: rule.cel, message: rule.message };
  if (rule.field !== undefined) validation.fieldPath = `.${rule.field}`;
  if (rule.reason !== undefined) validation.reason = rule.reason;
  return schema
    .superRefine((value, ctx) => {
      if (!rule.holds(value as z.output<S>))
        ctx.addIssue({ code: "custom", message: rule.message, path: [...path] }); // zod extends the path in place
    })
    .meta({ [CEL_KEY]: [...previous, validation] });
}

/**
 * A list whose items are identified by `key` (x-kubernetes-list-type: map): the API server
 * rejects duplicate keys and server-side apply merges items by key; zod checks the same.
 */
export function keyedList<I extends z.ZodObject>(item: I, key: keyof z.output<I> & string, maxItems: number) {
  return z
    .array(item)
    .max(maxItems)
    .superRefine((items, ctx) => {
      const seen = new Set<unknown>();
      items.forEach((entry, index) => {
        const value = (entry as Record<string, unknown>)[key];
        if (seen.has(value)) {
          ctx.addIssue({ code: "custom", message: `duplicate ${key} "${String(value)}"`, path: [index] });
        }
        seen.add(value);
      });
    })
    .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key] });
}

/** A list of unique scalars (x-kubernetes-list-type: set). */
export function uniqueList<I extends z.ZodType>(item: I, maxItems: number) {
  return z
    .array(item)
    .max(maxItems)
    .superRefine((items, ctx) => {
      items.forEach((value, index) => {
        if (items.indexOf(value) !== index) {
          ctx.addIssue({ code: "custom", message: `duplicate value "${String(value)}"`, path: [index] });
        }
      });
    })
    .meta({ "x-kubernetes-list-type": "set" });
}

// Patterns are written once and used by zod and by the CRD (the API server runs them with
// Go's RE2, so they stay within the syntax both engines share).
const DNS_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
const DNS_SUBDOMAIN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
const QUANTITY =
  "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$";
const SEMVER =
  "^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(-((0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*)(\\.(0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(\\+([0-9a-zA-Z-]+(\\.[0-9a-zA-Z-]+)*))?$";
const COMPARATOR =
  "(([\\^~]|[<>]=?|=)?v?(0|[1-9]\\d*|[xX*])(\\.(0|[1-9]\\d*|[xX*])){0,2}(-[0-9A-Za-z.-]+)?(\\+[0-9A-Za-z.-]+)?)";
const SEMVER_RANGE = `^\\s*${COMPARATOR}((\\s+|\\s*\\|\\|\\s*|\\s+-\\s+)${COMPARATOR})*\\s*$`;
const HTTP_URL = "^https?://[^\\s/?#]+([/?#]\\S*)?$";

export const dnsLabel = z.string().min(1).max(63).regex(new RegExp(DNS_LABEL), {
  error: "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending alphanumeric",
});

export const dnsSubdomain = z.string().min(1).max(253).regex(new RegExp(DNS_SUBDOMAIN), {
  error:
    "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', starting and ending alphanumeric",
});

/** A Kubernetes resource quantity such as 500m, 1Gi or 2; YAML may give it as a number. */
export const quantity = z
  .union([
    z.string().regex(new RegExp(QUANTITY), { error: "must be a Kubernetes quantity such as 500m or 1Gi" }),
    z.int().min(0),
  ])
  .meta({ "x-kubernetes-int-or-string": true, pattern: QUANTITY });

export const semverVersion = z.string().max(128).regex(new RegExp(SEMVER), {
  error: "must be a semantic version such as 1.4.2",
});

export const semverRange = z
  .string()
  .max(256)
  .regex(new RegExp(SEMVER_RANGE), {
    error: "must be a semver range such as ^1.2.0, ~1.4 or >=1.0.0 <2.0.0",
    abort: true,
  })
  .refine((range) => validRange(range) !== null, {
    error: "is not a semver range this operator can resolve",
  });

export const httpUrl = z.string().max(2048).regex(new RegExp(HTTP_URL), {
  error: "must be an http:// or https:// URL",
});

export const port = z.int().min(1).max(65535);

/** A key of a Secret in the object's own namespace. */
export const secretKeyRef = z
  .strictObject({
    name: dnsSubdomain.describe("Name of the Secret, in the same namespace as the object."),
    key: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[-._a-zA-Z0-9]+$/, { error: "must be a Secret key: letters, digits, '-', '_' and '.'" })
      .describe("Key within the Secret."),
  })
  .describe("A key of a Secret in the same namespace.");

/** A Secret anywhere in the cluster, for cluster-scoped objects. */
export const namespacedSecretKeyRef = secretKeyRef
  .extend({
    namespace: dnsLabel.describe("Namespace of the Secret (the object referring to it is cluster-scoped)."),
  })
  .describe("A key of a Secret in a named namespace.");

/** A standard metav1.Condition, as `kubectl wait --for=condition=X` reads it. */
export const condition = z
  .strictObject({
    type: z
      .string()
      .max(316)
      .regex(
        /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/,
      )
      .describe("Type of the condition, in CamelCase, for example Ready."),
    status: z.enum(["True", "False", "Unknown"]).describe("Status of the condition: True, False or Unknown."),
    observedGeneration: z
      .int()
      .min(0)
      .optional()
      .describe("The .metadata.generation the condition was set for; older means the condition is stale."),
    lastTransitionTime: z.iso
      .datetime({ offset: true })
      .meta({ format: "date-time" })
      .describe("When the condition last changed from one status to another."),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
      .describe("Programmatic identifier of the last transition, in CamelCase."),
    message: z.string().max(32768).describe("Human-readable details of the last transition."),
  })
  .describe("An observation of one aspect of the object's state.");

export const conditions = keyedList(condition, "type", 16).describe(
  "Current state of the object, one entry per condition type.",
);

export const observedGeneration = z
  .int()
  .min(0)
  .optional()
  .describe("The .metadata.generation the status as a whole was computed for.");

/** Object metadata as far as validation cares: names are checked, the rest is the API server's. */
export function objectMeta(scope: "Namespaced" | "Cluster") {
  const shape = {
    name: dnsSubdomain.describe("Name of the object."),
    namespace:
      scope === "Namespaced"
        ? dnsLabel.optional()
        : z.never({ error: "must not be set: this kind is cluster-scoped" }).optional(),
  };
  return z.looseObject(shape);
}
