// `logs`, `attach` and `exec` on an agent: in a pod through the API server's own pods/log,
// pods/attach and pods/exec; on an AgentHost through the operator's agenttypes/log,
// agenttypes/attach and agenttypes/exec (group subresources.agenttype.dev). RBAC on those subresources decides who may.
import { pipeline } from "node:stream/promises";
import type { V1Status } from "@kubernetes/client-node";
import type { AgentType } from "../api/agenttype.ts";
import { AGENT_CONTAINER, SIDECAR_CONTAINER } from "../operator/build/names.ts";
import type { Invocation } from "./args.ts";
import { DETACH_KEYS, DetachFilter } from "./detach.ts";
import { ApiError, explainApiError, explainHostError, PluginError } from "./errors.ts";
import { agentSubresourcePath, type Kube, type StreamTarget } from "./kube.ts";
import { agentPods, getAgent } from "./read.ts";
import { hostReplicas, pickReplica, podReplicas, runsInPods } from "./replicas.ts";

/** Where replica N of the AgentType runs: its pod, or its place on an AgentHost (served by the operator). */
interface ReplicaTarget {
  agent: AgentType;
  index: number;
  target: StreamTarget;
  /** "pod NAME" or "AgentHost NAME", for messages. */
  where: string;
}

async function replicaTarget(kube: Kube, inv: Invocation): Promise<ReplicaTarget> {
  const agent = await getAgent(kube, inv.name as string);
  if (!runsInPods(agent)) {
    const replica = pickReplica(agent, hostReplicas(agent), inv.replica);
    return {
      agent,
      index: replica.index,
      target: { agentType: agent.metadata.name, replica: replica.index },
      where: `AgentHost ${replica.where}`,
    };
  }
  const pods = await agentPods(kube, { namespace: kube.namespace, name: agent.metadata.name });
  const replica = pickReplica(
    agent,
    podReplicas(pods.get(`${kube.namespace}/${agent.metadata.name}`) ?? []),
    inv.replica,
  );
  return { agent, index: replica.index, target: { pod: replica.name }, where: `pod ${replica.name}` };
}

export async function logs(kube: Kube, inv: Invocation, signal: AbortSignal): Promise<number> {
  const { target, where } = await replicaTarget(kube, inv);
  const sidecar = inv.container === "sidecar";
  const query: Record<string, string> = {};
  if (inv.follow) query.follow = "true";
  if (inv.sinceSeconds !== undefined) query.sinceSeconds = String(Math.max(1, inv.sinceSeconds));
  if (inv.tail !== undefined) query.tailLines = String(inv.tail);
  const { call, path } =
    "pod" in target
      ? {
          call: { verb: "get", resource: "pods/log", namespace: kube.namespace, name: target.pod },
          path: `/api/v1/namespaces/${kube.namespace}/pods/${target.pod}/log`,
        }
      : {
          call: {
            verb: "get",
            resource: "agenttypes/log",
            namespace: kube.namespace,
            name: target.agentType,
          },
          path: agentSubresourcePath(kube.namespace, target.agentType, "log"),
        };
  if ("pod" in target) query.container = sidecar ? SIDECAR_CONTAINER : AGENT_CONTAINER;
  else {
    query.container = sidecar ? "sidecar" : "agent";
    query.replica = String(target.replica);
  }
  let body: NodeJS.ReadableStream;
  try {
    body = await kube.stream(call, path, query, signal);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    throw "pod" in target ? explainApiError(error) : explainHostError(error);
  }
  try {
    await pipeline(body, process.stdout, { end: false });
  } catch (error) {
    if (signal.aborted) return 130;
    throw new PluginError(`the log stream of ${where} broke off: ${(error as Error).message}`);
  }
  return 0;
}

export async function attach(kube: Kube, inv: Invocation, signal: AbortSignal): Promise<number> {
  const { agent, target, index, where } = await replicaTarget(kube, inv);
  if (agent.spec.interactive !== true)
    throw new PluginError(
      `AgentType "${agent.metadata.name}" is not interactive: its agent has no terminal to attach to (set spec.interactive: true), or follow its output with kubectl agenttype logs ${agent.metadata.name} -f`,
    );
  const stdin = process.stdin;
  const filter = new DetachFilter(() => session?.close());
  let session: Awaited<ReturnType<Kube["connect"]>> | undefined;
  let status: V1Status | undefined;
  const raw = stdin.isTTY === true;
  if (raw) stdin.setRawMode(true);
  stdin.pipe(filter);
  try {
    session = await connectExplained(kube, {
      kind: "attach",
      target,
      container: AGENT_CONTAINER,
      stdin: filter,
      stdout: process.stdout,
      stderr: null,
      tty: true,
      signal,
    });
    process.stderr.write(
      `attached to replica ${index} (${where}) of AgentType ${agent.metadata.name}; detach with ${DETACH_KEYS}. If you don't see a prompt, press Enter.\r\n`,
    );
    status = (await session.ended).status;
  } finally {
    stdin.unpipe(filter);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
  }
  if (filter.detached) {
    process.stderr.write("\r\ndetached: the agent keeps running\r\n");
    return 0;
  }
  if (status?.status === "Failure")
    throw new PluginError(
      `attach to replica ${index} (${where}) failed: ${status.message ?? status.reason ?? "unknown error"}`,
    );
  process.stderr.write("\r\nthe agent's terminal closed\r\n");
  return 0;
}

export async function exec(kube: Kube, inv: Invocation, signal: AbortSignal): Promise<number> {
  const { target, where } = await replicaTarget(kube, inv);
  const stdin = process.stdin;
  const raw = inv.tty && inv.stdin && stdin.isTTY === true;
  if (raw) stdin.setRawMode(true);
  try {
    const session = await connectExplained(kube, {
      kind: "exec",
      target,
      container: AGENT_CONTAINER,
      command: inv.execCommand,
      stdin: inv.stdin ? stdin : null,
      stdout: process.stdout,
      stderr: inv.tty ? null : process.stderr,
      tty: inv.tty,
      signal,
    });
    const { status } = await session.ended;
    return signal.aborted ? 130 : exitCodeOf(status, where);
  } finally {
    if (raw) stdin.setRawMode(false);
    stdin.pause();
  }
}

async function connectExplained(kube: Kube, request: Parameters<Kube["connect"]>[0]) {
  try {
    return await kube.connect(request);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    throw "pod" in request.target ? explainApiError(error) : explainHostError(error);
  }
}

/** The remote command's exit code, as kubectl exec returns it. */
export function exitCodeOf(status: V1Status | undefined, where: string): number {
  if (status === undefined || status.status === "Success") return 0;
  const code = status.details?.causes?.find((c) => c.reason === "ExitCode")?.message;
  if (status.reason === "NonZeroExitCode" && code !== undefined) return Number(code);
  throw new PluginError(`exec in ${where} failed: ${status.message ?? status.reason ?? "unknown error"}`);
}
