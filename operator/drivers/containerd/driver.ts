// The containerd driver: agents' groups as CRI pod sandboxes on the host's containerd, reached
// through its socket forwarded over SSH (see docs/adr/0006-containerd-driver-api.md). Logs are
// the CRI's log files, read over SFTP; volumes are host directories (volumes.ts).
import * as z from "zod";
import { type Call, subCall } from "../call.ts";
import {
  type ContainerConfigInput,
  containerConfig,
  type GroupConfig,
  type GroupConfigInput,
  groupConfig,
  type LabelFilter,
  parseConfig,
} from "../config.ts";
import type {
  ContainerDriver,
  ContainerHealth,
  ContainerInfo,
  DriverHealth,
  ExecResult,
  GroupInfo,
  LogLine,
  LogOptions,
  LogRotation,
  SessionRequest,
} from "../driver.ts";
import {
  CreationFailedError,
  isDriverError,
  NotFoundError,
  UnsupportedBackendVersionError,
} from "../errors.ts";
import type { DriverFactory } from "../registry.ts";
import { type CommandSession, type HostTransport, shellCommand, type TerminalSize } from "../transport.ts";
import {
  attachConsoleCommand,
  CONSOLE_ANNOTATION,
  type ConsoleSettings,
  closeConsoleCommand,
  execCommand,
  openConsoleCommand,
  reopenConsoleCommand,
} from "./console.ts";
import { CriClient } from "./cri-client.ts";
import { parseCriLog, selectLogLines } from "./cri-log.ts";
import {
  type CriContainer,
  type CriContainerStatus,
  type CriSandbox,
  type CriSettings,
  containerInfo,
  containerState,
  criContainerConfig,
  GROUP_ANNOTATION,
  groupInfo,
  isSupportedContainerd,
  logDirectory,
  MIN_CONTAINERD,
  sandboxConfig,
} from "./cri-spec.ts";
import {
  oversizedLogsCommand,
  parseOversizedLogs,
  rotatedLogPaths,
  rotateLogCommand,
} from "./log-rotation.ts";
import { HostVolumes } from "./volumes.ts";

const absolutePath = z.string().regex(/^\/[^\0]*[^/\0]$/, { error: "must be an absolute path" });

export const containerdSettings = z
  .strictObject({
    socket: absolutePath
      .default("/run/containerd/containerd.sock")
      .describe("containerd's socket on the host."),
    stateDir: absolutePath
      .default("/var/lib/agenttype")
      .describe("Root-only directory on the host for the agents' logs and volumes."),
    cgroupParent: absolutePath.optional().describe("cgroup parent of the agents' groups."),
    crictl: z
      .string()
      .regex(/^[!-~]+$/, { error: "must be a command name or path of visible ASCII characters" })
      .default("crictl")
      .describe(
        "crictl on the host: the consoles of interactive agents attach with it, exec -i/-t runs with it.",
      ),
  })
  .describe("Settings of the containerd driver.");

export type ContainerdSettings = z.output<typeof containerdSettings>;

// The CRI status conditions a host needs to run pods.
const REQUIRED_CONDITIONS = ["RuntimeReady", "NetworkReady"];

// Most group configs a driver remembers of the groups it created.
const MAX_CREATED_GROUPS = 256;

// Most log bytes read for one logs() call: the tail of the file holds the lines asked for.
const MAX_LOG_BYTES = 4 * 1024 * 1024;

export class ContainerdDriver implements ContainerDriver {
  readonly kind = "containerd";
  readonly volumes: HostVolumes;
  readonly #transport: HostTransport;
  readonly #settings: ContainerdSettings & CriSettings;
  #client: Promise<CriClient> | undefined;
  /**
   * The configs of the groups this driver created, by sandbox id: creating a container in one
   * needs its config, which otherwise costs a round trip to the host for the sandbox's annotation.
   */
  readonly #createdGroups = new Map<string, GroupConfig>();

  constructor(settings: ContainerdSettings, transport: HostTransport) {
    this.#settings = settings;
    this.#transport = transport;
    this.volumes = new HostVolumes(transport, settings);
  }

