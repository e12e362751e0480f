// Field schemas shared by the three kinds, and the two helpers that attach Kubernetes
// extensions (CEL rules, list types) so that zod and the generated CRD enforce the same rule.
import * as z from "zod";
import { type QuantityBounds, quantityWithin, quantityWithinCel } from "./quantity.ts";

export const GROUP = "agenttype.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

/** A point in time as Kubernetes writes one (RFC 3339), format date-time in the CRD. */
export const dateTime = z.iso.datetime({ offset: true }).meta({ format: "date-time" });

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

/** The CEL rules already attached to `schema`, to which another is added. */
function celRules(schema: z.ZodType): CelValidation[] {
  return (z.globalRegistry.get(schema)?.[CEL_KEY] as CelValidation[] | undefined) ?? [];
}

/** Attaches a cross-field rule: a zod refinement and the matching CEL rule for the CRD. */
export function withRule<S extends z.ZodType>(schema: S, rule: CrossFieldRule<z.output<S>>): S {
  const path = rule.field === undefined ? [] : rule.field.split(".");
  const validation: CelValidation = { rule: rule.cel, message: rule.message };
  // A field whose name is no identifier (ephemeral-storage) is a subscript in a fieldPath.
  if (rule.field !== undefined)
    validation.fieldPath = path
      .map((f) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(f) ? `.${f}` : `['${f}']`))
      .join("");
  if (rule.reason !== undefined) validation.reason = rule.reason;
  return schema
    .superRefine((value, ctx) => {
      if (!rule.holds(value as z.output<S>))
        ctx.addIssue({ code: "custom", message: rule.message, path: [...path] }); // zod extends the path in place
    })
    .meta({ [CEL_KEY]: [...celRules(schema), validation] });
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

// Patterns are written once and used by zod and by the CRD, where the generator turns each
// into a CEL rule carrying the same message in words (the API server runs it with Go's RE2,
// so they stay within the syntax both engines share, and avoid \s, \S and \w, whose meaning
// differs between them).
const DNS_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
export const DNS_1035_LABEL = "^[a-z]([-a-z0-9]*[a-z0-9])?$";
export const DNS_SUBDOMAIN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
const SEMVER =
  "^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-((0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(\\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?(\\+([0-9a-zA-Z-]+(\\.[0-9a-zA-Z-]+)*))?$";

// A semver range, in the subset whose meaning nobody misreads: wildcards only at the end of a
// version; `>` and `<=` (which read 1.2 as "all of 1.2.x") and the top of a hyphen range only
// with a full version; single spaces or ` || ` between comparators.
const NR = "(0|[1-9][0-9]*)";
const PRERELEASE_ID = "(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)";
const FULL_VERSION = `v?${NR}\\.${NR}\\.${NR}(-${PRERELEASE_ID}(\\.${PRERELEASE_ID})*)?(\\+[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?`;
const X = "[xX*]";
const PARTIAL_VERSION = `(${FULL_VERSION}|v?${NR}\\.${NR}(\\.${X})?|v?${NR}(\\.${X}(\\.${X})?)?|${X}(\\.${X}(\\.${X})?)?)`;
const COMPARATOR = `((>|<=)${FULL_VERSION}|(>=|<|=|~|\\^)?${PARTIAL_VERSION})`;
const COMPARATOR_SET = `(${PARTIAL_VERSION} +- +${FULL_VERSION}|${COMPARATOR}( +${COMPARATOR})*)`;
export const SEMVER_RANGE = `^ *${COMPARATOR_SET}( *\\|\\| *${COMPARATOR_SET})* *$`;

// An http(s) URL: a host name (whose last label starts with a letter, so no parser reads it as
// an IPv4 address), an IPv4 address without leading zeros or an IPv6 address in brackets; a
// port from 1 to 65535; a path, query and fragment of visible ASCII.
const HOST_NAME = "([A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?\\.)*[A-Za-z]([-A-Za-z0-9]*[A-Za-z0-9])?\\.?";
const OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const IPV4 = `(${OCTET}\\.){3}${OCTET}`;
const H16 = "[0-9a-fA-F]{1,4}";
const IPV6 = [
  `(${H16}:){7}${H16}`,
  `(${H16}:){1,7}:`,
  `(${H16}:){1,6}:${H16}`,
  `(${H16}:){1,5}(:${H16}){1,2}`,
  `(${H16}:){1,4}(:${H16}){1,3}`,
  `(${H16}:){1,3}(:${H16}){1,4}`,
  `(${H16}:){1,2}(:${H16}){1,5}`,
  `${H16}:(:${H16}){1,6}`,
  `:((:${H16}){1,7}|:)`,
].join("|");
const PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})";
/** Path, query and fragment: visible ASCII; anything else is percent-encoded. */
export const URL_PATH = "[!-~]*";
export const HTTP_URL = `^https?://(${HOST_NAME}|${IPV4}|\\[(${IPV6})\\])(:${PORT})?([/?#]${URL_PATH})?$`;

