// The driver of an agent's AgentHost, or why there is none: shared by the placement of agents on
// hosts and by the aggregated API that reads their logs and runs commands in them.
import { type AgentHost, agentHost } from "../../api/agenthost.ts";
import { formatFieldErrors, parseAs } from "../../api/field-errors.ts";
import type { ContainerDriver } from "../drivers/driver.ts";
import type { KubeClient, KubeObject } from "../kube/client.ts";
import { clientKey } from "./client-key.ts";
import type { HostConnections } from "./host-connections.ts";

export type HostAccessResult =
  | { host: AgentHost; driver: ContainerDriver }
  | { reason: string; message: string };

/** `raw` is the AgentHost named `hostName` as the caller read it (undefined: it does not exist). */
export async function hostDriver(
  client: KubeClient,
  hosts: HostConnections,
  hostName: string,
  raw: KubeObject | undefined,
  runtime: string,
  signal: AbortSignal,
): Promise<HostAccessResult> {
  if (raw === undefined)
    return {
      reason: "HostNotFound",
      message: `AgentHost ${hostName} (spec.runtime.hostRef) does not exist`,
    };
  const parsed = parseAs(agentHost, raw);
  if (!parsed.ok)
    return {
      reason: "HostInvalid",
      message: `AgentHost ${hostName} is invalid: ${formatFieldErrors(parsed.errors)}`,
    };
  const host = parsed.value;
  if (host.spec.driver !== runtime)
    return {
      reason: "HostDriverMismatch",
      message: `AgentHost ${hostName} runs driver ${host.spec.driver}, not ${runtime} (spec.runtime.type)`,
    };
  const key = await clientKey(client, host, signal, { generate: false });
  if (key === undefined)
    return {
      reason: "HostNotReachable",
      message: `AgentHost ${hostName} has no client key yet (its controller generates one)`,
    };
  return { host, driver: hosts.access(host, key.privateKey).driver };
}
