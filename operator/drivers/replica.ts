// One agent replica as a pod-shaped group on a host, the pod contract off the cluster: the
// wrapper copied into /opt/agenttype by a first container, then the sidecar and the agent
// sharing one network namespace (the agent reaches the sidecar on 127.0.0.1). The sidecar's
// config and credentials sit in a volume only the sidecar mounts. buildReplicaPlan is pure;
// startReplica and removeReplicas run a plan on any ContainerDriver.
import { posix } from "node:path";
import { type Call, sleep, subCall } from "./call.ts";
import type {
  ContainerConfigInput,
  ContainerResources,
  GroupConfigInput,
  MountConfig,
  SecurityOptions,
  VolumeConfigInput,
} from "./config.ts";
import type { ContainerDriver, ContainerInfo, LogLine } from "./driver.ts";
import { CreationFailedError, isDriverError } from "./errors.ts";
import {
  LABEL_PERSISTENT,
  LABEL_ROLE,
  type Owner,
  persistentVolumeName,
  replicaLabels,
  replicaName,
} from "./labels.ts";

export interface ReplicaSpec {
  owner: Owner;
  replica: number;
  agent: {
    image: string;
    command?: string[];
    args?: string[];
    env: { name: string; value: string }[];
    workingDir?: string;
    resources?: ContainerResources;
    /** A terminal and stdin for the agent, held by a console on the host (spec.interactive). */
    terminal?: boolean;
  };
  sidecar: {
    image: string;
    command?: string[];
    args?: string[];
    env?: { name: string; value: string }[];
    /** The identity the sidecar runs as; its volume belongs to it. */
    uid: number;
    gid: number;
    /** Config and credential files at their paths inside the sidecar. */
    files: { path: string; content: string; mode?: number }[];
    /** Writable directories inside the sidecar (its root file system is read-only). */
    writableDirs: string[];
    /**
     * A writable directory kept beyond the replica's groups (persistent memory), in a volume of
     * its own labelled persistent, of at most `sizeBytes` where the driver bounds it.
     */
    persistentDir?: { path: string; sizeBytes: number };
    resources?: ContainerResources;
  };
  wrapper: {
    image: string;
    command?: string[];
    args?: string[];
    uid: number;
    gid: number;
    /** Where the wrapper appears in the agent, read-only: /opt/agenttype. */
    mountPath: string;
  };
}

export interface ReplicaPlan {
  group: GroupConfigInput;
  volumes: VolumeConfigInput[];
  /** Run to completion, in order, before the containers start. */
  init: ContainerConfigInput[];
  /** Started in order: the sidecar, then the agent. */
  containers: ContainerConfigInput[];
}

export const ROLE_WRAPPER = "wrapper";
export const ROLE_SIDECAR = "sidecar";
export const ROLE_AGENT = "agent";

/** Our containers: the restricted profile, as in the pod. */
function restricted(uid: number, gid: number): SecurityOptions {
  return {
    runAsUser: uid,
    runAsGroup: gid,
    readOnlyRootFilesystem: true,
    noNewPrivileges: true,
    dropCapabilities: ["ALL"],
    seccomp: "runtime-default",
  };
}

function hostname(owner: Owner, replica: number): string {
  const name = `${owner.name}-${replica}`.toLowerCase().replace(/[^a-z0-9-]+/g, "-");
  return name.slice(0, 63).replace(/^-+|-+$/g, "") || "agent";
}

/** The outermost of these directories: none of the result lies inside another. Pure. */
export function mountRoots(dirs: readonly string[]): string[] {
  const unique = [...new Set(dirs.map((d) => posix.normalize(d)))].sort();
  return unique.filter(
    (d) => !unique.some((other) => other !== d && (other === "/" || d.startsWith(`${other}/`))),
  );
}