// A label key (a qualified name with an optional DNS subdomain prefix) and a label value.
export const QUALIFIED_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
export const LABEL_KEY = `^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?${QUALIFIED_NAME}$`;
/** A Secret or ConfigMap key as the API server checks it: not "." or "..", not starting with "..". */
export const SECRET_KEY = "^\\.?[-_a-zA-Z0-9][-._a-zA-Z0-9]*$";
export const LABEL_KEY_LENGTHS = "^([^/]{1,253}/)?[^/]{1,63}$";
const LABEL_VALUE = `^(${QUALIFIED_NAME})?$`;

export const dnsLabel = z.string().min(1).max(63).regex(new RegExp(DNS_LABEL), {
  error: "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending alphanumeric",
});

/** What a Service name must be (RFC 1035): a DNS label that starts with a letter. */
export const dns1035Label = z.string().min(1).max(63).regex(new RegExp(DNS_1035_LABEL), {
  error:
    "must be a DNS-1035 label: lower-case letters, digits and '-', starting with a letter and ending alphanumeric",
});

export const dnsSubdomain = z.string().min(1).max(253).regex(new RegExp(DNS_SUBDOMAIN), {
  error:
    "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', starting and ending alphanumeric",
});

export const semverVersion = z.string().max(128).regex(new RegExp(SEMVER), {
  error: "must be a semantic version such as 1.4.2",
});

export const semverRange = z.string().max(256).regex(new RegExp(SEMVER_RANGE), {
  error:
    "must be a semver range such as ^1.2.0, ~1.4, 1.x or >=1.0.0 <2.0.0: wildcards only at the end, a full version after > or <= and at the top of a hyphen range, comparators separated by one space or ||",
});

export const httpUrl = z.string().max(2048).regex(new RegExp(HTTP_URL), {
  error:
    "must be an http:// or https:// URL: a host name, an IPv4 address or an [IPv6] address, an optional port from 1 to 65535, then an optional path of visible ASCII characters",
});

/** A label key such as app.kubernetes.io/name: an optional DNS subdomain prefix and '/', and a name. */
export const labelKey = z
  .string()
  .min(1)
  .max(317)
  .regex(new RegExp(LABEL_KEY), {
    error:
      "must be a label key: an optional DNS subdomain prefix and '/', then a name of letters, digits, '-', '_' and '.', starting and ending alphanumeric",
  })
  .regex(new RegExp(LABEL_KEY_LENGTHS), {
    error: "must be a label key whose prefix has at most 253 characters and whose name at most 63",
  });

/** A label value: empty, or at most 63 letters, digits, '-', '_' and '.', starting and ending alphanumeric. */
export const labelValue = z.string().max(63).regex(new RegExp(LABEL_VALUE), {
  error:
    "must be a label value: at most 63 letters, digits, '-', '_' and '.', starting and ending alphanumeric, or empty",
});

export const port = z.int().min(1).max(65535);

/**
 * A map of string keys to values, both checked. The keys are checked by a rule on the map
 * (a CRD cannot type map keys); `maxProperties` bounds the CEL cost of that rule.
 */
export function stringMap<V extends z.ZodType>(
  key: { patterns: string[]; message: string; maxLength: number },
  value: V,
  maxProperties: number,
) {
  const res = key.patterns.map((p) => new RegExp(p));
  const matches = key.patterns.map((p) => ` && k.matches(${JSON.stringify(p)})`).join("");
  return withRule(
    z
      .record(z.string(), value)
      .superRefine((map, ctx) => {
        if (Object.keys(map).length > maxProperties)
          ctx.addIssue({ code: "custom", message: `must have at most ${maxProperties} entries` });
      })
      .meta({ maxProperties }),
    {
      cel: `self.all(k, k.size() <= ${key.maxLength}${matches})`,
      message: `every key ${key.message}`,
      holds: (map) =>
        Object.keys(map).every((k) => k.length <= key.maxLength && res.every((re) => re.test(k))),
    },
  );
}

