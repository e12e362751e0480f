// What the sidecar serves on GET /status (metrics port): the state of each LLM provider as the
// agent's real calls found it. The contract between the sidecar, which writes it, and the
// operator, which reads it for pods whose sidecar is not ready (docs/adr/0007). No credential
// is in it: messages are redacted by the sidecar.
import * as z from "zod";

export const SIDECAR_STATUS_PATH = "/status";

export const providerHealth = z
  .enum([
    "unknown",
    "ok",
    "throttled",
    "unreachable",
    "timeout",
    "unauthorized",
    "model-missing",
    "unavailable",
  ])
  .describe("unknown until called; ok and throttled answer; the others are failing.");

export const sidecarStatus = z
  .object({
    agent: z.object({ name: z.string(), namespace: z.string() }),
    /** False when every provider is failing: /readyz then fails. */
    ready: z.boolean(),
    providers: z.array(
      z.object({
        name: z.string(),
        type: z.string(),
        where: z.string().describe("Endpoint, or the region of a Bedrock provider without one."),
        model: z.string(),
        state: providerHealth,
        since: z.string().optional(),
        consecutiveFailures: z.number().int().nonnegative(),
        lastError: z
          .object({ errorClass: z.string(), message: z.string(), at: z.string() })
          .optional()
          .describe("The last failure, redacted; kept after a recovery."),
      }),
    ),
  })
  .describe("GET /status of the sidecar.");

export type SidecarStatus = z.infer<typeof sidecarStatus>;
export type ProviderHealth = z.infer<typeof providerHealth>;