  /** The CRI client, opened on first use; a failed open is retried by the next call. */
  #cri(): Promise<CriClient> {
    this.#client ??= CriClient.open(this.#transport, this.#settings.socket).catch((err: unknown) => {
      this.#client = undefined;
      throw err;
    });
    return this.#client;
  }

  async #runtime<T>(method: string, request: unknown, call: Call, what?: string): Promise<T> {
    return (await this.#cri()).runtime<T>(method, request, call, what);
  }

  async health(call: Call): Promise<DriverHealth> {
    const version = await this.#runtime<{
      runtimeName: string;
      runtimeVersion: string;
      runtimeApiVersion: string;
    }>("Version", { version: "v1" }, call);
    const versions = { containerd: version.runtimeVersion, cri: version.runtimeApiVersion };
    if (!isSupportedContainerd(version.runtimeVersion))
      throw new UnsupportedBackendVersionError(
        "containerd",
        version.runtimeVersion,
        `>= ${MIN_CONTAINERD.join(".")}`,
      );
    const status = await this.#runtime<{
      status: { conditions: { type: string; status: boolean; reason: string; message: string }[] };
    }>("Status", {}, call);
    // Readiness is what the kubelet checks too; other conditions (containerd 2.x reports its
    // deprecation warnings as one) are passed on as warnings.
    const describe = (c: { type: string; reason: string; message: string }) =>
      `${c.type}: ${c.reason}${c.message ? ` (${c.message})` : ""}`;
    const failing = status.status.conditions.filter((c) => !c.status);
    const required = failing.filter((c) => REQUIRED_CONDITIONS.includes(c.type));
    const problems = required.length > 0 ? required : failing;
    return {
      ready: required.length === 0,
      versions,
      ...(problems.length === 0 ? {} : { message: problems.map(describe).join("; ") }),
    };
  }

  async createGroup(input: GroupConfigInput, call: Call): Promise<GroupInfo> {
    const group = parseConfig(groupConfig, "group", input);
    const logs = logDirectory(this.#settings, group);
    const mkdir = await this.#transport.exec(
      shellCommand([
        "install",
        "-d",
        "-o",
        "0",
        "-g",
        "0",
        "-m",
        "700",
        this.#settings.stateDir,
        `${this.#settings.stateDir}/logs`,
        logs,
      ]),
      {},
      subCall(call, 30_000),
    );
    if (mkdir.exitCode !== 0)
      throw new CreationFailedError(`create ${logs} on ${this.#transport.target}: ${mkdir.stderr.trim()}`);
    let podSandboxId: string;
    try {
      ({ podSandboxId } = await this.#runtime<{ podSandboxId: string }>(
        "RunPodSandbox",
        { config: sandboxConfig(group, this.#settings) },
        call,
        `RunPodSandbox ${group.name}`,
      ));
    } catch (err) {
      // No sandbox, so removeGroup will never find this directory: remove it now, unless the
      // name was taken (then the directory is the existing group's).
      if (!(isDriverError(err) && err.code === "AlreadyExists"))
        await this.#transport
          .exec(shellCommand(["rm", "-rf", "--one-file-system", logs]), {}, call)
          .catch(() => {});
      throw err;
    }
    this.#createdGroups.set(podSandboxId, group);
    // Bounded: groups removed other than through removeGroup (a guest gone) leave theirs.
    for (const id of this.#createdGroups.keys()) {
      if (this.#createdGroups.size <= MAX_CREATED_GROUPS) break;
      this.#createdGroups.delete(id);
    }
    return this.#group(podSandboxId, call);
  }

  async #sandbox(id: string, call: Call): Promise<CriSandbox & { annotations?: Record<string, string> }> {
    const { status } = await this.#runtime<{ status: CriSandbox & { annotations?: Record<string, string> } }>(
      "PodSandboxStatus",
      { podSandboxId: id },
      call,
      `group ${id}`,
    );
    return status;
  }

  async #group(id: string, call: Call): Promise<GroupInfo> {
    return groupInfo(await this.#sandbox(id, call));
  }

  async listGroups(filter: LabelFilter, call: Call): Promise<GroupInfo[]> {
    const { items } = await this.#runtime<{ items: CriSandbox[] }>(
      "ListPodSandbox",
      { filter: { labelSelector: filter } },
      call,
    );
    return items.map(groupInfo);
  }

  async removeGroup(groupId: string, gracePeriodMs: number, call: Call): Promise<void> {
    let sandbox: CriSandbox & { annotations?: Record<string, string> };
    try {
      sandbox = await this.#sandbox(groupId, call);
    } catch (err) {
      if (isDriverError(err) && err.code === "NotFound") {
        this.#createdGroups.delete(groupId);
        return;
      }
      throw err;
    }
    this.#createdGroups.delete(groupId);
    const { containers } = await this.#runtime<{ containers: CriContainer[] }>(
      "ListContainers",
      { filter: { podSandboxId: groupId } },
      call,
    );
    await Promise.all(containers.map((c) => this.stop(c.id, gracePeriodMs, call)));
    for (const c of containers) await this.#closeConsole(c.id, c.annotations?.[CONSOLE_ANNOTATION], call);
    await this.#runtime("StopPodSandbox", { podSandboxId: groupId }, call, `stop group ${groupId}`);
    await this.#runtime("RemovePodSandbox", { podSandboxId: groupId }, call, `remove group ${groupId}`);
    const group = this.#groupConfigOf(sandbox);
    if (group) {
      const removed = await this.#transport.exec(
        shellCommand(["rm", "-rf", "--one-file-system", logDirectory(this.#settings, group)]),
        {},
        call,
      );
      if (removed.exitCode !== 0)
        throw new CreationFailedError(
          `remove the logs of ${group.name} on ${this.#transport.target}: ${removed.stderr.trim()}`,
        );
    }
  }

  #groupConfigOf(sandbox: { annotations?: Record<string, string> }): GroupConfig | undefined {
    const text = sandbox.annotations?.[GROUP_ANNOTATION];
    if (text === undefined) return undefined;
    return parseConfig(groupConfig, `annotation ${GROUP_ANNOTATION}`, JSON.parse(text));
  }

  async create(groupId: string, input: ContainerConfigInput, call: Call): Promise<ContainerInfo> {
    const container = parseConfig(containerConfig, "container", input);
    const group = this.#createdGroups.get(groupId) ?? this.#groupConfigOf(await this.#sandbox(groupId, call));
    if (!group)
      throw new CreationFailedError(
        `group ${groupId} was not created by this driver (no ${GROUP_ANNOTATION})`,
      );
    const sandboxCfg = sandboxConfig(group, this.#settings);
    await this.#ensureImage(container.image, sandboxCfg, call);
    const { containerId } = await this.#runtime<{ containerId: string }>(
      "CreateContainer",
      {
        podSandboxId: groupId,
        config: criContainerConfig(container, this.#settings),
        sandboxConfig: sandboxCfg,
      },
      call,
      `CreateContainer ${container.name} in ${group.name}`,
    );
    return containerInfo(await this.#status(containerId, call), groupId);
  }

  /** Pulls the image when the host lacks it. */
  async #ensureImage(image: string, sandbox: unknown, call: Call): Promise<void> {
    const cri = await this.#cri();
    const { image: present } = await cri.image<{ image: unknown }>("ImageStatus", { image: { image } }, call);
    if (present) return;
    try {
      await cri.image("PullImage", { image: { image }, sandboxConfig: sandbox }, call, `pull ${image}`);
    } catch (err) {
      if (isDriverError(err) && err.code !== "CreationFailed") throw err;
      // A registry that is down or a tag not there yet: pulling again later may work.
      throw new CreationFailedError(
        `the host lacks image ${image} and could not pull it: ${(err as Error).message}`,
        {
          retryable: true,
          cause: err,
        },
      );
    }
  }

  async start(containerId: string, call: Call): Promise<void> {
    await this.#runtime("StartContainer", { containerId }, call, `start container ${containerId}`);
    // The container says whether it has a console (criContainerConfig's annotation).
    const session = (await this.#status(containerId, call)).annotations?.[CONSOLE_ANNOTATION];
    if (session === undefined) return;
    await this.#openConsole(openConsoleCommand(this.#consoleSettings, session, containerId), session, call);
  }

  /** Runs a command that opens a console; its failure says what the host lacked. */
  async #openConsole(command: string, session: string, call: Call): Promise<void> {
    await this.#run(command, `open the console ${session} (tmux, crictl)`, subCall(call, 30_000));
  }

  /** Runs a command line on the host; one that fails is a CreationFailedError saying `what` and why. */
  async #run(command: string, what: string, call: Call): Promise<string> {
    const result = await this.#transport.exec(command, {}, call);
    if (result.exitCode !== 0)
      throw new CreationFailedError(
        `${what} on ${this.#transport.target}: ${result.stderr.trim() || `exit code ${result.exitCode}`}`,
      );
    return result.stdout;
  }

  get #consoleSettings(): ConsoleSettings {
    return {
      tmuxSocket: `${this.#settings.stateDir}/tmux.sock`,
      crictl: this.#settings.crictl,
      criSocket: this.#settings.socket,
    };
  }

  /** Ends the container's console, when it has one that is still its own. */
  async #closeConsole(containerId: string, session: string | undefined, call: Call): Promise<void> {
    if (session === undefined) return;
    await this.#transport.exec(
      closeConsoleCommand(this.#consoleSettings, session, containerId),
      {},
      subCall(call, 30_000),
    );
  }

  async attach(containerId: string, terminal: TerminalSize, call: Call): Promise<CommandSession> {
    const status = await this.#status(containerId, call);
    const session = status.annotations?.[CONSOLE_ANNOTATION];
    if (session === undefined)
      throw new NotFoundError(`the console of container ${containerId} (it was started without a terminal)`);
    if (containerState(status.state) === "running") {
      // A console lost while the agent runs on (tmux killed, its opening failed) is opened again.
      await this.#openConsole(
        reopenConsoleCommand(this.#consoleSettings, session, containerId),
        session,
        call,
      );
    }
    return this.#transport.openSession(
      attachConsoleCommand(this.#consoleSettings, session),
      { terminal },
      call,
    );
  }

  async execSession(
    containerId: string,
    command: readonly string[],
    options: SessionRequest,
    call: Call,
  ): Promise<CommandSession> {
    return this.#transport.openSession(
      execCommand(this.#consoleSettings, containerId, command, {
        stdin: options.stdin,
        tty: options.terminal !== undefined,
      }),
      options.terminal === undefined ? {} : { terminal: options.terminal },
      call,
    );
  }

  async stop(containerId: string, gracePeriodMs: number, call: Call): Promise<void> {
    try {
      // The CRI's timeout is whole seconds; the call needs the grace period and then some.
      await this.#runtime(
        "StopContainer",
        { containerId, timeout: String(Math.ceil(gracePeriodMs / 1000)) },
        call,
        `stop container ${containerId}`,
      );
    } catch (err) {
      if (isDriverError(err) && err.code === "NotFound") return;
      throw err;
    }
  }

  async remove(containerId: string, call: Call): Promise<void> {
    try {
      const status = await this.#status(containerId, call);
      await this.#closeConsole(containerId, status.annotations?.[CONSOLE_ANNOTATION], call);
      await this.#runtime("RemoveContainer", { containerId }, call, `remove container ${containerId}`);
    } catch (err) {
      if (isDriverError(err) && err.code === "NotFound") return;
      throw err;
    }
  }

  async #status(containerId: string, call: Call): Promise<CriContainerStatus> {
    const { status } = await this.#runtime<{ status: CriContainerStatus | null }>(
      "ContainerStatus",
      { containerId },
      call,
      `container ${containerId}`,
    );
    if (!status) throw new NotFoundError(`container ${containerId}`);
    return status;
  }

  async get(containerId: string, call: Call): Promise<ContainerInfo> {
    const status = await this.#status(containerId, call);
    // ContainerStatus has no sandbox id; ListContainers has.
    const { containers } = await this.#runtime<{ containers: CriContainer[] }>(
      "ListContainers",
      { filter: { id: containerId } },
      call,
    );
    return containerInfo(status, containers[0]?.podSandboxId);
  }

  async list(filter: LabelFilter, call: Call): Promise<ContainerInfo[]> {
    const { containers } = await this.#runtime<{ containers: CriContainer[] }>(
      "ListContainers",
      { filter: { labelSelector: filter } },
      call,
    );
    return containers.map((c) => containerInfo(c, undefined));
  }

  async logs(containerId: string, options: LogOptions, call: Call): Promise<LogLine[]> {
    const status = await this.#status(containerId, call);
    if (!status.logPath) return [];
    // The live file, then its rotated ones newest first, until the budget is read or one is missing.
    const chunks: Buffer[] = [];
    let budget = MAX_LOG_BYTES;
    for (const [i, path] of [status.logPath, ...rotatedLogPaths(status.logPath)].entries()) {
      let chunk: Buffer;
      try {
        chunk = await this.#transport.readFile(path, { tailBytes: budget }, call);
      } catch (err) {
        if (!isDriverError(err) || err.code !== "NotFound") throw err;
        // No line written yet (containerd creates the file on the first one), or just rotated.
        if (i === 0) continue;
        break;
      }
      chunks.unshift(chunk);
      budget -= chunk.length;
      if (budget <= 0) break;
    }
    return selectLogLines(parseCriLog(Buffer.concat(chunks).toString("utf8")), options);
  }

  async rotateLogs(filter: LabelFilter, rotation: LogRotation, call: Call): Promise<string[]> {
    const found = await this.#run(
      oversizedLogsCommand(`${this.#settings.stateDir}/logs`, rotation.maxBytes),
      "find the log files to rotate",
      call,
    );
    const oversized = new Set(parseOversizedLogs(found));
    if (oversized.size === 0) return [];
    const { containers } = await this.#runtime<{ containers: CriContainer[] }>(
      "ListContainers",
      { filter: { labelSelector: filter, state: { state: "CONTAINER_RUNNING" } } },
      call,
    );
    const rotated: string[] = [];
    for (const container of containers) {
      const status = await this.#status(container.id, call).catch((err: unknown) => {
        if (isDriverError(err) && err.code === "NotFound") return undefined;
        throw err;
      });
      if (status?.logPath === undefined || !oversized.has(status.logPath)) continue;
      await this.#run(rotateLogCommand(status.logPath, rotation.maxFiles), `rotate ${status.logPath}`, call);
      try {
        await this.#runtime(
          "ReopenContainerLog",
          { containerId: container.id },
          call,
          `reopen the log of ${container.id}`,
        );
      } catch (err) {
        // A container that ended meanwhile writes no more: its last lines stay in <file>.1.
        const now = await this.#status(container.id, call).catch(() => undefined);
        if (now !== undefined && containerState(now.state) === "running") throw err;
      }
      rotated.push(status.logPath);
    }
    return rotated;
  }

  async containerHealth(containerId: string, call: Call): Promise<ContainerHealth> {
    const info = await this.get(containerId, call);
    if (info.state === "running") return { healthy: true, state: info.state };
    const message =
      info.state === "exited"
        ? `exited with code ${info.exitCode ?? "unknown"}${info.reason ? ` (${info.reason})` : ""}`
        : `state ${info.state}`;
    return { healthy: false, state: info.state, message };
  }

  async exec(containerId: string, command: readonly string[], call: Call): Promise<ExecResult> {
    const seconds = Math.max(1, Math.floor((call.deadline - Date.now()) / 1000) - 1);
    const result = await this.#runtime<{ stdout: Buffer; stderr: Buffer; exitCode: number }>(
      "ExecSync",
      { containerId, cmd: [...command], timeout: String(seconds) },
      call,
      `exec in container ${containerId}`,
    );
    return {
      exitCode: result.exitCode,
      stdout: Buffer.from(result.stdout).toString("utf8"),
      stderr: Buffer.from(result.stderr).toString("utf8"),
    };
  }

  async close(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    if (client) await (await client.catch(() => undefined))?.close();
  }
}

export const containerdDriver: DriverFactory<typeof containerdSettings> = {
  kind: "containerd",
  settings: containerdSettings,
  create: (settings, transport) => new ContainerdDriver(settings, transport),
};
