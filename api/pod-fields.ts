// Kubernetes pod fields an AgentType passes through to its pods (resources, environment
// sources, tolerations, node selector, affinity, security contexts), checked as the API server checks them in a
// pod (pkg/apis/core/validation), in zod and in the CRD alike: an AgentType the API server
// accepts is one whose Deployment or StatefulSet it accepts too. Where Kubernetes allows more
// than an agent can use (extended resources, matchLabelKeys), the schema offers less.
import * as z from "zod";
import {
  boundedQuantity,
  dnsLabel,
  dnsSubdomain,
  LABEL_KEY,
  LABEL_KEY_LENGTHS,
  labelKey,
  labelMap,
  labelValue,
  QUALIFIED_NAME,
  SECRET_KEY,
  uniqueList,
  withRule,
} from "./common.ts";
import { quantityAtMost, quantityAtMostCel } from "./quantity.ts";

// --- resources -------------------------------------------------------------------------

const cpu = boundedQuantity({
  min: "1m",
  max: "1024",
  message: "must be a CPU quantity from 1m to 1024 (cores), such as 250m or 2",
});
const memory = boundedQuantity({
  min: "4Mi",
  max: "1Ti",
  message: "must be a memory size from 4Mi to 1Ti, such as 256Mi or 2Gi",
});
const ephemeralStorage = boundedQuantity({
  min: "1Mi",
  max: "1Ti",
  message: "must be a storage size from 1Mi to 1Ti, such as 512Mi or 10Gi",
});

const resourceList = z
  .strictObject({
    cpu: cpu.optional().describe("CPU in cores; 250m is a quarter of a core."),
    memory: memory.optional().describe("Memory in bytes, such as 256Mi or 1Gi."),
    "ephemeral-storage": ephemeralStorage
      .optional()
      .describe("Local scratch space: the container's writable layer, its logs and emptyDir volumes."),
  })
  .describe("Amounts of cpu, memory and ephemeral-storage; extended resources such as GPUs are not offered.");

type ResourceName = keyof z.output<typeof resourceList>;
type Resources = { requests?: z.output<typeof resourceList>; limits?: z.output<typeof resourceList> };

/** CEL names a field with '-' with the dash escaped. */
const celField = (name: string) => name.replaceAll("-", "__dash__");

function requestWithinLimit<S extends z.ZodType<Resources>>(schema: S, name: ResourceName): S {
  const field = celField(name);
  return withRule(schema, {
    cel: `!has(self.requests) || !has(self.limits) || !has(self.requests.${field}) || !has(self.limits.${field}) || ${quantityAtMostCel(`self.requests.${field}`, `self.limits.${field}`)}`,
    message: `requests.${name} must not exceed limits.${name}`,
    field: `requests.${name}`,
    holds: (r) => {
      const request = r.requests?.[name];
      const limit = r.limits?.[name];
      return request === undefined || limit === undefined || quantityAtMost(request, limit);
    },
  });
}

/** A container's compute resources, as in a Kubernetes container: each request within its limit. */
export const resources = (["cpu", "memory", "ephemeral-storage"] as const).reduce(
  requestWithinLimit,
  z
    .strictObject({
      requests: resourceList.optional().describe("Minimum resources the scheduler reserves."),
      limits: resourceList.optional().describe("Maximum resources the container may use."),
    })
    .describe("Compute resources of the container, as in a Kubernetes container."),
);

/** The sidecar's resources: below this memory limit its Node process cannot start. */
export const SIDECAR_MIN_MEMORY_LIMIT = "64Mi";

export const sidecarResources = withRule(resources, {
  cel: `!has(self.limits) || !has(self.limits.memory) || !isQuantity(string(self.limits.memory)) || quantity(string(self.limits.memory)).compareTo(quantity("${SIDECAR_MIN_MEMORY_LIMIT}")) >= 0`,
  message: `limits.memory of the sidecar must be at least ${SIDECAR_MIN_MEMORY_LIMIT}: its Node process needs that much`,
  field: "limits.memory",
  holds: (r) => r.limits?.memory === undefined || quantityAtMost(SIDECAR_MIN_MEMORY_LIMIT, r.limits.memory),
});

