// The contract between the operator and a backend that runs containers on a host outside the
// cluster. Plain data in and out; every method takes a Call (AbortSignal + deadline) and
// throws DriverErrors (errors.ts). Implementations: containerd/ (CRI over SSH).
import type { Call } from "./call.ts";
import type {
  ContainerConfigInput,
  GroupConfigInput,
  LabelFilter,
  Labels,
  NetworkConfig,
  VolumeConfigInput,
} from "./config.ts";
import type { CommandSession, TerminalSize } from "./transport.ts";

export type ContainerState = "created" | "running" | "exited" | "unknown";

export interface ContainerInfo {
  id: string;
  /** The group (pod sandbox) the container belongs to. */
  groupId: string;
  name: string;
  attempt: number;
  image: string;
  labels: Labels;
  state: ContainerState;
  createdAt?: Date;
  startedAt?: Date;
  finishedAt?: Date;
  /** Set once the container has exited. */
  exitCode?: number;
  /** Why it exited, as the backend says (Completed, Error, OOMKilled). */
  reason?: string;
  message?: string;
  /** Its console's name, when it has one: a terminal container on a driver with consoles. */
  console?: string;
}

export type GroupState = "ready" | "not-ready";

/** The machine a group has to itself, where a backend gives it one (a KVM guest). */
export interface GroupMachine {
  name: string;
  /** The backend's word for its state: running, paused, shut off, saved, crashed. */
  state: string;
  vcpus?: number;
  memoryMiB?: number;
  /** CPU time it has used since it started. */
  cpuSeconds?: number;
  /** Memory it holds on the host. */
  rssMiB?: number;
}

/** Something that happened to a group, seen by the backend (a guest stopped), not asked about. */
export interface GroupEvent {
  /** The labels of the group's replica: whose it is. */
  labels: Labels;
  /** The group's name (a guest's). */
  group: string;
  /** What happened, in the backend's words, for example "Stopped Destroyed". */
  change: string;
  /** Set when it happened outside the operator and the owner should hear of it: the Event's reason. */
  warning?: string;
}

export interface GroupInfo {
  id: string;
  name: string;
  attempt: number;
  labels: Labels;
  state: GroupState;
  createdAt?: Date;
  /** The group's address in its network, when it has one. */
  ip?: string;
  /** Why the group is not ready, when the backend knows (a guest that is shut off). */
  message?: string;
  /** The machine the group runs in, when it has one of its own. */
  machine?: GroupMachine;
}

export interface LogLine {
  time: Date;
  stream: "stdout" | "stderr";
  text: string;
}

export interface LogOptions {
  /** Only the last `tail` lines. */
  tail?: number;
  /** Only lines written at or after this time. */
  since?: Date;
}

export interface LogRotation {
  /** Size past which a log file is rotated. */
  maxBytes: number;
  /** Files kept of each container, the one being written included (2 or more). */
  maxFiles: number;
}

export interface SessionRequest {
  stdin: boolean;
  /** A terminal of this size for the command; none when absent. */
  terminal?: TerminalSize;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface DriverHealth {
  /** True when the backend answers and can run containers. */
  ready: boolean;
  /** What is wrong when not ready; a warning of the backend's when ready. */
  message?: string;
  /** Versions the backend reports, for example `{ containerd: "1.6.20", cri: "v1" }`. */
  versions: Record<string, string>;
}

export interface ContainerHealth {
  healthy: boolean;
  state: ContainerState;
  message?: string;
}

export interface VolumeInfo {
  name: string;
  labels: Labels;
  /** Where the volume lives on the host. */
  path: string;
}

export interface NetworkInfo {
  name: string;
  labels: Labels;
  subnet?: string;
}

/** Directories on the host that containers mount: for backends whose hosts have a file system. */
export interface VolumeOperations {
  create(config: VolumeConfigInput, call: Call): Promise<VolumeInfo>;
  list(filter: LabelFilter, call: Call): Promise<VolumeInfo[]>;
  /** Removing a volume that does not exist succeeds: removal is idempotent. */
  remove(name: string, call: Call): Promise<void>;
}

/** Networks, for backends that manage them (libvirt networks); absent otherwise. */
export interface NetworkOperations {
  create(config: NetworkConfig, call: Call): Promise<NetworkInfo>;
  list(filter: LabelFilter, call: Call): Promise<NetworkInfo[]>;
  remove(name: string, call: Call): Promise<void>;
}

export interface ContainerDriver {
  /** The registry's name of this driver, for example `containerd`. */
  readonly kind: string;

