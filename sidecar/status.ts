// The sidecar's own view of whether it can serve the agent: /readyz fails when every LLM
// provider is failing, and /status says which provider fails and how (docs/adr/0007). Both
// read the provider states the router keeps from real calls; nothing here calls a provider.
import { SIDECAR_STATUS_PATH, type SidecarStatus } from "../api/sidecarstatus.ts";
import type { Services } from "./services.ts";

/**
 * Why the agent cannot be served yet, or undefined when it can: every provider's model must be
 * ready (ollama providers' pull), and at least one provider must not be failing.
 */
export function unreadyReason(services: Services): string | undefined {
  const states = services.router?.states;
  if (states === undefined) return undefined;
  const waiting = states.modelsHoldingReadiness();
  if (waiting.length > 0) {
    const models = waiting.map((r) => {
      const again =
        r.modelLifecycle?.retryAt === undefined ? "" : `; looked for again at ${r.modelLifecycle.retryAt}`;
      return `provider ${r.name}, ${r.modelLifecycle?.phase}: ${r.modelLifecycle?.message}${again}`;
    });
    return services.redact.text(`waiting for models: ${models.join("; ")}`);
  }
  if (states.allFailing) return `every LLM provider is failing; GET ${SIDECAR_STATUS_PATH} says how`;
  return undefined;
}

/** Whether the agent can be served: no LLM config, or models ready and a provider not failing. */
export function servesAgent(services: Services): boolean {
  return unreadyReason(services) === undefined;
}

/** The body of GET /status, every upstream text and endpoint stripped of the credentials held. */
export function statusBody(services: Services): SidecarStatus {
  const { agent } = services.config;
  const { redact } = services;
  return {
    agent: { name: agent.name, namespace: agent.namespace },
    ready: servesAgent(services),
    providers: (services.router?.states.reports() ?? []).map((report) => ({
      ...report,
      where: redact.text(report.where),
      ...(report.lastError === undefined
        ? {}
        : { lastError: { ...report.lastError, message: redact.text(report.lastError.message) } }),
      ...(report.modelLifecycle === undefined
        ? {}
        : {
            modelLifecycle: { ...report.modelLifecycle, message: redact.text(report.modelLifecycle.message) },
          }),
    })),
  };
}
