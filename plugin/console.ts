// `logs`, `attach` and `exec` on an agent's pod, through the API server's own pods/log,
// pods/attach and pods/exec: RBAC on those subresources decides who may.
import { pipeline } from "node:stream/promises";
import type { V1Status } from "@kubernetes/client-node";
import type { AgentType } from "../api/agenttype.ts";
import { AGENT_CONTAINER, SIDECAR_CONTAINER } from "../operator/build/names.ts";
import type { Invocation } from "./args.ts";
import { DETACH_KEYS, DetachFilter } from "./detach.ts";
import { ApiError, explainApiError, PluginError } from "./errors.ts";
import type { Kube } from "./kube.ts";
import { agentPods, getAgent } from "./read.ts";
import { hostReplicas, pickReplica, podReplicas, runsInPods } from "./replicas.ts";

/** The pod of the replica asked for; hosts are refused by name until the operator serves them. */
async function replicaPod(
  kube: Kube,
  inv: Invocation,
): Promise<{ agent: AgentType; pod: string; index: number }> {
  const agent = await getAgent(kube, inv.name as string);
  if (!runsInPods(agent)) {
    const replica = pickReplica(agent, hostReplicas(agent), inv.replica);
    throw new PluginError(
      `AgentType "${agent.metadata.name}" replica ${replica.index} runs on AgentHost "${replica.where}" (runtime ${agent.spec.runtime?.type}): ${inv.command} is served for agents in pods only so far (docs/adr/0014-host-consoles.md)`,
    );
  }
  const pods = await agentPods(kube, { namespace: kube.namespace, name: agent.metadata.name });
  const replica = pickReplica(
    agent,
    podReplicas(pods.get(`${kube.namespace}/${agent.metadata.name}`) ?? []),
    inv.replica,
  );
  return { agent, pod: replica.name, index: replica.index };
}

export async function logs(kube: Kube, inv: Invocation, signal: AbortSignal): Promise<number> {
  const { pod } = await replicaPod(kube, inv);
  const container = inv.container === "sidecar" ? SIDECAR_CONTAINER : AGENT_CONTAINER;
  const query: Record<string, string> = { container };
  if (inv.follow) query.follow = "true";
  if (inv.sinceSeconds !== undefined) query.sinceSeconds = String(Math.max(1, inv.sinceSeconds));
  if (inv.tail !== undefined) query.tailLines = String(inv.tail);
  let body: NodeJS.ReadableStream;
  try {
    body = await kube.stream(
      { verb: "get", resource: "pods/log", namespace: kube.namespace, name: pod },
      `/api/v1/namespaces/${kube.namespace}/pods/${pod}/log`,
      query,
      signal,
    );
  } catch (error) {
    throw error instanceof ApiError ? explainApiError(error) : error;
  }
  try {
    await pipeline(body, process.stdout, { end: false });
  } catch (error) {
    if (signal.aborted) return 130;
    throw new PluginError(`the log stream of pod ${pod} broke off: ${(error as Error).message}`);
  }
  return 0;
}

export async function attach(kube: Kube, inv: Invocation, signal: AbortSignal): Promise<number> {
  const { agent, pod, index } = await replicaPod(kube, inv);
  if (agent.spec.interactive !== true)
    throw new PluginError(
      `AgentType "${agent.metadata.name}" is not interactive: its agent has no terminal to attach to (set spec.interactive: true), or follow its output with kubectl agenttype logs ${agent.metadata.name} -f`,
    );
  const stdin = process.stdin;
  const filter = new DetachFilter(() => session?.close());
  let session: Awaited<ReturnType<Kube["connect"]>> | undefined;
  const raw = stdin.isTTY === true;
  if (raw) stdin.setRawMode(true);
  stdin.pipe(filter);
  try {
    session = await connectExplained(kube, {
      kind: "attach",
      pod,
      container: AGENT_CONTAINER,
      stdin: filter,
      stdout: process.stdout,
      stderr: null,
      tty: true,
      signal,
    });
    process.stderr.write(
      `attached to replica ${index} (pod ${pod}) of AgentType ${agent.metadata.name}; detach with ${DETACH_KEYS}. If you don't see a prompt, press Enter.\r\n`,
    );
    await session.ended;
  } finally {
    stdin.unpipe(filter);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
  }
  process.stderr.write(
    filter.detached ? "\r\ndetached: the agent keeps running\r\n" : "\r\nthe agent's terminal closed\r\n",
  );
  return 0;
}

export async function exec(kube: Kube, inv: Invocation, signal: AbortSignal): Promise<number> {
  const { pod } = await replicaPod(kube, inv);
  const stdin = process.stdin;
  const raw = inv.tty && inv.stdin && stdin.isTTY === true;
  if (raw) stdin.setRawMode(true);
  try {
    const session = await connectExplained(kube, {
      kind: "exec",
      pod,
      container: AGENT_CONTAINER,
      command: inv.execCommand,
      stdin: inv.stdin ? stdin : null,
      stdout: process.stdout,
      stderr: inv.tty ? null : process.stderr,
      tty: inv.tty,
      signal,
    });
    const { status } = await session.ended;
    return signal.aborted ? 130 : exitCodeOf(status, pod);
  } finally {
    if (raw) stdin.setRawMode(false);
    stdin.pause();
  }
}

async function connectExplained(kube: Kube, request: Parameters<Kube["connect"]>[0]) {
  try {
    return await kube.connect(request);
  } catch (error) {
    throw error instanceof ApiError ? explainApiError(error) : error;
  }
}

/** The remote command's exit code, as kubectl exec returns it. */
export function exitCodeOf(status: V1Status | undefined, pod: string): number {
  if (status === undefined || status.status === "Success") return 0;
  const code = status.details?.causes?.find((c) => c.reason === "ExitCode")?.message;
  if (status.reason === "NonZeroExitCode" && code !== undefined) return Number(code);
  throw new PluginError(`exec in pod ${pod} failed: ${status.message ?? status.reason ?? "unknown error"}`);
}