export function buildReplicaPlan(spec: ReplicaSpec): ReplicaPlan {
  const { owner, replica } = spec;
  const name = replicaName(owner, replica);
  const labels = replicaLabels(owner, replica);
  const role = (r: string) => ({ ...labels, [LABEL_ROLE]: r });
  const wrapperVolume = `${name}-wrapper`;
  const sidecarVolume = `${name}-sidecar`;

  // The files keep their paths under ro/ in the sidecar's volume; each outermost directory
  // holding files is one read-only mount (a mount point inside a read-only mount could not be
  // made), each writable directory one writable mount.
  const roots = mountRoots(spec.sidecar.files.map((f) => posix.dirname(f.path)));
  for (const dir of spec.sidecar.writableDirs) {
    const root = roots.find((r) => dir === r || dir.startsWith(`${r}/`));
    if (root !== undefined) throw new Error(`sidecar writable directory ${dir} lies in read-only ${root}`);
  }
  const files = spec.sidecar.files.map((f) => ({
    path: `ro${f.path}`,
    content: f.content,
    mode: f.mode ?? 0o400,
  }));
  const sidecarMounts: MountConfig[] = [
    ...roots.map((dir) => ({
      volume: sidecarVolume,
      subPath: `ro${dir}`,
      containerPath: dir,
      readOnly: true,
    })),
    ...spec.sidecar.writableDirs.map((dir, i) => ({
      volume: sidecarVolume,
      subPath: `rw/${i}`,
      containerPath: dir,
      readOnly: false,
    })),
  ];
  const optional = <K extends string, V>(key: K, value: V | undefined) =>
    (value === undefined ? {} : { [key]: value }) as Partial<Record<K, V>>;
  const persistent = spec.sidecar.persistentDir;
  const persistentVolume = persistentVolumeName(owner, replica);
  if (persistent !== undefined)
    sidecarMounts.push({ volume: persistentVolume, containerPath: persistent.path, readOnly: false });

  return {
    group: { name, hostname: hostname(owner, replica), labels },
    volumes: [
      // World-readable: the agent runs as whatever user its image says.
      { name: wrapperVolume, labels, uid: spec.wrapper.uid, gid: spec.wrapper.gid, mode: 0o755 },
      {
        name: sidecarVolume,
        labels,
        uid: spec.sidecar.uid,
        gid: spec.sidecar.gid,
        mode: 0o700,
        files,
        directories: spec.sidecar.writableDirs.map((_, i) => `rw/${i}`),
      },
      ...(persistent === undefined
        ? []
        : [
            {
              name: persistentVolume,
              labels: { ...labels, [LABEL_PERSISTENT]: "true" },
              uid: spec.sidecar.uid,
              gid: spec.sidecar.gid,
              mode: 0o700,
            },
          ]),
    ],
    init: [
      {
        name: ROLE_WRAPPER,
        image: spec.wrapper.image,
        ...optional("command", spec.wrapper.command),
        ...optional("args", spec.wrapper.args),
        labels: role(ROLE_WRAPPER),
        mounts: [{ volume: wrapperVolume, containerPath: spec.wrapper.mountPath, readOnly: false }],
        security: restricted(spec.wrapper.uid, spec.wrapper.gid),
      },
    ],
    containers: [
      {
        name: ROLE_SIDECAR,
        image: spec.sidecar.image,
        ...optional("command", spec.sidecar.command),
        ...optional("args", spec.sidecar.args),
        env: spec.sidecar.env ?? [],
        labels: role(ROLE_SIDECAR),
        mounts: sidecarMounts,
        ...optional("resources", spec.sidecar.resources),
        security: restricted(spec.sidecar.uid, spec.sidecar.gid),
      },
      {
        name: ROLE_AGENT,
        image: spec.agent.image,
        ...optional("command", spec.agent.command),
        ...optional("args", spec.agent.args),
        env: spec.agent.env,
        ...optional("workingDir", spec.agent.workingDir),
        labels: role(ROLE_AGENT),
        // The wrapper only: never the sidecar's volume.
        mounts: [{ volume: wrapperVolume, containerPath: spec.wrapper.mountPath, readOnly: true }],
        ...optional("resources", spec.agent.resources),
        ...optional("terminal", spec.agent.terminal),
      },
    ],
  };
}

export interface StartedReplica {
  groupId: string;
  /** Container ids by name (wrapper, sidecar, agent). */
  containers: Record<string, string>;
  /** How long each step of the start took, in milliseconds (for the start's Event). */
  stepsMs: StartSteps;
}

/** The steps of a replica's start in order. */
export interface StartSteps {
  volumes: number;
  /** The group (a sandbox; on a KVM host the guest boots before its first volume). */
  group: number;
  /** The init containers run to their end, the other containers created beside them. */
  init: number;
  /** The other containers started, in order. */
  containers: number;
}

/** The steps of a start as a user reads them in an Event. */
export function describeStartSteps(steps: StartSteps): string {
  const s = (ms: number) => (ms / 1000).toFixed(1);
  const total = steps.volumes + steps.group + steps.init + steps.containers;
  return `started in ${s(total)} s (volumes ${s(steps.volumes)} s, group ${s(steps.group)} s, init containers ${s(steps.init)} s, containers ${s(steps.containers)} s)`;
}

/**
 * Why a container stopped: exit code, reason and its last log lines (for an Event). The log
 * file can lag the exit status by a moment, so a report read at once may miss the last line.
 */
export interface ExitReport {
  exitCode?: number;
  reason?: string;
  finishedAt?: Date;
  lastLines: LogLine[];
}