// --- environment -------------------------------------------------------------------------

const keySelector = (what: "ConfigMap" | "Secret") =>
  z
    .strictObject({
      name: dnsSubdomain.describe(`Name of the ${what}, in the AgentType's namespace.`),
      key: z
        .string()
        .min(1)
        .max(253)
        .regex(new RegExp(SECRET_KEY), {
          error: `must be a ${what} key: letters, digits, '-', '_' and '.', not '.' or '..' and not starting with '..'`,
        })
        .describe(`Key within the ${what}.`),
      optional: z
        .boolean()
        .optional()
        .describe(
          `When true, a missing ${what} or key leaves the variable unset instead of failing the pod.`,
        ),
    })
    .describe(`A key of a ${what}.`);

// The fields of the pod the downward API offers to environment variables; labels and
// annotations by key only (an annotation key's prefix may have capitals: it is compared in
// lower case).
const subscript = (prefixLabel: string) => `\\['(${prefixLabel}(\\.${prefixLabel})*/)?${QUALIFIED_NAME}'\\]`;
const FIELD_PATH = [
  "^(metadata\\.(name|namespace|uid)",
  "spec\\.(nodeName|serviceAccountName)",
  "status\\.(hostIPs?|podIPs?)",
  `metadata\\.labels${subscript("[a-z0-9]([-a-z0-9]*[a-z0-9])?")}`,
  `metadata\\.annotations${subscript("[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?")})$`,
].join("|");
const FIELD_PATH_LENGTHS = "^([^[]*|[^[]*\\['([^/']{1,253}/)?[^/']{1,63}'\\])$";

const fieldRef = z
  .strictObject({
    apiVersion: z.enum(["v1"]).optional().describe("Version of the pod schema fieldPath is in: v1."),
    fieldPath: z
      .string()
      .min(1)
      .max(400)
      .regex(new RegExp(FIELD_PATH), {
        error:
          "must be a pod field the downward API offers to environment variables: metadata.name, metadata.namespace, metadata.uid, metadata.labels['KEY'], metadata.annotations['KEY'], spec.nodeName, spec.serviceAccountName, status.hostIP, status.hostIPs, status.podIP or status.podIPs",
      })
      .regex(new RegExp(FIELD_PATH_LENGTHS), {
        error:
          "must name a label or annotation key whose prefix has at most 253 characters and whose name at most 63",
      })
      .describe("Field of the pod, such as metadata.name or metadata.labels['app']."),
  })
  .describe("A field of the agent's pod.");

const CPU_DIVISORS = ["1m", "1"];
const BYTE_DIVISORS = ["1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"];

const resourceFieldRef = withRule(
  z
    .strictObject({
      containerName: z
        .enum(["agent"])
        .optional()
        .describe("Container whose resources are read: the agent's own (agent), the default."),
      resource: z
        .enum([
          "limits.cpu",
          "limits.memory",
          "limits.ephemeral-storage",
          "requests.cpu",
          "requests.memory",
          "requests.ephemeral-storage",
        ])
        .describe("Resource to read, such as limits.memory."),
      divisor: z
        .union([z.string().max(8), z.int()])
        .meta({ "x-kubernetes-int-or-string": true, maxLength: 8 })
        .optional()
        .describe(
          "Unit of the value: 1m or 1 for cpu; 1, 1k, 1Ki, 1M, 1Mi and so on for memory and storage.",
        ),
    })
    .describe("A resource of the agent container."),
  {
    cel: `!has(self.divisor) || (self.resource.endsWith('.cpu') ? string(self.divisor) in ${JSON.stringify(CPU_DIVISORS)} : string(self.divisor) in ${JSON.stringify(BYTE_DIVISORS)})`,
    message: `divisor must be ${CPU_DIVISORS.join(" or ")} for cpu, one of ${BYTE_DIVISORS.join(", ")} for memory and storage`,
    field: "divisor",
    holds: (r) =>
      r.divisor === undefined ||
      (r.resource.endsWith(".cpu") ? CPU_DIVISORS : BYTE_DIVISORS).includes(String(r.divisor)),
  },
);

