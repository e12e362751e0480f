// The AgentTool kind: one version of one tool (an MCP server or an HTTP endpoint) that
// AgentTypes in the same namespace may ask for by name and semver range.
import { Ajv } from "ajv";
import { Ajv2020 } from "ajv/dist/2020.js";
import * as z from "zod";
import {
  conditions,
  dateTime,
  dns1035Label,
  dnsLabel,
  dnsSubdomain,
  generationNeverGoesBack,
  httpUrl,
  objectMeta,
  observedGeneration,
  port,
  secretKeyRef,
  semverVersion,
  URL_PATH,
  uniqueList,
  withRule,
} from "./common.ts";

const serviceRef = z
  .strictObject({
    name: dns1035Label.describe("Name of the Service."),
    namespace: dnsLabel.optional().describe("Namespace of the Service; the AgentTool's own when unset."),
    port: port.describe("Port of the Service."),
    path: z
      .string()
      .max(1024)
      .regex(new RegExp(`^/${URL_PATH}$`), {
        error:
          "must be an absolute path starting with / of visible ASCII characters (percent-encode the rest)",
      })
      .default("/")
      .describe("Path of the endpoint on the Service, for example /mcp."),
  })
  .describe("A Service in the cluster that serves the tool.");

const endpoint = withRule(
  z
    .strictObject({
      url: httpUrl.optional().describe("URL of the tool server."),
      service: serviceRef.optional(),
    })
    .describe("Where the tool is served: exactly one of url or service."),
  {
    cel: "has(self.url) != has(self.service)",
    message: "exactly one of url or service must be set",
    holds: (e) => (e.url === undefined) !== (e.service === undefined),
  },
);

// Meta-schema checks only (validateSchema): compiling every tool's schema on every parse would
// cost time and fill ajv's cache. Made on first use: most processes never see an input schema.
let validators: { draft07: Ajv; draft2020: Ajv2020 } | undefined;

/** Why a document is not a JSON Schema (draft 2020-12, or draft-07 when its $schema says so); undefined when it is. */
export function jsonSchemaProblem(schema: Record<string, unknown>): string | undefined {
  const declared = typeof schema.$schema === "string" ? schema.$schema : undefined;
  if (declared !== undefined && !declared.includes("draft-07") && !declared.includes("2020-12")) {
    return "$schema must be JSON Schema draft 2020-12 or draft-07";
  }
  validators ??= {
    draft07: new Ajv({ strict: false, validateFormats: false }),
    draft2020: new Ajv2020({ strict: false, validateFormats: false }),
  };
  const ajv = declared?.includes("draft-07") ? validators.draft07 : validators.draft2020;
  try {
    if (ajv.validateSchema(schema) === true) return undefined;
  } catch (error) {
    return (error as Error).message;
  }
  return ajv.errorsText(ajv.errors, { dataVar: "inputSchema" });
}

/**
 * A tool's input: a JSON Schema of an object. The API server checks the outline (type object,
 * each property a schema object, required a list of names); zod checks the whole document
 * against the JSON Schema meta-schema as well, which no CRD rule can reach.
 */
const inputSchema = z
  .looseObject({
    type: z.enum(["object"]).describe("object: a tool takes named arguments."),
    properties: z
      .record(
        z.string(),
        z
          .looseObject({})
          .meta({ "x-kubernetes-preserve-unknown-fields": true })
          .describe("The JSON Schema of one argument."),
      )
      .optional()
      .describe("The tool's arguments by name, each a JSON Schema object."),
    required: z
      .array(z.string().max(256))
      .max(256)
      .optional()
      .describe("Names of the arguments a call must give."),
  })
  .superRefine((schema, ctx) => {
    const problem = jsonSchemaProblem(schema);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: `must be a JSON Schema: ${problem}` });
  })
  .meta({ "x-kubernetes-preserve-unknown-fields": true })
  .describe(
    "JSON Schema of the tool's input, an object; required for http tools (MCP servers describe their own tools).",
  );

const auth = z
  .strictObject({
    secretKeyRef: secretKeyRef.describe(
      "Secret key holding the credential; read by the sidecar, never by the agent.",
    ),
    header: z
      .string()
      .min(1)
      .max(256)
      .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: "must be an HTTP header name" })
      .default("Authorization")
      .describe("HTTP header that carries the credential."),
    scheme: z
      .string()
      .max(64)
      .regex(/^[A-Za-z0-9-]*$/, { error: "must be letters, digits and '-', or empty" })
      .default("Bearer")
      .describe("Prefix of the header value, for example Bearer; empty sends the secret as is."),
  })
  .describe("Credential the sidecar adds to every call to the tool.");

export const agentToolSpec = withRule(
  z
    .strictObject({
      name: dnsSubdomain
        .optional()
        .describe(
          "Name agents ask for; metadata.name when unset. Several AgentTools may offer versions of one name.",
        ),
      version: semverVersion.describe("Version of the tool, semver."),
      description: z
        .string()
        .min(1)
        .max(4096)
        .describe("What the tool does, shown to agents in tool discovery."),
      protocol: z
        .enum(["mcp", "http"])
        .describe("mcp: a Streamable HTTP MCP server; http: a JSON endpoint taking POST."),
      endpoint,
      inputSchema: inputSchema.optional(),
      auth: auth.optional(),
      timeoutSeconds: z
        .int()
        .min(1)
        .max(600)
        .default(30)
        .describe("Timeout of one call; a tool that hangs is marked unavailable without blocking others."),
      access: z
        .strictObject({
          agents: uniqueList(dnsSubdomain, 256)
            .optional()
            .describe("Names of the AgentTypes that may use the tool; all in the namespace when unset."),
        })
        .optional()
        .describe("Which agents may use the tool."),
    })
    .describe("Desired state of an AgentTool."),
  {
    cel: "self.protocol != 'http' || has(self.inputSchema)",
    message: "an http tool needs an inputSchema",
    field: "inputSchema",
    reason: "FieldValueRequired",
    holds: (t) => t.protocol !== "http" || t.inputSchema !== undefined,
  },
);

export const agentToolStatus = generationNeverGoesBack(
  z.strictObject({
    observedGeneration,
    conditions: conditions.optional(),
    lastProbeTime: dateTime.optional().describe("When the tool server was last probed."),
    tools: uniqueList(z.string().max(256), 256)
      .optional()
      .describe("Names of the tools an MCP server listed at the last probe."),
  }),
).describe("Observed state of an AgentTool.");

export const agentTool = z
  .looseObject({
    apiVersion: z.literal("agenttype.dev/v1alpha1"),
    kind: z.literal("AgentTool"),
    metadata: objectMeta("Namespaced"),
    spec: agentToolSpec,
    status: agentToolStatus.optional(),
  })
  .describe("One version of a tool, an MCP server or an HTTP endpoint, offered to AgentTypes.");

export type AgentTool = z.output<typeof agentTool>;
export type AgentToolSpec = z.output<typeof agentToolSpec>;