export async function exitReport(
  driver: ContainerDriver,
  containerId: string,
  lines: number,
  call: Call,
): Promise<ExitReport> {
  const info = await driver.get(containerId, call);
  const lastLines = await driver.logs(containerId, { tail: lines }, call);
  return {
    ...(info.exitCode === undefined ? {} : { exitCode: info.exitCode }),
    ...(info.reason === undefined ? {} : { reason: info.reason }),
    ...(info.finishedAt === undefined ? {} : { finishedAt: info.finishedAt }),
    lastLines,
  };
}

/** Polls a container until it exits; an init container's exit holds up the start, so often. */
async function waitForExit(driver: ContainerDriver, id: string, call: Call): Promise<ContainerInfo> {
  for (let delay = 100; ; delay = Math.min(delay * 2, 400)) {
    const info = await driver.get(id, call);
    if (info.state === "exited") return info;
    await sleep(delay, call.signal);
  }
}

/**
 * Waits for every piece of work, then gives their values or throws the first failure: nothing
 * is still running behind a failure when the caller goes on to clean up.
 */
async function allDone<T extends readonly unknown[]>(
  work: T,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const results = await Promise.allSettled(work);
  const failed = results.find((r) => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as never;
}

/**
 * Runs the plan's init containers one after the other, each to a successful exit; their ids by
 * name.
 */
async function runInitContainers(
  driver: ContainerDriver,
  plan: ReplicaPlan,
  groupId: string,
  call: Call,
): Promise<Record<string, string>> {
  const containers: Record<string, string> = {};
  for (const init of plan.init) {
    const created = await driver.create(groupId, init, call);
    containers[init.name] = created.id;
    await driver.start(created.id, call);
    const done = await waitForExit(driver, created.id, call);
    if (done.exitCode !== 0) {
      const report = await exitReport(driver, created.id, 20, subCall(call, 10_000));
      throw new CreationFailedError(
        `init container ${init.name} of ${plan.group.name} exited with ${done.exitCode ?? "no code"}${
          done.reason ? ` (${done.reason})` : ""
        }; last lines:\n${report.lastLines.map((l) => l.text).join("\n")}`,
      );
    }
  }
  return containers;
}

/**
 * Creates the plan's volumes and group, runs the init containers to completion while creating
 * the containers, then starts those in order. A failing init container fails the start with its
 * exit code and last lines; what was created stays for removeReplicas (by labels), so a retry
 * starts clean.
 */
export async function startReplica(
  driver: ContainerDriver,
  plan: ReplicaPlan,
  call: Call,
): Promise<StartedReplica> {
  const volumes = driver.volumes;
  if (plan.volumes.length > 0 && !volumes)
    throw new CreationFailedError(`driver ${driver.kind} has no volumes`);
  let at = Date.now();
  const lap = () => {
    const now = Date.now();
    const ms = now - at;
    at = now;
    return ms;
  };
  // Independent of each other: made at once (each a round trip or more to the host).
  await allDone(plan.volumes.map((volume) => volumes?.create(volume, call)));
  const volumesMs = lap();
  const group = await driver.createGroup(plan.group, call);
  const groupMs = lap();
  // The containers are created while the init containers run (creating only prepares one), and
  // started, in order, once every init container has succeeded.
  const [containers, created] = await allDone([
    runInitContainers(driver, plan, group.id, call),
    allDone(plan.containers.map((container) => driver.create(group.id, container, call))),
  ] as const);
  const initMs = lap();
  for (const [i, container] of plan.containers.entries()) {
    const id = (created[i] as ContainerInfo).id;
    containers[container.name] = id;
    await driver.start(id, call);
  }
  return {
    groupId: group.id,
    containers,
    stepsMs: { volumes: volumesMs, group: groupMs, init: initMs, containers: lap() },
  };
}

/**
 * Removes every group and volume matching the labels (one replica, or all of an owner); the
 * persistent volumes too only when `removePersistent` (an AgentType deleted with retainPolicy
 * Delete): a roll, a scale-down or an orphan's removal keeps them. Resolves with a sentence for
 * each group removed whole because the machine holding it could not be reached.
 */
export async function removeReplicas(
  driver: ContainerDriver,
  filter: Record<string, string>,
  gracePeriodMs: number,
  call: Call,
  removePersistent = false,
): Promise<string[]> {
  let unreached: string[] = [];
  if (driver.removeGroups !== undefined) unreached = await driver.removeGroups(filter, gracePeriodMs, call);
  else
    for (const group of await driver.listGroups(filter, call))
      await driver.removeGroup(group.id, gracePeriodMs, call);
  if (!driver.volumes) return unreached;
  for (const volume of await driver.volumes.list(filter, call)) {
    if (volume.labels[LABEL_PERSISTENT] === "true" && !removePersistent) continue;
    try {
      await driver.volumes.remove(volume.name, call);
    } catch (err) {
      if (!(isDriverError(err) && err.code === "NotFound")) throw err;
    }
  }
  return unreached;
}