const ENV_SOURCES = ["fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef"] as const;

export const envVarSource = withRule(
  z
    .strictObject({
      fieldRef: fieldRef.optional(),
      resourceFieldRef: resourceFieldRef.optional(),
      configMapKeyRef: keySelector("ConfigMap").optional(),
      secretKeyRef: keySelector("Secret").optional(),
    })
    .describe(
      "Source of an environment variable's value, as a Kubernetes EnvVarSource: exactly one of its fields.",
    ),
  {
    cel: `${ENV_SOURCES.map((s) => `(has(self.${s}) ? 1 : 0)`).join(" + ")} == 1`,
    message: `exactly one of ${ENV_SOURCES.join(", ")} must be set`,
    holds: (source) => ENV_SOURCES.filter((s) => source[s] !== undefined).length === 1,
  },
);

// --- placement ---------------------------------------------------------------------------

const emptyOr = (pattern: string) => `^$|${pattern}`;

/** A taint key a toleration names; empty matches every key. */
const tolerationKey = z
  .string()
  .max(317)
  .regex(new RegExp(emptyOr(LABEL_KEY)), {
    error:
      "must be a label key: an optional DNS subdomain prefix and '/', then a name of letters, digits, '-', '_' and '.', starting and ending alphanumeric",
  })
  .regex(new RegExp(emptyOr(LABEL_KEY_LENGTHS)), {
    error: "must be a label key whose prefix has at most 253 characters and whose name at most 63",
  });

type Toleration = {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
  tolerationSeconds?: number;
};

export const toleration = withRule(
  withRule(
    withRule(
      z
        .strictObject({
          key: tolerationKey
            .optional()
            .describe("Taint key the toleration applies to; empty matches all keys."),
          operator: z.enum(["Exists", "Equal"]).optional().describe("Exists or Equal (the default)."),
          value: labelValue.optional().describe("Taint value to match with operator Equal."),
          effect: z
            .enum(["NoSchedule", "PreferNoSchedule", "NoExecute"])
            .optional()
            .describe("Taint effect to match; empty matches all effects."),
          tolerationSeconds: z
            .int()
            .optional()
            .describe("How long a NoExecute taint is tolerated before the pod is evicted."),
        })
        .describe("A Kubernetes toleration."),
      {
        cel: "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
        message: "operator must be Exists when key is empty (which tolerates every taint)",
        field: "operator",
        holds: (t: Toleration) => (t.key ?? "") !== "" || t.operator === "Exists",
      },
    ),
    {
      cel: "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
      message: "tolerationSeconds applies only to effect NoExecute",
      field: "effect",
      holds: (t: Toleration) => t.tolerationSeconds === undefined || t.effect === "NoExecute",
    },
  ),
  {
    cel: "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
    message: "value must be empty when operator is Exists",
    field: "value",
    holds: (t: Toleration) => t.operator !== "Exists" || (t.value ?? "") === "",
  },
);

export const nodeSelector = labelMap(64).describe("Node labels the agent pods must match.");

type Requirement = { operator: string; values?: string[] | undefined };

/** The values rule of a selector requirement: In and NotIn need values, Exists and DoesNotExist none. */
function valuesRule<S extends z.ZodType<Requirement>>(schema: S): S {
  return withRule(
    withRule(schema, {
      cel: "!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",
      message: "values must be given when operator is In or NotIn",
      field: "values",
      reason: "FieldValueRequired",
      holds: (r) => !["In", "NotIn"].includes(r.operator) || (r.values?.length ?? 0) > 0,
    }),
    {
      cel: "!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0",
      message: "values must be empty when operator is Exists or DoesNotExist",
      field: "values",
      reason: "FieldValueForbidden",
      holds: (r) => !["Exists", "DoesNotExist"].includes(r.operator) || (r.values?.length ?? 0) === 0,
    },
  );
}

