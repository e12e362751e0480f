// The sidecar's own view of whether it can serve the agent: /readyz fails when every LLM
// provider is failing, and /status says which provider fails and how (docs/adr/0007). Both
// read the provider states the router keeps from real calls; nothing here calls a provider.
import type { SidecarStatus } from "../api/sidecarstatus.ts";
import type { Services } from "./services.ts";

/** Whether the agent can be served: no LLM config, or at least one provider not failing. */
export function servesAgent(services: Services): boolean {
  return services.router?.states.allFailing !== true;
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
    })),
  };
}
