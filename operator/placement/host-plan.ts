// What an AgentType is on a containerd host, built purely from the same desired objects as
// its pods: one ReplicaSpec per replica (the pod contract off the cluster), a hash of what a
// replica runs (a change rolls the replicas), what the host can still take, and which tools a
// host cannot reach. The I/O is in host.ts.
import { createHash } from "node:crypto";
import type { V1Container, V1EnvVar } from "@kubernetes/client-node";
import type { AgentHost } from "../../api/agenthost.ts";
import type { AgentType } from "../../api/agenttype.ts";
import { MEMORY_PATH, SIDECAR_CONFIG_PATH } from "../../api/sidecarconfig.ts";
import { AGENT_CONTAINER, SIDECAR_CONTAINER, WRAPPER_CONTAINER } from "../build/names.ts";
import { type DesiredObjects, MEMORY_VOLUME, WRAPPER_MOUNT } from "../build/objects.ts";
import { parseQuantity } from "../build/quantity.ts";
import type { ContainerResources, Labels } from "../drivers/config.ts";
import type { ContainerInfo, GroupInfo } from "../drivers/driver.ts";
import {
  LABEL_CPU_MILLIS,
  LABEL_MEMORY_BYTES,
  LABEL_PERSISTENT,
  LABEL_PERSISTENT_BYTES,
  LABEL_ROLE,
  LABEL_SPEC_HASH,
  type Owner,
} from "../drivers/labels.ts";
import type { ReplicaPlan, ReplicaSpec } from "../drivers/replica.ts";
import { buildReplicaPlan, ROLE_AGENT, ROLE_SIDECAR } from "../drivers/replica.ts";
import type { ResolvedTool } from "../tools/resolve-tools.ts";

/** Labels a group carries beside the driver's: what it runs, and what it takes of the host. */
export { LABEL_SPEC_HASH };
export const LABEL_HOST = "agenttype.dev/host";
export { LABEL_CPU_MILLIS, LABEL_MEMORY_BYTES, LABEL_PERSISTENT_BYTES };

/** The uid our containers run as, as in the pod (objects.ts RESTRICTED). */
const OUR_UID = 65532;

export class HostPlanError extends Error {
  override name = "HostPlanError";
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** A file the sidecar reads: its config, or a credential from a Secret. */
export interface SidecarFile {
  path: string;
  content: string;
}

function container(objects: DesiredObjects, name: string): V1Container {
  const spec = objects.workload.spec?.template.spec;
  const found = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].find((c) => c.name === name);
  if (found === undefined) throw new Error(`the pod template has no container ${name}`);
  return found;
}

/** Plain name=value pairs; a value from a Secret or a field has no meaning on a host. */
function plainEnv(env: readonly V1EnvVar[] | undefined, who: string): { name: string; value: string }[] {
  return (env ?? []).map((e) => {
    if (e.valueFrom !== undefined)
      throw new HostPlanError(
        "ValueFromNotSupportedOnHost",
        `spec.env ${e.name} of the ${who} uses valueFrom, which only a kubelet resolves; give a value on a host runtime`,
      );
    return { name: e.name, value: e.value ?? "" };
  });
}

const millicores = (q: string) => Math.max(1, Math.ceil(parseQuantity(q) * 1000));

/**
 * What a host gives a container, as a kubelet would: the CPU request (else its limit, as the API
 * server defaults it) is a weight, never a cap, for a sidecar that asks for 50m throttled to 5%
 * of a core would start slowly; the CPU limit is the cap; memory is capped at its limit, else
 * its request. Pure.
 */
export function resourcesOf(c: V1Container): ContainerResources {
  const cpuRequest = c.resources?.requests?.cpu ?? c.resources?.limits?.cpu;
  const cpuLimit = c.resources?.limits?.cpu;
  const memory = c.resources?.limits?.memory ?? c.resources?.requests?.memory;
  return {
    ...(cpuRequest === undefined ? {} : { cpuRequestMillis: millicores(cpuRequest) }),
    ...(cpuLimit === undefined ? {} : { cpuLimitMillis: millicores(cpuLimit) }),
    ...(memory === undefined
      ? {}
      : { memoryLimitBytes: Math.max(4 * 1024 * 1024, Math.floor(parseQuantity(memory))) }),
  };
}

