// Classifies what made a reconcile fail, by what it means for the user: whether the same
// request can succeed later unchanged (transient) or someone must change something first,
// and the condition reason and message that tell them. Pure.
import { KubeApiError } from "../../kube/client.ts";

export interface Failure {
  /** The condition reason, CamelCase as the API conventions ask. */
  reason: string;
  message: string;
  /** Whether retrying the same request soon may succeed. */
  transient: boolean;
}

// A server-side apply whose body does not fit the object's schema is answered with HTTP 500
// (the API server fails to build the typed patch) although retrying it can never succeed:
// these messages say the request itself is malformed.
const MALFORMED_REQUEST =
  /failed to create typed (patch )?object|unable to decode|cannot unmarshal|cannot convert|expected (map|list|string|numeric|bool)|field not declared in schema|json: /i;

/**
 * What a failure of the API server's answer to `action` (for example "applying Deployment
 * web") means. Anything that is not an API answer is a fault of the operator on this object
 * (a builder refusing a value): not transient.
 */
export function classifyFailure(error: unknown, action: string): Failure {
  if (!(error instanceof KubeApiError)) {
    const message = error instanceof Error ? error.message : String(error);
    return { reason: "ReconcileFailed", message: `${action}: ${message}`, transient: false };
  }
  const said = error.message;
  if (error.status === 0) {
    // No answer, or no answer in time, or this replica may no longer write.
    return { reason: "APIServerUnavailable", message: `${action}: ${said}`, transient: true };
  }
  if (error.status === 403) {
    return {
      reason: "Forbidden",
      message: `${action}: the operator lacks a permission (check its RBAC): ${said}`,
      transient: false,
    };
  }
  if (error.status === 409 || error.status === 429) {
    // A conflicting write or throttling: the next attempt reads the world again.
    return { reason: "APIServerBusy", message: `${action}: ${said}`, transient: true };
  }
  if (error.status >= 500 && !MALFORMED_REQUEST.test(said)) {
    return { reason: "APIServerUnavailable", message: `${action}: ${said}`, transient: true };
  }
  return {
    reason: "ApplyFailed",
    message: `${action}: the API server rejected an object built from this AgentType (HTTP ${error.status} ${error.reason}): ${said}`,
    transient: false,
  };
}
