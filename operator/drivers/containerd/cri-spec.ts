// The CRI messages the containerd driver sends, built from the driver's configs, and the
// driver's plain data read back from CRI answers. Pure.
import type { ContainerConfig, ContainerResources, GroupConfig, SecurityOptions } from "../config.ts";
import type { ContainerInfo, ContainerState, GroupInfo, GroupState } from "../driver.ts";
import { CONSOLE_ANNOTATION, consoleName } from "./console.ts";

export interface CriSettings {
  /** Root-only directory on the host for logs and volumes. */
  stateDir: string;
  /** cgroup parent of every group, so the agents' cgroups are found in one place. */
  cgroupParent?: string;
}

/** The annotation on a sandbox that holds its GroupConfig, to rebuild the sandbox config later. */
export const GROUP_ANNOTATION = "agenttype.dev/group";

export function logDirectory(settings: CriSettings, group: GroupConfig): string {
  return `${settings.stateDir}/logs/${group.name}_${group.attempt}`;
}

export function volumePath(settings: CriSettings, volume: string): string {
  return `${settings.stateDir}/volumes/${volume}`;
}

/** PodSandboxConfig: its own network namespace shared by the group; PIDs apart per container. */
export function sandboxConfig(group: GroupConfig, settings: CriSettings) {
  return {
    metadata: {
      name: group.name,
      // CRI keys a sandbox by name, namespace, uid and attempt; the group's name is unique on the host.
      uid: group.name,
      namespace: "agenttype",
      attempt: group.attempt,
    },
    hostname: group.hostname ?? "",
    logDirectory: logDirectory(settings, group),
    labels: group.labels,
    annotations: { [GROUP_ANNOTATION]: JSON.stringify(group) },
    linux: {
      cgroupParent: settings.cgroupParent ?? "",
      securityContext: {
        // The agent must not see the sidecar's processes (nor read /proc/<pid>/root of it).
        namespaceOptions: { network: "POD", pid: "CONTAINER", ipc: "POD" },
      },
    },
  };
}

const CPU_PERIOD_US = 100_000;

/**
 * The container's cgroup settings as a kubelet writes them: the CPU request as cpu.shares (1024
 * a core; 2, the least, without a request, as a kubelet gives a container that asks for none),
 * the CPU limit as a CFS quota, the memory limit; without a limit there is no cap. Pure.
 */
export function linuxResources(r: ContainerResources) {
  return {
    cpuShares: String(Math.max(2, Math.round(((r.cpuRequestMillis ?? 0) * 1024) / 1000))),
    ...(r.cpuLimitMillis === undefined
      ? {}
      : {
          cpuPeriod: String(CPU_PERIOD_US),
          cpuQuota: String(Math.round((r.cpuLimitMillis * CPU_PERIOD_US) / 1000)),
        }),
    ...(r.memoryLimitBytes === undefined ? {} : { memoryLimitInBytes: String(r.memoryLimitBytes) }),
  };
}

export function securityContext(s: SecurityOptions) {
  return {
    ...(s.runAsUser === undefined ? {} : { runAsUser: { value: String(s.runAsUser) } }),
    ...(s.runAsGroup === undefined ? {} : { runAsGroup: { value: String(s.runAsGroup) } }),
    readonlyRootfs: s.readOnlyRootFilesystem,
    noNewPrivs: s.noNewPrivileges,
    capabilities: { dropCapabilities: s.dropCapabilities },
    seccomp: { profileType: s.seccomp === "runtime-default" ? "RuntimeDefault" : "Unconfined" },
    namespaceOptions: { network: "POD", pid: "CONTAINER", ipc: "POD" },
  };
}