const labelSelector = z
  .strictObject({
    matchLabels: labelMap(64).optional().describe("Labels a pod must have, each with this value."),
    matchExpressions: z
      .array(
        valuesRule(
          z
            .strictObject({
              key: labelKey.describe("Label key the requirement applies to."),
              operator: z
                .enum(["In", "NotIn", "Exists", "DoesNotExist"])
                .describe("In, NotIn, Exists or DoesNotExist."),
              values: z.array(labelValue).max(32).optional().describe("Label values, for In and NotIn."),
            })
            .describe("A label requirement."),
        ),
      )
      .max(16)
      .optional()
      .describe("Label requirements, all of which a pod must meet."),
  })
  .describe("A Kubernetes label selector.");

// A whole number that is also a label value (so no sign), as Gt and Lt compare them.
const INTEGER = "^[0-9]{1,18}$";

const nodeSelectorRequirement = withRule(
  valuesRule(
    z
      .strictObject({
        key: labelKey.describe("Node label key the requirement applies to."),
        operator: z
          .enum(["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"])
          .describe("In, NotIn, Exists, DoesNotExist, Gt or Lt."),
        values: z
          .array(labelValue)
          .max(32)
          .optional()
          .describe("Label values: for In and NotIn, one or more; for Gt and Lt, one whole number."),
      })
      .describe("A node label requirement."),
  ),
  {
    cel: `!(self.operator in ['Gt', 'Lt']) || (has(self.values) && size(self.values) == 1 && self.values[0].matches(${JSON.stringify(INTEGER)}))`,
    message: "values must be one whole number when operator is Gt or Lt",
    field: "values",
    holds: (r) =>
      !["Gt", "Lt"].includes(r.operator) ||
      (r.values?.length === 1 && new RegExp(INTEGER).test(r.values[0] ?? "")),
  },
);

const nodeFieldRequirement = withRule(
  z
    .strictObject({
      key: z.enum(["metadata.name"]).describe("Node field the requirement applies to: metadata.name."),
      operator: z.enum(["In", "NotIn"]).describe("In or NotIn."),
      values: z.array(dnsSubdomain).max(1).optional().describe("One node name."),
    })
    .describe("A node field requirement."),
  {
    cel: "has(self.values) && size(self.values) == 1",
    message: "values must be exactly one node name",
    field: "values",
    holds: (r) => r.values?.length === 1,
  },
);

const nodeSelectorTerm = z
  .strictObject({
    matchExpressions: z
      .array(nodeSelectorRequirement)
      .max(16)
      .optional()
      .describe("Node label requirements, all of which a node must meet."),
    matchFields: z
      .array(nodeFieldRequirement)
      .max(4)
      .optional()
      .describe("Node field requirements, all of which a node must meet."),
  })
  .describe("Node requirements, all of which a node must meet.");

const weight = z.int().min(1).max(100).describe("Weight of the preference, from 1 to 100.");

const nodeAffinity = z
  .strictObject({
    requiredDuringSchedulingIgnoredDuringExecution: z
      .strictObject({
        nodeSelectorTerms: z
          .array(nodeSelectorTerm)
          .min(1)
          .max(8)
          .describe("Terms of which a node must meet at least one."),
      })
      .optional()
      .describe("Nodes the pods may run on."),
    preferredDuringSchedulingIgnoredDuringExecution: z
      .array(z.strictObject({ weight, preference: nodeSelectorTerm }).describe("A weighted node preference."))
      .max(16)
      .optional()
      .describe("Nodes the scheduler prefers, by weight."),
  })
  .describe("Node affinity of the agent pods.");

