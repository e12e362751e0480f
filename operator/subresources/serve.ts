// Brings the aggregated API up: the front proxy's CA from kube-system, the CA from its Secret, a
// serving certificate for the operator's Service, the listener, and the CA in the APIService's
// caBundle (written only when it differs). Tried again until it works or the operator stops:
// an operator whose aggregated API cannot start still runs its controllers, and says why in a
// Warning Event on the APIService (kubectl describe apiservice), then Normal once it serves.
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import type { HostConnections } from "../hosts/host-connections.ts";
import { isNotFound, type KubeClient, type KubeObject } from "../kube/client.ts";
import type { EventRecorder } from "../kube/events.ts";
import { AGGREGATED_API_SERVICE, resources } from "../kube/resources.ts";
import { issueServingCertificate, serviceDnsNames } from "./certificates.ts";
import { readFrontProxyConfig } from "./front-proxy.ts";
import { GROUP_VERSION } from "./requests.ts";
import { SubresourceServer } from "./server.ts";
import { servingCa } from "./serving-ca.ts";
import { SessionLimit } from "./session-limit.ts";

const RETRY_MS = 15_000;

export interface ServeSettings {
  namespace: string;
  service: string;
  bindAddress: string;
  port: number;
  /** Most attach and interactive exec sessions open at once to one host. */
  maxSessionsPerHost: number;
}

interface ApiServiceObject extends KubeObject {
  spec?: { caBundle?: string };
}

/** Writes the CA into the APIService when it is not there yet; false when the APIService does not exist. */
export async function publishCaBundle(
  client: KubeClient,
  caPem: string,
  signal: AbortSignal,
): Promise<boolean> {
  const caBundle = Buffer.from(caPem).toString("base64");
  let current: ApiServiceObject;
  try {
    current = await client.get<ApiServiceObject>(
      resources.apiService,
      undefined,
      AGGREGATED_API_SERVICE,
      signal,
    );
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
  if (current.spec?.caBundle === caBundle) return true;
  await client.jsonPatch(
    resources.apiService,
    undefined,
    AGGREGATED_API_SERVICE,
    [{ op: "add", path: "/spec/caBundle", value: caBundle }],
    signal,
  );
  return true;
}

/** An Event on the APIService, when it exists; an Event that cannot be written is only logged. */
async function recordOnApiService(
  deps: { client: KubeClient; events: EventRecorder; logger: Logger },
  type: "Normal" | "Warning",
  reason: string,
  message: string,
  signal: AbortSignal,
): Promise<void> {
  try {
    const api = await deps.client.get(resources.apiService, undefined, AGGREGATED_API_SERVICE, signal);
    await deps.events.record(api, type, reason, message, signal);
  } catch (error) {
    if (!isNotFound(error))
      deps.logger.warn(
        { err: (error as Error).message, reason },
        "could not record an Event on the APIService",
      );
  }
}

export async function serveSubresources(
  deps: { client: KubeClient; hosts: HostConnections; events: EventRecorder; logger: Logger },
  settings: ServeSettings,
  signal: AbortSignal,
): Promise<SubresourceServer | undefined> {
  const { client, logger } = deps;
  let failed = false;
  for (;;) {
    let server: SubresourceServer | undefined;
    try {
      const frontProxy = await readFrontProxyConfig(client, signal);
      const ca = await servingCa(client, settings.namespace, signal);
      const tls = issueServingCertificate(
        ca,
        serviceDnsNames(settings.namespace, settings.service),
        new Date(),
      );
      server = new SubresourceServer({
        ...deps,
        frontProxy,
        tls,
        sessions: new SessionLimit(settings.maxSessionsPerHost),
      });
      const address = await server.listen(settings.port, settings.bindAddress);
      const published = await publishCaBundle(client, ca.certificate, signal);
      if (!published)
        logger.warn(
          { apiService: AGGREGATED_API_SERVICE },
          `APIService ${AGGREGATED_API_SERVICE} does not exist: kube-apiserver does not route ${GROUP_VERSION} here until it is installed (the chart and config/ install it)`,
        );
      logger.info(
        { address, groupVersion: GROUP_VERSION, service: `${settings.namespace}/${settings.service}` },
        "serving the aggregated API (logs and exec of agents on AgentHosts)",
      );
      if (failed)
        await recordOnApiService(
          deps,
          "Normal",
          "Serving",
          `the operator serves ${GROUP_VERSION} on port ${settings.port}`,
          signal,
        );
      return server;
    } catch (error) {
      await server?.close();
      if (signal.aborted) return undefined;
      logger.error(
        { err: (error as Error).message, retryInSeconds: RETRY_MS / 1000 },
        "the aggregated API (logs and exec of agents on AgentHosts) could not start",
      );
      failed = true;
      await recordOnApiService(
        deps,
        "Warning",
        "ServeFailed",
        `the operator's aggregated API (kubectl agenttype logs, exec and attach of agents on AgentHosts) could not start, trying again every ${RETRY_MS / 1000} s: ${(error as Error).message}`,
        signal,
      );
      await sleep(RETRY_MS, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) return undefined;
    }
  }
}