/** ContainerConfig of the CRI for one container of a group whose volumes live under the state dir. */
export function criContainerConfig(container: ContainerConfig, settings: CriSettings) {
  return {
    metadata: { name: container.name, attempt: container.attempt },
    image: { image: container.image },
    command: container.command ?? [],
    args: container.args ?? [],
    workingDir: container.workingDir ?? "",
    envs: container.env.map((e) => ({ key: e.name, value: e.value })),
    mounts: container.mounts.map((m) => ({
      containerPath: m.containerPath,
      hostPath:
        m.subPath === undefined
          ? volumePath(settings, m.volume)
          : `${volumePath(settings, m.volume)}/${m.subPath}`,
      readonly: m.readOnly,
      propagation: "PROPAGATION_PRIVATE",
    })),
    labels: container.labels,
    // A terminal container's console is a tmux session on the host (console.ts): its name rides
    // on the container, so that a start and a removal find it with the container alone.
    ...(container.terminal
      ? {
          tty: true,
          stdin: true,
          stdinOnce: false,
          annotations: { [CONSOLE_ANNOTATION]: consoleName(container.labels) },
        }
      : {}),
    logPath: `${container.name}_${container.attempt}.log`,
    linux: {
      resources: linuxResources(container.resources),
      securityContext: securityContext(container.security),
    },
  };
}

/** A CRI int64 nanosecond timestamp (as a string) as a Date; none for 0. */
export function fromNanos(nanos: string | number | undefined): Date | undefined {
  if (nanos === undefined) return undefined;
  const ns = BigInt(nanos);
  return ns === 0n ? undefined : new Date(Number(ns / 1_000_000n));
}

export function containerState(state: string | undefined): ContainerState {
  switch (state) {
    case "CONTAINER_CREATED":
      return "created";
    case "CONTAINER_RUNNING":
      return "running";
    case "CONTAINER_EXITED":
      return "exited";
    default:
      return "unknown";
  }
}

export function groupState(state: string | undefined): GroupState {
  return state === "SANDBOX_READY" ? "ready" : "not-ready";
}

export interface CriContainer {
  id: string;
  podSandboxId?: string;
  metadata?: { name?: string; attempt?: number };
  image?: { image?: string };
  imageRef?: string;
  state?: string;
  createdAt?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface CriContainerStatus extends CriContainer {
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  reason?: string;
  message?: string;
  logPath?: string;
}

/** Driver data from a ListContainers item or a ContainerStatus (which also carries exit details). */
export function containerInfo(c: CriContainerStatus, groupId: string | undefined): ContainerInfo {
  const state = containerState(c.state);
  const info: ContainerInfo = {
    id: c.id,
    groupId: c.podSandboxId ?? groupId ?? "",
    name: c.metadata?.name ?? "",
    attempt: c.metadata?.attempt ?? 0,
    image: c.image?.image || c.imageRef || "",
    labels: { ...(c.labels ?? {}) },
    state,
  };
  const created = fromNanos(c.createdAt);
  const started = fromNanos(c.startedAt);
  const finished = fromNanos(c.finishedAt);
  if (created) info.createdAt = created;
  if (started) info.startedAt = started;
  if (finished) info.finishedAt = finished;
  if (state === "exited" && c.exitCode !== undefined) info.exitCode = c.exitCode;
  if (c.reason) info.reason = c.reason;
  if (c.message) info.message = c.message;
  const console = c.annotations?.[CONSOLE_ANNOTATION];
  if (console) info.console = console;
  return info;
}

export interface CriSandbox {
  id: string;
  metadata?: { name?: string; attempt?: number };
  state?: string;
  createdAt?: string;
  labels?: Record<string, string>;
  network?: { ip?: string };
}

export function groupInfo(s: CriSandbox): GroupInfo {
  const info: GroupInfo = {
    id: s.id,
    name: s.metadata?.name ?? "",
    attempt: s.metadata?.attempt ?? 0,
    labels: { ...(s.labels ?? {}) },
    state: groupState(s.state),
  };
  const created = fromNanos(s.createdAt);
  if (created) info.createdAt = created;
  if (s.network?.ip) info.ip = s.network.ip;
  return info;
}

/** The oldest containerd whose CRI speaks runtime.v1. */
export const MIN_CONTAINERD = [1, 6] as const;

/**
 * major.minor of a containerd version as its CRI reports it ("1.6.20~ds1", "v2.0.4"); undefined
 * when it is not one.
 */
export function parseContainerdVersion(version: string): [number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)/.exec(version.trim());
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

export function isSupportedContainerd(version: string): boolean {
  const v = parseContainerdVersion(version);
  if (!v) return false;
  return v[0] > MIN_CONTAINERD[0] || (v[0] === MIN_CONTAINERD[0] && v[1] >= MIN_CONTAINERD[1]);
}