/** One replica of the AgentType as the driver runs it. */
export function replicaSpec(
  owner: Owner,
  replica: number,
  objects: DesiredObjects,
  credentials: readonly SidecarFile[],
): ReplicaSpec {
  const configMapData = objects.configMap.data ?? {};
  const configText = Object.values(configMapData)[0];
  if (configText === undefined) throw new Error("the sidecar ConfigMap holds no config");
  const wrapper = container(objects, WRAPPER_CONTAINER);
  const sidecar = container(objects, SIDECAR_CONTAINER);
  const agent = container(objects, AGENT_CONTAINER);
  const optional = <K extends string, V>(key: K, value: V | undefined) =>
    (value === undefined ? {} : { [key]: value }) as Partial<Record<K, V>>;
  return {
    owner,
    replica,
    agent: {
      image: agent.image ?? "",
      ...optional("command", agent.command),
      ...optional("args", agent.args),
      env: plainEnv(agent.env, "agent"),
      ...optional("workingDir", agent.workingDir),
      resources: resourcesOf(agent),
      // Only when set: the hash of a replica without it stays what it was.
      ...(agent.tty === true ? { terminal: true } : {}),
    },
    sidecar: {
      image: sidecar.image ?? "",
      ...optional("command", sidecar.command),
      ...optional("args", sidecar.args),
      env: plainEnv(sidecar.env, "sidecar"),
      uid: OUR_UID,
      gid: OUR_UID,
      files: [{ path: SIDECAR_CONFIG_PATH, content: configText }, ...credentials].map((f) => ({
        path: f.path,
        content: f.content,
      })),
      ...persistentMemory(objects),
      resources: resourcesOf(sidecar),
    },
    wrapper: {
      image: wrapper.image ?? "",
      ...optional("command", wrapper.command),
      ...optional("args", wrapper.args),
      uid: OUR_UID,
      gid: OUR_UID,
      mountPath: WRAPPER_MOUNT,
    },
  };
}

/**
 * The sidecar's memory directory: writable in the replica's own volume, or (persistent memory,
 * a StatefulSet's claim template in the pod) a volume of the claim's size that outlives it.
 */
function persistentMemory(
  objects: DesiredObjects,
): Pick<ReplicaSpec["sidecar"], "writableDirs" | "persistentDir"> {
  const claim =
    objects.workload.kind === "StatefulSet"
      ? objects.workload.spec?.volumeClaimTemplates?.find((c) => c.metadata?.name === MEMORY_VOLUME)
      : undefined;
  const size = claim?.spec?.resources?.requests?.storage;
  if (size === undefined) return { writableDirs: ["/tmp", MEMORY_PATH] };
  return {
    writableDirs: ["/tmp"],
    persistentDir: { path: MEMORY_PATH, sizeBytes: Math.ceil(parseQuantity(String(size))) },
  };
}

/** A hash of what a replica runs, the same for every replica: a change means a roll. */
export function specHash(spec: ReplicaSpec): string {
  const { owner: _owner, replica: _replica, ...what } = spec;
  return createHash("sha256").update(JSON.stringify(what)).digest("hex").slice(0, 16);
}

/**
 * What one replica takes of the host, counted against the AgentHost's capacity and sizing a KVM
 * guest: the agent's and the sidecar's CPU requests (what they are promised, as a scheduler
 * counts) and memory limits (what they may hold).
 */
export function replicaSize(spec: ReplicaSpec): { cpuMillis: number; memoryBytes: number } {
  const { agent, sidecar } = spec;
  return {
    cpuMillis: (agent.resources?.cpuRequestMillis ?? 0) + (sidecar.resources?.cpuRequestMillis ?? 0),
    memoryBytes: (agent.resources?.memoryLimitBytes ?? 0) + (sidecar.resources?.memoryLimitBytes ?? 0),
  };
}

/**
 * The driver's plan with our labels on the group and its volumes: hash, host, size. The volumes
 * carry them too because on a KVM host the first volume boots the replica's guest, which is
 * named after the hash (a roll boots a new guest beside the old) and sized by them.
 */
export function hostReplicaPlan(spec: ReplicaSpec, hostName: string): ReplicaPlan {
  const plan = buildReplicaPlan(spec);
  const size = replicaSize(spec);
  const extra: Labels = {
    [LABEL_SPEC_HASH]: specHash(spec),
    [LABEL_HOST]: hostName.slice(0, 63),
    [LABEL_CPU_MILLIS]: String(size.cpuMillis),
    [LABEL_MEMORY_BYTES]: String(size.memoryBytes),
    ...(spec.sidecar.persistentDir === undefined
      ? {}
      : { [LABEL_PERSISTENT_BYTES]: String(spec.sidecar.persistentDir.sizeBytes) }),
  };
  return {
    ...plan,
    group: { ...plan.group, labels: { ...plan.group.labels, ...extra } },
    volumes: plan.volumes.map((v) => ({ ...v, labels: { ...v.labels, ...extra } })),
  };
}

