// What the commands read from the API server: AgentTypes, their pods, Events and AgentTools,
// and each sidecar's GET /status and /metrics through the API server's pod proxy.
import type { CoreV1Event, V1Pod } from "@kubernetes/client-node";
import type { AgentHost } from "../api/agenthost.ts";
import type { AgentTool } from "../api/agenttool.ts";
import type { AgentType } from "../api/agenttype.ts";
import { SIDECAR_STATUS_PATH, type SidecarStatus } from "../api/sidecarstatus.ts";
import { AGENT_LABEL } from "../operator/build/names.ts";
import { ApiError, explainApiError } from "./errors.ts";
import type { Kube } from "./kube.ts";
import { parseMetrics, type SidecarMetrics, summarizeMetrics } from "./metrics.ts";

const GROUP_PATH = "/apis/agenttype.dev/v1alpha1";
const AGENTTYPES = "agenttypes.agenttype.dev";
/** A sidecar that does not answer within this is shown as unreadable; the command goes on. */
export const SIDECAR_READ_MS = 3000;
const SIDECAR_READS_AT_ONCE = 8;
const DEFAULT_METRICS_PORT = 9090;

/** Runs `call`, turning an API failure into the error a user reads. */
async function explained<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw error instanceof ApiError ? explainApiError(error) : error;
  }
}

export function getAgent(kube: Kube, name: string): Promise<AgentType> {
  const namespace = kube.namespace;
  return explained(() =>
    kube.getJson<AgentType>(
      { verb: "get", resource: AGENTTYPES, namespace, name },
      `${GROUP_PATH}/namespaces/${namespace}/agenttypes/${name}`,
    ),
  );
}

export async function listAgents(kube: Kube, allNamespaces: boolean): Promise<AgentType[]> {
  const namespace = allNamespaces ? undefined : kube.namespace;
  const list = await explained(() =>
    kube.getJson<{ items: AgentType[] }>(
      { verb: "list", resource: AGENTTYPES, namespace },
      namespace === undefined
        ? `${GROUP_PATH}/agenttypes`
        : `${GROUP_PATH}/namespaces/${namespace}/agenttypes`,
    ),
  );
  return list.items;
}

/** The pods of one agent (`name`), or of every agent in scope; keyed by namespace/agent. */
export async function agentPods(
  kube: Kube,
  scope: { namespace?: string | undefined; name?: string },
): Promise<Map<string, V1Pod[]>> {
  const selector = scope.name === undefined ? AGENT_LABEL : `${AGENT_LABEL}=${scope.name}`;
  const path = scope.namespace === undefined ? "/api/v1/pods" : `/api/v1/namespaces/${scope.namespace}/pods`;
  const list = await explained(() =>
    kube.getJson<{ items: V1Pod[] }>({ verb: "list", resource: "pods", namespace: scope.namespace }, path, {
      labelSelector: selector,
    }),
  );
  const byAgent = new Map<string, V1Pod[]>();
  for (const pod of list.items) {
    const key = `${pod.metadata?.namespace}/${pod.metadata?.labels?.[AGENT_LABEL]}`;
    byAgent.set(key, [...(byAgent.get(key) ?? []), pod]);
  }
  return byAgent;
}

export async function agentEvents(kube: Kube, agent: AgentType): Promise<CoreV1Event[] | string> {
  const namespace = agent.metadata.namespace as string;
  try {
    const list = await kube.getJson<{ items: CoreV1Event[] }>(
      { verb: "list", resource: "events", namespace },
      `/api/v1/namespaces/${namespace}/events`,
      { fieldSelector: `involvedObject.uid=${agent.metadata.uid}` },
    );
    return list.items;
  } catch (error) {
    return unreadable(error);
  }
}

export async function agentTools(kube: Kube, namespace: string): Promise<AgentTool[] | string> {
  try {
    const list = await kube.getJson<{ items: AgentTool[] }>(
      { verb: "list", resource: "agenttools.agenttype.dev", namespace },
      `${GROUP_PATH}/namespaces/${namespace}/agenttools`,
    );
    return list.items;
  } catch (error) {
    return unreadable(error);
  }
}

export async function agentHost(kube: Kube, name: string): Promise<AgentHost | string> {
  try {
    return await kube.getJson<AgentHost>(
      { verb: "get", resource: "agenthosts.agenttype.dev", name },
      `${GROUP_PATH}/agenthosts/${name}`,
    );
  } catch (error) {
    return unreadable(error);
  }
}

export interface SidecarReading {
  pod: string;
  status?: SidecarStatus;
  metrics?: SidecarMetrics;
  /** Why status or metrics could not be read (forbidden, no answer…). */
  unreadable?: string;
}

/** GET /status and /metrics of each pod's sidecar, a few pods at a time, each within SIDECAR_READ_MS. */
export async function readSidecars(
  kube: Kube,
  agent: AgentType,
  pods: readonly string[],
  what: { status: boolean },
): Promise<SidecarReading[]> {
  const namespace = agent.metadata.namespace as string;
  const port = agent.spec.sidecar?.metricsPort ?? DEFAULT_METRICS_PORT;
  const readOne = async (pod: string): Promise<SidecarReading> => {
    const base = `/api/v1/namespaces/${namespace}/pods/${pod}:${port}/proxy`;
    const call = { verb: "get", resource: "pods/proxy", namespace, name: pod };
    try {
      const [metricsText, statusText] = await Promise.all([
        kube.getText(call, `${base}/metrics`, {}, SIDECAR_READ_MS),
        what.status ? kube.getText(call, `${base}${SIDECAR_STATUS_PATH}`, {}, SIDECAR_READ_MS) : undefined,
      ]);
      return {
        pod,
        metrics: summarizeMetrics(parseMetrics(metricsText)),
        ...(statusText === undefined ? {} : { status: JSON.parse(statusText) as SidecarStatus }),
      };
    } catch (error) {
      return { pod, unreadable: unreadable(error) };
    }
  };
  const readings: SidecarReading[] = [];
  for (let i = 0; i < pods.length; i += SIDECAR_READS_AT_ONCE)
    readings.push(...(await Promise.all(pods.slice(i, i + SIDECAR_READS_AT_ONCE).map(readOne))));
  return readings;
}

/** A failure of an optional read, as one line for the output: the command goes on without it. */
function unreadable(error: unknown): string {
  if (error instanceof ApiError) return explainApiError(error).message;
  return (error as Error).message;
}
