// What a caller asks a driver for, as zod schemas: the single source of the types (inferred
// below) and of the validation a driver runs on every input, so bad input names its field.
import * as z from "zod";
import { formatFieldErrors, parseAs } from "../../api/field-errors.ts";

// Label keys and values as Kubernetes allows them, so labels copied from objects always fit.
const labelKey = z
  .string()
  .max(253)
  .regex(/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/, {
    error: "must be a label key such as agenttype.dev/name",
  });
const labelValue = z
  .string()
  .max(63)
  .regex(/^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/, { error: "must be a label value" });
export const labels = z.record(labelKey, labelValue);

const absolutePath = z
  .string()
  .min(2)
  .max(4096)
  .regex(/^\/[^\0]*$/, { error: "must be an absolute path" })
  .refine((p) => !p.split("/").includes(".."), { error: "must not contain '..'" });

/** A name the driver uses in host paths and backend ids: no slashes, no dots at the start. */
export const objectName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/, {
    error: "must be lower-case letters, digits, '-', '_' or '.'",
  });

export const containerResources = z
  .strictObject({
    /** CPU the container is weighed by against others when the CPU is busy, in millicores (1000 = one core); no cap. */
    cpuRequestMillis: z.int().min(1).max(1_024_000).optional(),
    /** Most CPU the container may use, in millicores: a quota the backend enforces. */
    cpuLimitMillis: z.int().min(1).max(1_024_000).optional(),
    /** Most memory the container may hold. */
    memoryLimitBytes: z
      .int()
      .min(4 * 1024 * 1024)
      .optional(),
  })
  .describe("What the backend gives the container of the CPU and memory: a weight and upper bounds.");

export const securityOptions = z
  .strictObject({
    runAsUser: z
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .optional(),
    runAsGroup: z
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .optional(),
    readOnlyRootFilesystem: z.boolean().default(false),
    noNewPrivileges: z.boolean().default(true),
    /** Capabilities dropped; `ALL` drops every one. */
    dropCapabilities: z.array(z.string().regex(/^[A-Z_]+$/)).default([]),
    /** The backend's default seccomp profile (RuntimeDefault), or none. */
    seccomp: z.enum(["runtime-default", "unconfined"]).default("runtime-default"),
  })
  .describe("Process identity and confinement.");

export const mountConfig = z.strictObject({
  /** Volume whose directory is mounted (see VolumeConfig). */
  volume: objectName,
  /** Directory inside the volume; the volume's root when unset. */
  subPath: z
    .string()
    .regex(/^[^/\0][^\0]*$/, { error: "must be a relative path" })
    .refine((p) => !p.split("/").includes(".."), { error: "must not contain '..'" })
    .optional(),
  containerPath: absolutePath,
  readOnly: z.boolean().default(false),
});

export const containerConfig = z
  .strictObject({
    /** Unique within its group; with the group it names the container on the host. */
    name: objectName,
    image: z.string().min(1).max(1024),
    /** Replaces the image's entrypoint when set. */
    command: z.array(z.string()).optional(),
    /** Replaces the image's arguments when set. */
    args: z.array(z.string()).optional(),
    env: z
      .array(
        z.strictObject({
          name: z.string().regex(/^[^=\0]+$/, { error: "must not contain '='" }),
          value: z.string(),
        }),
      )
      .default([]),
    workingDir: absolutePath.optional(),
    mounts: z.array(mountConfig).default([]),
    labels: labels.default({}),
    resources: containerResources.default({}),
    security: securityOptions.default({
      readOnlyRootFilesystem: false,
      noNewPrivileges: true,
      dropCapabilities: [],
      seccomp: "runtime-default",
    }),
    /**
     * A terminal and an open stdin for the container, and a console on the host that holds them
     * (drivers that have consoles: `ContainerDriver.attach`).
     */
    terminal: z.boolean().default(false),
    /** Restarts of this container so far; a new attempt is a new container on the host. */
    attempt: z.int().min(0).max(1_000_000).default(0),
  })
  .describe("One container of a group.");

export const groupConfig = z
  .strictObject({
    /** Unique on the host; the group's containers share its network namespace. */
    name: objectName,
    hostname: z
      .string()
      .max(63)
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
      .optional(),
    labels: labels.default({}),
    attempt: z.int().min(0).max(1_000_000).default(0),
  })
  .describe("A pod-shaped group: containers that share one network namespace.");

export const volumeFile = z.strictObject({
  /** Path relative to the volume's root. */
  path: z
    .string()
    .regex(/^[^/\0][^\0]*$/, { error: "must be a relative path" })
    .refine((p) => !p.split("/").includes(".."), { error: "must not contain '..'" }),
  content: z.string(),
  mode: z.int().min(0).max(0o777).default(0o400),
});

export const volumeConfig = z
  .strictObject({
    name: objectName,
    labels: labels.default({}),
    /** Owner of the directory and its files: the uid the container that mounts it runs as. */
    uid: z
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(0),
    gid: z
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(0),
    /** Mode of the volume's directories. 0700: nobody but the owner and root. */
    mode: z.int().min(0).max(0o777).default(0o700),
    files: z.array(volumeFile).default([]),
    /** Empty directories to create (relative paths), for example a writable /tmp. */
    directories: z
      .array(
        z
          .string()
          .regex(/^[^/\0][^\0]*$/)
          .refine((p) => !p.split("/").includes("..")),
      )
      .default([]),
  })
  .describe("A directory on the host that containers mount.");

export const networkConfig = z
  .strictObject({
    name: objectName,
    labels: labels.default({}),
    subnet: z
      .string()
      .regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/)
      .optional(),
  })
  .describe("A network the backend manages, for backends that have them.");

/** Every label must match exactly (the equality-based selector of Kubernetes). */
export const labelFilter = labels;

export type Labels = z.output<typeof labels>;
export type ContainerResources = z.output<typeof containerResources>;
export type SecurityOptions = z.output<typeof securityOptions>;
export type MountConfig = z.output<typeof mountConfig>;
export type ContainerConfig = z.output<typeof containerConfig>;
export type ContainerConfigInput = z.input<typeof containerConfig>;
export type GroupConfig = z.output<typeof groupConfig>;
export type GroupConfigInput = z.input<typeof groupConfig>;
export type VolumeConfig = z.output<typeof volumeConfig>;
export type VolumeConfigInput = z.input<typeof volumeConfig>;
export type NetworkConfig = z.output<typeof networkConfig>;
export type LabelFilter = z.output<typeof labelFilter>;

/** Thrown for input that does not fit a schema; names every offending field. */
export class InvalidConfigError extends Error {
  constructor(what: string, details: string) {
    super(`invalid ${what}:\n${details}`);
    this.name = "InvalidConfigError";
  }
}

/** Parses `input` with `schema`, or throws an InvalidConfigError naming each bad field. */
export function parseConfig<S extends z.ZodType>(schema: S, what: string, input: unknown): z.output<S> {
  const result = parseAs(schema, input);
  if (!result.ok) throw new InvalidConfigError(what, formatFieldErrors(result.errors));
  return result.value;
}