const podAffinityTerm = z
  .strictObject({
    labelSelector: labelSelector.optional().describe("Pods this term is about; none when unset."),
    namespaceSelector: labelSelector
      .optional()
      .describe("Namespaces whose pods count, by label; with namespaces, the union of both."),
    namespaces: z
      .array(dnsLabel)
      .max(32)
      .optional()
      .describe("Namespaces whose pods count; the pod's own when neither this nor namespaceSelector is set."),
    topologyKey: labelKey.describe(
      "Node label whose value defines a topology domain, such as kubernetes.io/hostname.",
    ),
  })
  .describe("Pods (by label and namespace) a pod should or should not run near, within a topology domain.");

const podAffinity = (what: string) =>
  z
    .strictObject({
      requiredDuringSchedulingIgnoredDuringExecution: z
        .array(podAffinityTerm)
        .max(8)
        .optional()
        .describe(`Terms every pod must meet (${what}).`),
      preferredDuringSchedulingIgnoredDuringExecution: z
        .array(z.strictObject({ weight, podAffinityTerm }).describe("A weighted pod affinity term."))
        .max(16)
        .optional()
        .describe(`Terms the scheduler prefers, by weight (${what}).`),
    })
    .describe(`Pod ${what} of the agent pods.`);

export const affinity = z
  .strictObject({
    nodeAffinity: nodeAffinity.optional(),
    podAffinity: podAffinity("affinity").optional(),
    podAntiAffinity: podAffinity("anti-affinity").optional(),
  })
  .describe("Kubernetes affinity of the agent pods, checked as a pod's is (kubernetes runtime).");

// --- security context ----------------------------------------------------------------------

// Kubernetes checks a pod's user and group IDs as 0 to 2^31-1 (IsValidUserID, IsValidGroupID).
const MAX_ID = 2_147_483_647;
const userId = z.int().min(0).max(MAX_ID).describe("A user ID, from 0 to 2147483647; 0 is root.");
const groupId = z.int().min(0).max(MAX_ID).describe("A group ID, from 0 to 2147483647.");

// A relative path without a '..' element, as Kubernetes checks a localhost profile (validateLocal
// DescendingPath), written without lookahead so that RE2 and JavaScript read it alike.
const PATH_ELEMENT = "(\\.|[^/.][^/]*|\\.[^/.][^/]*|\\.\\.[^/]+)";
const DESCENDING_PATH = `^${PATH_ELEMENT}(/(${PATH_ELEMENT})?)*$`;

type Seccomp = { type: string; localhostProfile?: string | undefined };

const seccompProfile = withRule(
  withRule(
    z
      .strictObject({
        type: z
          .enum(["RuntimeDefault", "Localhost", "Unconfined"])
          .describe(
            "RuntimeDefault (the container runtime's profile), Localhost (a profile file on the node) or Unconfined.",
          ),
        localhostProfile: z
          .string()
          .min(1)
          .max(255)
          .regex(new RegExp(DESCENDING_PATH), {
            error: "must be a relative path without '..', under the kubelet's seccomp directory",
          })
          .optional()
          .describe("Profile file under the kubelet's seccomp directory; only with type Localhost."),
      })
      .describe("A seccomp profile, as in a Kubernetes security context."),
    {
      cel: "self.type != 'Localhost' || has(self.localhostProfile)",
      message: "localhostProfile must be set when type is Localhost",
      field: "localhostProfile",
      reason: "FieldValueRequired",
      holds: (p: Seccomp) => p.type !== "Localhost" || p.localhostProfile !== undefined,
    },
  ),
  {
    cel: "self.type == 'Localhost' || !has(self.localhostProfile)",
    message: "localhostProfile can only be set when type is Localhost",
    field: "localhostProfile",
    reason: "FieldValueForbidden",
    holds: (p: Seccomp) => p.type === "Localhost" || p.localhostProfile === undefined,
  },
);

const capability = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Z][A-Z0-9_]*$/, {
    error: "must be a Linux capability name in capitals, such as NET_BIND_SERVICE or ALL",
  });

