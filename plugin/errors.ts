// What the plugin tells a user when something fails: the object, what was refused and why,
// and whether trying again can help. Pure.

/** An error the plugin reports as `error: <message>` and exits 1 with (kubectl's convention). */
export class PluginError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** The Kubernetes call that failed, in the words RBAC uses. */
export interface ApiCall {
  verb: string;
  /** `pods`, `pods/attach`, `agenttypes.agenttype.dev`… */
  resource: string;
  namespace?: string | undefined;
  name?: string | undefined;
}

/** A Kubernetes API answer other than success: its HTTP code and its Status message, if any. */
export class ApiError extends Error {
  readonly code: number;
  readonly reason: string | undefined;
  readonly apiMessage: string;
  readonly call: ApiCall;
  constructor(code: number, reason: string | undefined, apiMessage: string, call: ApiCall) {
    super(apiMessage);
    this.code = code;
    this.reason = reason;
    this.apiMessage = apiMessage;
    this.call = call;
  }
}

const where = (call: ApiCall) => (call.namespace === undefined ? "" : ` in namespace "${call.namespace}"`);

/** The user-facing error for an API failure; 403 names the verb and (sub)resource that RBAC refused. */
export function explainApiError(error: ApiError): PluginError {
  const { call } = error;
  if (error.code === 403) {
    // The API server's own words name the user and, for a subresource, the verb it checked.
    const said = /cannot (\w+) resource "([^"]+)"/.exec(error.apiMessage);
    const verb = said?.[1] ?? call.verb;
    const resource = said?.[2] ?? call.resource;
    return new PluginError(
      `not allowed: you cannot ${verb} ${resource}${where(call)} (ask for an RBAC rule with verb "${verb}" on "${resource}"). The API server said: ${error.apiMessage}`,
    );
  }
  if (error.code === 401)
    return new PluginError(`not logged in: the API server refused your credentials (${error.apiMessage})`);
  if (error.code === 404 && call.resource.startsWith("agenttypes") && call.name !== undefined)
    return new PluginError(`AgentType "${call.name}" not found${where(call)}`);
  if (error.code === 404 && call.resource === "agenttypes.agenttype.dev")
    return new PluginError(
      "the API server does not serve AgentTypes: are the CRDs installed? (kubectl apply -f crds/)",
    );
  const retry = error.code === 429 || error.code >= 500 ? " (transient: try again)" : "";
  return new PluginError(
    `${call.verb} ${call.resource}${call.name === undefined ? "" : ` "${call.name}"`}${where(call)} failed: HTTP ${error.code}${error.reason === undefined ? "" : ` ${error.reason}`}: ${error.apiMessage}${retry}`,
  );
}

/** kube-apiserver's answer for a path no API it serves or proxies knows. */
const UNKNOWN_PATH = "the server could not find the requested resource";
const APISERVICE = "v1alpha1.subresources.agenttype.dev";

/**
 * The user-facing error for a call to the operator's aggregated API (agents on AgentHosts):
 * RBAC refusals as for any call; an API the cluster does not serve, or an operator that does not
 * answer, said so with the command that shows why; anything else in the operator's own words.
 */
export function explainHostError(error: ApiError): PluginError {
  if (error.code === 403 || error.code === 401) return explainApiError(error);
  const what = `${error.call.resource} of AgentType "${error.call.name}"`;
  // kube-apiserver answers a path of a group it does not serve with a bare "404 page not found"
  // (no Status); the operator's own 404s are Statuses with a reason.
  if (error.code === 404 && (error.reason === undefined || error.apiMessage === UNKNOWN_PATH))
    return new PluginError(
      `${what}: this cluster does not serve the operator's aggregated API (subresources.agenttype.dev), which serves agents on AgentHosts; is the APIService installed (the chart and config/ install it)? kubectl get apiservice ${APISERVICE}`,
    );
  if (error.code === 503 && !/^(AgentHost|Host)/.test(error.apiMessage))
    return new PluginError(
      `${what}: the operator's aggregated API does not answer (${error.apiMessage}); is the operator running? kubectl get apiservice ${APISERVICE} (transient: try again)`,
    );
  const retry = error.code === 429 || error.code >= 500 ? " (transient: try again)" : "";
  return new PluginError(`${what}: ${error.apiMessage}${retry}`);
}
