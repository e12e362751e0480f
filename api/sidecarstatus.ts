// What the sidecar serves on GET /status (metrics port): the state of each LLM provider as the
// agent's real calls found it. The contract between the sidecar, which writes it, and the
// operator, which reads it for pods whose sidecar is not ready (docs/adr/0007). No credential
// is in it: messages are redacted by the sidecar.
import * as z from "zod";
import { pullPolicy } from "./agenttype.ts";

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

export const modelPhase = z
  .enum(["checking", "pulling", "ready", "failed", "unreachable"])
  .describe(
    "checking: looking in /api/tags; pulling: /api/pull under way; failed: the server answered that the model is not there or cannot be pulled; unreachable: the server did not answer (a provider outage, which does not hold readiness). failed and unreachable are tried again with backoff.",
  );

export const sidecarStatus = z
  .object({
    agent: z.object({ name: z.string(), namespace: z.string() }),
    /** False when every provider is failing, or a provider's model is not ready yet: /readyz then fails. */
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
        modelLifecycle: z
          .object({
            phase: modelPhase,
            pull: pullPolicy,
            message: z.string().describe("What is happening, or what went wrong; redacted."),
            completedBytes: z.number().int().nonnegative().optional(),
            totalBytes: z.number().int().nonnegative().optional(),
            since: z.string(),
            failures: z.number().int().nonnegative(),
            retryAt: z
              .string()
              .optional()
              .describe("When a failed or unreachable model is looked for again."),
          })
          .optional()
          .describe("Where an ollama provider's model stands (its pull policy); absent for other providers."),
      }),
    ),
  })
  .describe("GET /status of the sidecar.");

export type SidecarStatus = z.infer<typeof sidecarStatus>;
export type ProviderHealth = z.infer<typeof providerHealth>;
export type ModelPhase = z.infer<typeof modelPhase>;