// Kubernetes refuses CAP_SYS_ADMIN beside allowPrivilegeEscalation false, which the profiles
// set; an agent has no business administering its node, so it is not offered at all.
const SYS_ADMIN = ["SYS_ADMIN", "CAP_SYS_ADMIN"];

const capabilities = z
  .strictObject({
    add: withRule(uniqueList(capability, 64), {
      cel: `!self.exists(c, c in ${JSON.stringify(SYS_ADMIN)})`,
      message: "SYS_ADMIN is not offered: it is root on the node in all but name",
      reason: "FieldValueForbidden",
      holds: (add) => !add.some((c) => SYS_ADMIN.includes(c)),
    })
      .optional()
      .describe("Capabilities to add to the runtime's default set."),
    drop: uniqueList(capability, 64)
      .optional()
      .describe("Capabilities to remove from the runtime's default set; ALL removes every one."),
  })
  .describe("Linux capabilities of the agent container.");

type Identity = { runAsUser?: number | undefined; runAsNonRoot?: boolean | undefined };

/** runAsNonRoot and runAsUser 0 together: the kubelet refuses to start the container. */
function notRootAndNonRoot<S extends z.ZodType<Identity>>(schema: S): S {
  return withRule(schema, {
    cel: "!(has(self.runAsNonRoot) && self.runAsNonRoot && has(self.runAsUser) && self.runAsUser == 0)",
    message: "runAsUser 0 is root, which runAsNonRoot true forbids: the kubelet would refuse to start it",
    field: "runAsUser",
    holds: (c) => !(c.runAsNonRoot === true && c.runAsUser === 0),
  });
}

/**
 * The agent container's security context, as Kubernetes checks it. Offered less: no
 * privileged, procMount, SELinux, AppArmor or Windows options.
 */
export const containerSecurityContext = notRootAndNonRoot(
  z
    .strictObject({
      runAsUser: userId.optional().describe("User ID the agent runs as; the image's USER when unset."),
      runAsGroup: groupId.optional().describe("Primary group ID of the agent; the image's when unset."),
      runAsNonRoot: z
        .boolean()
        .optional()
        .describe("When true, the kubelet refuses to start the agent as root (uid 0)."),
      readOnlyRootFilesystem: z
        .boolean()
        .optional()
        .describe("When true, the agent cannot write its image's filesystem, only its volumes."),
      allowPrivilegeEscalation: z
        .boolean()
        .optional()
        .describe("When false, no process of the agent can gain privileges (setuid binaries, no_new_privs)."),
      capabilities: capabilities.optional(),
      seccompProfile: seccompProfile.optional(),
    })
    .describe(
      "Security context of the agent container, as in a Kubernetes container; each field you set replaces the one security.profile would set.",
    ),
);

/** The agent pod's security context, as Kubernetes checks it; offered less as the container's. */
export const podSecurityContext = notRootAndNonRoot(
  z
    .strictObject({
      runAsUser: userId.optional().describe("User ID of the agent when its container sets none."),
      runAsGroup: groupId.optional().describe("Primary group ID of the agent when its container sets none."),
      runAsNonRoot: z
        .boolean()
        .optional()
        .describe(
          "When true, the kubelet refuses to start the agent as root, unless its container says otherwise.",
        ),
      fsGroup: groupId
        .optional()
        .describe("Group that owns the pod's volumes and that every container joins; 65532 when unset."),
      fsGroupChangePolicy: z
        .enum(["OnRootMismatch", "Always"])
        .optional()
        .describe("When the kubelet changes the volumes' ownership to fsGroup: Always, or OnRootMismatch."),
      supplementalGroups: z
        .array(groupId)
        .max(32)
        .optional()
        .describe("Further groups every container of the pod joins."),
      seccompProfile: seccompProfile.optional(),
    })
    .describe(
      "Security context of the agent pod, as in a Kubernetes pod. The operator's own containers keep their restricted settings; fields here apply to the agent where its container sets none.",
    ),
);