  health(call: Call): Promise<DriverHealth>;

  /** Creates a ready group: its network namespace exists, no container runs yet. */
  createGroup(config: GroupConfigInput, call: Call): Promise<GroupInfo>;
  listGroups(filter: LabelFilter, call: Call): Promise<GroupInfo[]>;
  /** Stops every container of the group (each with `gracePeriodMs`), then removes it all. */
  removeGroup(groupId: string, gracePeriodMs: number, call: Call): Promise<void>;
  /**
   * Removes every group matching `filter`, as listing them and removing each would, and also
   * those a listing cannot show because the machine holding them cannot be reached (a KVM guest
   * that refuses its key): those go whole, their containers not stopped one by one. Resolves
   * with a sentence for each such. Absent where a listing shows every group.
   */
  removeGroups?(filter: LabelFilter, gracePeriodMs: number, call: Call): Promise<string[]>;

  /** Creates a container in a group, pulling its image when the host lacks it. */
  create(groupId: string, config: ContainerConfigInput, call: Call): Promise<ContainerInfo>;
  start(containerId: string, call: Call): Promise<void>;
  /** SIGTERM, then SIGKILL after `gracePeriodMs`. Stopping a stopped container succeeds. */
  stop(containerId: string, gracePeriodMs: number, call: Call): Promise<void>;
  /** Removing a container that does not exist succeeds: removal is idempotent. */
  remove(containerId: string, call: Call): Promise<void>;
  /** Throws NotFoundError for an unknown id. */
  get(containerId: string, call: Call): Promise<ContainerInfo>;
  list(filter: LabelFilter, call: Call): Promise<ContainerInfo[]>;
  /** The container's log lines, those in its rotated files included. */
  logs(containerId: string, options: LogOptions, call: Call): Promise<LogLine[]>;
  /**
   * Rotates the log files grown past `rotation.maxBytes` of the running containers matching
   * `filter`; resolves with the files rotated.
   */
  rotateLogs(filter: LabelFilter, rotation: LogRotation, call: Call): Promise<string[]>;
  containerHealth(containerId: string, call: Call): Promise<ContainerHealth>;
  /** Runs a command in a running container and waits for it. */
  exec(containerId: string, command: readonly string[], call: Call): Promise<ExecResult>;
  /**
   * Runs a command in a running container with its streams open (stdin, a terminal). The call
   * bounds the opening; the session lasts until the command ends or is closed. Absent where a
   * backend cannot.
   */
  execSession?(
    containerId: string,
    command: readonly string[],
    options: SessionRequest,
    call: Call,
  ): Promise<CommandSession>;
  /**
   * A new watcher of a terminal container's console (`ContainerInfo.console`): what it printed
   * before, then its terminal, live. Closing it leaves the container running. Absent where a
   * backend has no consoles.
   */
  attach?(containerId: string, terminal: TerminalSize, call: Call): Promise<CommandSession>;

  readonly volumes?: VolumeOperations;
  readonly networks?: NetworkOperations;
  /**
   * True when a replica's new group can run beside its old one (the KVM driver names a guest
   * after what it runs): a roll starts the new first and then removes the old. Otherwise the old
   * goes first, as the group's name is the replica's.
   */
  readonly rollsNewFirst?: boolean;
  /** How long starting a replica may take, when longer than a container start (a guest boots first). */
  readonly startDeadlineMs?: number;
  /**
   * Saves the groups matching `filter` where they are, memory included, and frees what they
   * hold (KVM: libvirt managed save); resolves with what was saved. Absent where a backend cannot.
   */
  suspend?(filter: LabelFilter, call: Call): Promise<string[]>;
  /** Starts saved groups matching `filter` where they were; resolves with what was resumed. */
  resume?(filter: LabelFilter, call: Call): Promise<string[]>;
  /** How a group's start went, for the Event that reports it (KVM: the guest's boot stages). */
  startNote?(groupId: string): string | undefined;

  /** Releases what the driver holds (the forwarded socket); the transport stays open. */
  close(): Promise<void>;
}