/**
 * Whether a replica's new group starts beside its old one: where the driver can (a KVM guest is
 * named after its spec), unless the replica has a persistent volume, a data disk being one
 * guest's at a time (two guests must never mount one file system): then the old goes first. Pure.
 */
export function startsNewFirst(driverRollsNewFirst: boolean, plan: ReplicaPlan): boolean {
  return driverRollsNewFirst && plan.volumes.every((v) => v.labels?.[LABEL_PERSISTENT] !== "true");
}

/** What other AgentTypes' groups take of the host, read from their labels. */
export interface HostUsage {
  agents: number;
  cpuMillis: number;
  memoryBytes: number;
}

export function usageOf(groups: readonly { labels: Labels }[]): HostUsage {
  return groups.reduce(
    (sum, g) => ({
      agents: sum.agents + 1,
      cpuMillis: sum.cpuMillis + (Number(g.labels[LABEL_CPU_MILLIS]) || 0),
      memoryBytes: sum.memoryBytes + (Number(g.labels[LABEL_MEMORY_BYTES]) || 0),
    }),
    { agents: 0, cpuMillis: 0, memoryBytes: 0 },
  );
}

/**
 * How many replicas of this size fit beside what others use, within the host's declared
 * capacity (agents, cpu, memory); unbounded where the AgentHost declares none. Pure.
 */
export function replicasThatFit(
  capacity: AgentHost["spec"]["capacity"],
  others: HostUsage,
  size: { cpuMillis: number; memoryBytes: number },
  wanted: number,
): { fit: number; limit?: string } {
  let fit = wanted;
  let limit: string | undefined;
  const bound = (free: number, per: number, what: string) => {
    if (per <= 0) return;
    const n = Math.max(0, Math.floor(free / per));
    if (n < fit) {
      fit = n;
      limit = what;
    }
  };
  if (capacity?.agents !== undefined) bound(capacity.agents - others.agents, 1, `${capacity.agents} agents`);
  if (capacity?.cpu !== undefined)
    bound(parseQuantity(capacity.cpu) * 1000 - others.cpuMillis, size.cpuMillis, `cpu ${capacity.cpu}`);
  if (capacity?.memory !== undefined)
    bound(parseQuantity(capacity.memory) - others.memoryBytes, size.memoryBytes, `memory ${capacity.memory}`);
  return limit === undefined ? { fit } : { fit, limit };
}

/**
 * Tools a host cannot reach: a Service reference, or a URL naming a cluster DNS name
 * (*.svc, *.svc.cluster.local), resolves only inside the cluster. Pure.
 */
export function toolsUnreachableFromHost(tools: readonly ResolvedTool[]): string[] {
  return tools.flatMap((tool) => {
    const { endpoint } = tool.agentTool.spec;
    if (endpoint.service !== undefined)
      return [
        `${tool.name} (AgentTool ${tool.agentTool.metadata.name}: Service ${endpoint.service.name} is a cluster address)`,
      ];
    const url = endpoint.url;
    if (url !== undefined) {
      let hostname = "";
      try {
        hostname = new URL(url).hostname;
      } catch {
        return [];
      }
      if (/\.svc(\.cluster\.local)?\.?$/.test(hostname))
        return [
          `${tool.name} (AgentTool ${tool.agentTool.metadata.name}: ${hostname} resolves only in the cluster)`,
        ];
    }
    return [];
  });
}

/** Whether an AgentType runs on an AgentHost, in containerd or in KVM guests (the path of host.ts). */
export function runsOnHost(agent: object): boolean {
  const runtime = ((agent as { spec?: unknown }).spec as { runtime?: { type?: string } } | undefined)
    ?.runtime;
  return runtime?.type === "containerd" || runtime?.type === "kvm";
}

export type { AgentType };

/**
 * Why a replica's group cannot go on as it is, or undefined when it can: its sandbox is gone
 * (containerd or the host restarted with its containers), or its sidecar or agent was never
 * created or started (the operator stopped halfway through starting it). Reconciles of one
 * AgentType never overlap, so a reconcile never sees a start of its own in progress.
 */
export function groupDamage(
  group: Pick<GroupInfo, "id" | "state" | "message">,
  containers: readonly Pick<ContainerInfo, "groupId" | "labels" | "state">[],
): string | undefined {
  if (group.state === "not-ready")
    return (
      group.message ??
      "its group was lost (no pause process or network namespace: containerd or the host restarted)"
    );
  const own = containers.filter((c) => c.groupId === group.id);
  const missing = [ROLE_SIDECAR, ROLE_AGENT].filter(
    (role) => !own.some((c) => c.labels[LABEL_ROLE] === role && c.state !== "created"),
  );
  if (missing.length > 0) return `its ${missing.join(" and ")} never started (the start was interrupted)`;
  return undefined;
}