/** Labels, as in a nodeSelector or a label selector's matchLabels. */
export function labelMap(maxProperties: number) {
  return stringMap(
    {
      patterns: [LABEL_KEY, LABEL_KEY_LENGTHS],
      message:
        "must be a label key: an optional DNS subdomain prefix of at most 253 characters and '/', then a name of at most 63 letters, digits, '-', '_' and '.', starting and ending alphanumeric",
      maxLength: 317,
    },
    labelValue,
    maxProperties,
  );
}

/**
 * A Kubernetes quantity (such as 500m or 1Gi; YAML may give it as a number) within bounds,
 * read as the API server reads it. `message` says what is expected, in words.
 */
export function boundedQuantity(bounds: QuantityBounds & { message: string }) {
  return withRule(
    z.union([z.string().max(QUANTITY_MAX_LENGTH), z.int()], { error: bounds.message }).meta({
      "x-kubernetes-int-or-string": true,
      maxLength: QUANTITY_MAX_LENGTH,
    }),
    {
      cel: quantityWithinCel("self", bounds),
      message: bounds.message,
      holds: (value) => quantityWithin(value, bounds),
    },
  );
}

const QUANTITY_MAX_LENGTH = 64;

/** Any quantity of at least zero, for amounts the operator reports rather than uses. */
export const nonNegativeQuantity = boundedQuantity({
  min: "0",
  max: "8E",
  message: "must be a quantity of at least 0, such as 500m or 1Gi",
});

/** A key of a Secret in the object's own namespace. */
export const secretKeyRef = z
  .strictObject({
    name: dnsSubdomain.describe("Name of the Secret, in the same namespace as the object."),
    key: z
      .string()
      .min(1)
      .max(253)
      .regex(new RegExp(SECRET_KEY), {
        error:
          "must be a Secret key: letters, digits, '-', '_' and '.', not '.' or '..' and not starting with '..'",
      })
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
        {
          error:
            "must be a condition type such as Ready: an optional DNS subdomain prefix and '/', then a name",
        },
      )
      .describe("Type of the condition, in CamelCase, for example Ready."),
    status: z.enum(["True", "False", "Unknown"]).describe("Status of the condition: True, False or Unknown."),
    observedGeneration: z
      .int()
      .min(0)
      .optional()
      .describe("The .metadata.generation the condition was set for; older means the condition is stale."),
    lastTransitionTime: dateTime.describe("When the condition last changed from one status to another."),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/, {
        error: "must be a reason in CamelCase: letters, digits, '_', ',' and ':', starting with a letter",
      })
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

/**
 * A status whose observedGeneration never goes back, as the API server enforces it (a CEL
 * transition rule): a status computed for an older generation is refused, not stored over a newer
 * one. That is the fence against a replica that lost the leader lease while frozen: a write it
 * had passed its write window for before the freeze leaves the process only when it resumes,
 * after the new leader wrote (ADR 0004). zod cannot check it: the rule needs the stored object.
 */
export function generationNeverGoesBack<S extends z.ZodObject>(status: S): S {
  const rule: CelValidation = {
    rule: "!has(oldSelf.observedGeneration) || (has(self.observedGeneration) && self.observedGeneration >= oldSelf.observedGeneration)",
    message:
      "observedGeneration must not go back: this status was computed for an older generation (a stale writer, such as an operator replica that lost its leader lease)",
    fieldPath: ".observedGeneration",
  };
  return status.meta({ [CEL_KEY]: [...celRules(status), rule] });
}

/**
 * Object metadata as far as validation cares: names are checked, the rest is the API server's.
 * `name` is stricter than a DNS subdomain for a kind whose name is also the name of objects
 * made from it; the CRD carries it too.
 */
export function objectMeta(scope: "Namespaced" | "Cluster", name: z.ZodString = dnsSubdomain) {
  const shape = {
    name: name.describe("Name of the object."),
    namespace:
      scope === "Namespaced"
        ? dnsLabel.optional()
        : z.never({ error: "must not be set: this kind is cluster-scoped" }).optional(),
  };
  return z.looseObject(shape);
}
