// The KVM driver: every agent replica in a guest of its own on a libvirt host (see
// docs/adr/0010-kvm-driver.md). A group is a guest: its volumes or its group, whichever comes
// first, boot the guest from an overlay on the base image, with keys of its own in its seed;
// inside it the containerd driver runs the group exactly as on a containerd host, over an SSH
// connection carried by the host's. Ids are `<guest>/<id in the guest>`; guests carry the
// replica's labels in their domain metadata, so listing and adoption need no local state.
import { posix } from "node:path";
import * as z from "zod";
import { jitteredBackoff } from "../backoff.ts";
import { bounded, type Call, remainingMs, sleep, subCall, within } from "../call.ts";
import {
  type ContainerConfigInput,
  type GroupConfigInput,
  groupConfig,
  type LabelFilter,
  type Labels,
  parseConfig,
  type VolumeConfigInput,
  volumeConfig,
} from "../config.ts";
import { volumePath } from "../containerd/cri-spec.ts";
import { ContainerdDriver } from "../containerd/driver.ts";
import type {
  ContainerDriver,
  ContainerHealth,
  ContainerInfo,
  DriverHealth,
  ExecResult,
  GroupEvent,
  GroupInfo,
  GroupMachine,
  LogLine,
  LogOptions,
  LogRotation,
  SessionRequest,
  VolumeInfo,
  VolumeOperations,
} from "../driver.ts";
import { CreationFailedError, isDriverError, NotFoundError, TimeoutError } from "../errors.ts";
import {
  LABEL_CPU_MILLIS,
  LABEL_MEMORY_BYTES,
  LABEL_NAME,
  LABEL_NAMESPACE,
  LABEL_PERSISTENT,
  LABEL_PERSISTENT_BYTES,
  LABEL_REPLICA,
  LABEL_SPEC_HASH,
  LABEL_UID,
  matchesLabels,
  persistentVolumeName,
  replicaName,
  replicaOf,
} from "../labels.ts";
import type { DriverFactory } from "../registry.ts";
import { SshConnection } from "../ssh/connection.ts";
import { type CommandSession, shellCommand, type TerminalSize } from "../transport.ts";
import { type AccelProbe, probeAccel } from "./accel.ts";
import { DATA_DISK_SERIAL, type DomainSpec, domainXml, guestMac } from "./domain-xml.ts";
import { type GuestKeyStore, type GuestKeys, type GuestRef, generateGuestKeys } from "./guest-keys.ts";
import { GUEST_SSH_PORT, openThroughHost } from "./guest-link.ts";
import { type GuestListing, type LifecycleEvent, Virsh } from "./virsh.ts";

const absolutePath = z.string().regex(/^\/[^\0]*[^/\0]$/, { error: "must be an absolute path" });

export const kvmSettings = z
  .strictObject({
    uri: z.string().min(1).default("qemu:///system").describe("libvirt connection URI on the host."),
    network: z.string().min(1).default("default").describe("libvirt network the guests attach to."),
    baseImage: absolutePath
      .default("/var/lib/agenttype/guest/disk.qcow2")
      .describe("The guest image (qcow2) on the host; vmlinuz and initrd.img lie beside it."),
    stateDir: absolutePath
      .default("/var/lib/agenttype/kvm")
      .describe("Root-only directory on the host for the guests' overlays and console logs."),
    vcpus: z.int().min(1).max(256).default(1).describe("vCPUs of a guest at least."),
    memoryMiB: z.int().min(256).max(4_194_304).default(1024).describe("MiB of memory of a guest at least."),
    bootTimeoutSeconds: z
      .int()
      .min(10)
      .max(540)
      .default(300)
      .describe("From a guest's start until its containerd answers; past it the guest is hung and replaced."),
    accel: z
      .enum(["auto", "kvm", "tcg"])
      .default("auto")
      .describe("auto: KVM when a probe boot shows it runs a guest kernel, software emulation otherwise."),
  })
  .describe("Settings of the KVM driver.");

export type KvmSettings = z.output<typeof kvmSettings>;

/** The containerd inside every guest, as the guest image sets it up. */
const GUEST_CONTAINERD = {
  socket: "/run/containerd/containerd.sock",
  stateDir: "/var/lib/agenttype",
  crictl: "/usr/local/bin/crictl",
};
const SHUTDOWN_MAX_MS = 30_000;
/** Lifecycle events an owner hears of (a Warning Event) when the driver did not cause them. */
const WARNING_EVENTS: Record<string, string> = {
  Stopped: "GuestStopped",
  Crashed: "GuestCrashed",
  Suspended: "GuestPaused",
  PMSuspended: "GuestPMSuspended",
};
/** How long after the driver acted on a guest the guest's events are still its doing. */
const OWN_EVENTS_WINDOW_MS = 30_000;
/**
 * How long connecting to a running guest (an adoption) may take, whoever asked for it first:
 * the guest's address, its sshd's handshake under emulation, its containerd.
 */
const ADOPT_DEADLINE_MS = 150_000;
/** The event channel is opened anew at least this often (a deadline, like every call). */
const EVENT_CHANNEL_MAX_MS = 3_600_000;
const EVENT_CHANNEL_BACKOFF = { initialMs: 1_000, maxMs: 30_000 };

/** How long each stage of a guest's boot took, in milliseconds; the benchmark reads it. */
export interface BootTimes {
  /** define + start. */
  start: number;
  /** Until the guest's DHCP lease. */
  address: number;
  /** Until its sshd answered with the pinned key. */
  ssh: number;
  /** Until containerd in it was ready. */
  containerd: number;
}

interface Guest {
  name: string;
  labels: Labels;
  address: string;
  connection: SshConnection;
  driver: ContainerdDriver;
}

/**
 * The guest of a replica: named as the replica's group is (labels.ts replicaName), and after
 * what it runs when its labels say (the spec hash), so a roll boots the new guest beside the old.
 */
export function guestName(labels: Labels): string {
  const replica = replicaOf(labels);
  const namespace = labels[LABEL_NAMESPACE];
  const name = labels[LABEL_NAME];
  if (replica === undefined || namespace === undefined || name === undefined)
    throw new CreationFailedError(
      "kvm driver: a guest's labels must name its AgentType (namespace, name, uid) and replica",
    );
  const base = replicaName({ namespace, name, uid: replica.uid }, replica.replica);
  const hash = labels[LABEL_SPEC_HASH]?.replace(/[^a-z0-9]/g, "").slice(0, 8);
  return hash ? `${base}_${hash}` : base;
}

/** What the guest's own system (kernel, systemd, containerd, sshd) needs beside the agent's group. */
export const GUEST_OVERHEAD_MIB = 256;

/**
 * vCPUs and memory of a replica's guest: what its containers' CPU requests and memory limits add
 * up to (the cores rounded up; the memory plus the guest's own overhead), never below the
 * driver's settings. Pure.
 */
export function guestSize(
  labels: Labels,
  settings: Pick<KvmSettings, "vcpus" | "memoryMiB">,
): { vcpus: number; memoryMiB: number } {
  const millis = Number(labels[LABEL_CPU_MILLIS]) || 0;
  const bytes = Number(labels[LABEL_MEMORY_BYTES]) || 0;
  return {
    vcpus: Math.max(settings.vcpus, Math.ceil(millis / 1000)),
    memoryMiB: Math.max(settings.memoryMiB, bytes > 0 ? Math.ceil(bytes / 2 ** 20) + GUEST_OVERHEAD_MIB : 0),
  };
}

/**
 * The replica's data disk on the host (persistent memory) when its labels ask for one: named
 * after its namespace, AgentType and replica, not its uid or spec, so that it outlives its
 * guests and an AgentType re-created under its name finds it. Pure.
 */
export function dataDiskOf(
  labels: Labels,
  stateDir: string,
): { path: string; record: string; sizeBytes: number } | undefined {
  const sizeBytes = Number(labels[LABEL_PERSISTENT_BYTES]);
  const namespace = labels[LABEL_NAMESPACE];
  const name = labels[LABEL_NAME];
  const replica = Number(labels[LABEL_REPLICA]);
  if (!(sizeBytes > 0) || namespace === undefined || name === undefined || !Number.isInteger(replica))
    return undefined;
  const base = `${stateDir}/data/${persistentVolumeName({ namespace, name }, replica)}`;
  return { path: `${base}.qcow2`, record: `${base}.json`, sizeBytes };
}

/** The guest's mount of its data disk; each persistent volume is a directory on it, bind-mounted. */
const GUEST_DATA_MOUNT = "/var/lib/agenttype-data";

/** A hostname from a guest name: lower-case letters, digits and '-', at most 63. */
export function guestHostname(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, "-")
      .slice(0, 63)
      .replace(/^-+|-+$/g, "") || "agent"
  );
}

/** `<guest>/<id>` split; throws NotFound for an id that names no guest. */
export function splitId(id: string): { guest: string; inner: string } {
  const at = id.indexOf("/");
  if (at <= 0) throw new NotFoundError(`kvm object ${JSON.stringify(id)}`);
  return { guest: id.slice(0, at), inner: id.slice(at + 1) };
}

/** Whether a guest may hold objects matching `filter`: every filter label the guest has agrees. */
export function guestMayMatch(guestLabels: Labels, filter: LabelFilter): boolean {
  return Object.entries(filter).every(([k, v]) => guestLabels[k] === undefined || guestLabels[k] === v);
}

/** A running guest the driver cannot connect to, in a listing across owners. */
class UnreachableGuest extends Error {
  constructor(guest: string, cause: unknown) {
    super(
      `its guest ${guest} runs but cannot be reached: ${cause instanceof Error ? cause.message : String(cause)}`,
      {
        cause,
      },
    );
  }
}

/** Where connecting to a guest is: what it waits for now. */
interface ConnectProgress {
  stage: string;
}

/** A guest that answered and refused the operator: a wrong host key, a refused login. */
function isRefusal(err: unknown): boolean {
  return isDriverError(err) && (err.code === "HostKeyMismatch" || err.code === "Authentication");
}

export class KvmDriver implements ContainerDriver {
  readonly kind = "kvm";
  /** A roll boots the new guest beside the old one, then removes the old. */
  readonly rollsNewFirst = true;
  /** A boot under software emulation on a busy host takes minutes. */
  readonly startDeadlineMs = 600_000;
  readonly volumes: VolumeOperations;
  readonly #host: SshConnection;
  readonly #virsh: Virsh;
  readonly #settings: KvmSettings;
  readonly #keys: GuestKeyStore;
  readonly #guests = new Map<string, Guest>();
  /** One boot or adoption at a time per guest. */
  readonly #pending = new Map<string, { mode: "boot" | "adopt"; guest: Promise<Guest> }>();
  /**
   * How many times each guest was forgotten (stopped, removed): a connection that was opening
   * when its guest was forgotten is to a guest that is gone or going, and is not kept.
   */
  readonly #forgotten = new Map<string, number>();
  /** Guests this driver is booting now. */
  readonly #booting = new Set<string>();
  #accel: Promise<AccelProbe> | undefined;
  /** Boot stage times of the guests this driver booted, by guest name. */
  readonly bootTimes = new Map<string, BootTimes>();
  /** Guests the driver is changing: name → until when their lifecycle events are its own doing. */
  readonly #acting = new Map<string, number>();
  /** Labels of the guests last listed or booted, by name: whose a lifecycle event is. */
  readonly #known = new Map<string, Labels>();
  readonly #closing = new AbortController();
  /** Aborted by close(), and made anew: the adoptions in flight end, later ones run. */
  #adoptions = new AbortController();
  /** Why the event channel ended at once, the last time it did. */
  #eventChannelProblem: string | undefined;

  constructor(
    settings: KvmSettings,
    host: SshConnection,
    keys: GuestKeyStore,
    groupEvents?: (event: GroupEvent) => void,
  ) {
    this.#settings = settings;
    this.#host = host;
    this.#keys = keys;
    this.#virsh = new Virsh(host, settings.uri);
    this.volumes = {
      create: (config, call) => this.#createVolume(config, call),
      list: (filter, call) => this.#listVolumes(filter, call),
      remove: (name, call) => this.#removeVolume(name, call),
    };
    if (groupEvents !== undefined) void this.#watchEvents(groupEvents);
  }

  // ------------------------------------------------------------------ libvirt's events

  /**
   * Keeps `virsh event` open on the host's connection for as long as the driver lives, and
   * reopens it with backoff when it ends (libvirtd restarted, the host unreachable). What runs
   * stays correct without it: owners also look on an interval; the channel makes them look at once.
   */
  async #watchEvents(emit: (event: GroupEvent) => void): Promise<void> {
    const signal = this.#closing.signal;
    for (let failures = 0; !signal.aborted; ) {
      const opened = Date.now();
      const ended = await this.#virsh
        .events((event) => this.#onLifecycle(event, emit), within(EVENT_CHANNEL_MAX_MS, signal))
        .catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
      if (signal.aborted) return;
      const lived = Date.now() - opened;
      // A channel that ends at once is broken, not interrupted: the host's health says why.
      this.#eventChannelProblem = lived < 5_000 ? ended : undefined;
      failures = lived > 60_000 ? 1 : failures + 1;
      await sleep(jitteredBackoff(failures, EVENT_CHANNEL_BACKOFF, Math.random()), signal).catch(() => {});
    }
  }

  #onLifecycle(event: LifecycleEvent, emit: (event: GroupEvent) => void): void {
    const labels = this.#guests.get(event.domain)?.labels ?? this.#known.get(event.domain);
    if (labels === undefined || replicaOf(labels) === undefined) return;
    // A guest that stopped has no sshd: the next use connects anew.
    if (event.kind === "Stopped" || event.kind === "Crashed") this.#forget(event.domain);
    const own = (this.#acting.get(event.domain) ?? 0) > Date.now();
    const warning = own ? undefined : WARNING_EVENTS[event.kind];
    emit({
      labels,
      group: event.domain,
      change: event.change,
      ...(warning === undefined ? {} : { warning }),
    });
  }

  /** Runs what the driver does to a guest, marking the guest's events as its own doing. */
  async #act<T>(name: string, work: () => Promise<T>): Promise<T> {
    this.#acting.set(name, Number.POSITIVE_INFINITY);
    try {
      return await work();
    } finally {
      this.#acting.set(name, Date.now() + OWN_EVENTS_WINDOW_MS);
      for (const [n, until] of this.#acting) if (until < Date.now()) this.#acting.delete(n);
    }
  }

  /** Every domain with its state and labels; remembers whose each guest is. */
  async #list(call: Call): Promise<GuestListing[]> {
    const listing = await this.#virsh.listGuests(call);
    for (const name of this.#known.keys())
      if (!this.#booting.has(name) && !listing.some((g) => g.name === name)) this.#known.delete(name);
    for (const name of this.#forgotten.keys())
      if (!this.#pending.has(name) && !listing.some((g) => g.name === name)) this.#forgotten.delete(name);
    for (const g of listing) this.#known.set(g.name, g.labels);
    return listing;
  }

  get #imageDir(): string {
    return posix.dirname(this.#settings.baseImage);
  }

  /** The acceleration guests get, probed on the host once per driver (settings.accel: auto). */
  accel(call: Call): Promise<AccelProbe> {
    if (this.#settings.accel !== "auto")
      return Promise.resolve({ accel: this.#settings.accel, reason: "set in the driver's settings" });
    this.#accel ??= probeAccel(this.#host, `${this.#imageDir}/vmlinuz`, call).catch((err: unknown) => {
      this.#accel = undefined;
      throw err;
    });
    return this.#accel;
  }

  async health(call: Call): Promise<DriverHealth> {
    const version = await this.#virsh.run(["version"], call);
    const versions: Record<string, string> = {};
    const libvirt = /Using library: libvirt ([\d.]+)/.exec(version)?.[1];
    const qemu = /Running hypervisor: QEMU ([\d.]+)/.exec(version)?.[1];
    if (libvirt) versions.libvirt = libvirt;
    if (qemu) versions.qemu = qemu;
    const files = [this.#settings.baseImage, `${this.#imageDir}/vmlinuz`, `${this.#imageDir}/initrd.img`];
    const missing = await this.#host.exec(
      `for f in ${shellCommand(files)}; do test -r "$f" || echo "$f"; done`,
      {},
      subCall(call, 30_000),
    );
    if (missing.stdout.trim() !== "")
      return {
        ready: false,
        versions,
        message: `guest image files missing: ${missing.stdout.trim().split("\n").join(", ")}`,
      };
    const accel = await this.accel(call);
    versions.accel = accel.accel;
    const notes = [
      ...(accel.accel === "tcg" ? [`TCG: ${accel.reason}`] : []),
      ...(this.#eventChannelProblem === undefined
        ? []
        : [
            `libvirt's event channel keeps ending (${this.#eventChannelProblem}): guests' changes are seen every 10 s only`,
          ]),
    ];
    return { ready: true, versions, ...(notes.length === 0 ? {} : { message: notes.join("; ") }) };
  }

  // ------------------------------------------------------------------ guests

  async #guestKeys(guest: GuestRef, call: Call): Promise<GuestKeys> {
    const existing = await this.#keys.get(guest, call);
    if (existing !== undefined) return existing;
    const keys = generateGuestKeys(guest.name);
    await this.#keys.put(guest, keys, call);
    return keys;
  }

  /**
   * The running guest of these labels. `boot`: booted when there is none, a dead one replaced
   * (creating a replica's volumes or group). `adopt`: a running guest only (reading what runs),
   * else NotFound: a guest that stopped is its owner's to replace, not the reader's.
   *
   * Callers asking at once share one boot or adoption, and each waits within its own deadline.
   * An adoption runs to a deadline of its own, at least ADOPT_DEADLINE_MS, not to the first
   * caller's: a host probe with seconds left would otherwise fail it, as a Timeout, for the
   * placement that joined it. close() cancels it.
   */
  #ensureGuest(labels: Labels, mode: "boot" | "adopt", call: Call): Promise<Guest> {
    const name = guestName(labels);
    const known = this.#guests.get(name);
    if (known !== undefined) return Promise.resolve(known);
    let pending = this.#pending.get(name);
    if (pending === undefined) {
      const own =
        mode === "adopt"
          ? within(Math.max(ADOPT_DEADLINE_MS, remainingMs(call)), this.#adoptions.signal)
          : call;
      const guest = this.#bootOrAdopt(name, labels, mode, own).finally(() => this.#pending.delete(name));
      // Every caller may have given up before it ends: its failure is theirs, not unhandled.
      guest.catch(() => {});
      pending = { mode, guest };
      this.#pending.set(name, pending);
    }
    const joined = pending;
    return bounded(call, `guest ${name} to ${joined.mode}`, () => joined.guest).catch((err: unknown) => {
      // A boot that joined an adoption boots once the adoption proves the guest does not run.
      if (mode === "boot" && joined.mode === "adopt" && isDriverError(err) && err.code === "NotFound")
        return this.#ensureGuest(labels, mode, call);
      throw err;
    });
  }

  /**
   * The running guest, or undefined when it is not running or still booting: listing reads,
   * never replaces, and never waits for a boot (a probe's listing would outlast its deadline).
   */
  #adoptIfRunning(labels: Labels, call: Call): Promise<Guest | undefined> {
    const name = guestName(labels);
    if (!this.#guests.has(name) && this.#booting.has(name)) return Promise.resolve(undefined);
    return this.#ensureGuest(labels, "adopt", call).catch((err: unknown) => {
      if (isDriverError(err) && err.code === "NotFound") return undefined;
      throw err;
    });
  }

  async #bootOrAdopt(name: string, labels: Labels, mode: "boot" | "adopt", call: Call): Promise<Guest> {
    const listing = (await this.#list(call)).find((g) => g.name === name);
    if (listing?.state === "running") return this.#adopt({ name, labels: listing.labels }, call);
    if (mode === "adopt") throw new NotFoundError(`running guest ${name}`);
    if (listing?.saved)
      throw new CreationFailedError(`guest ${name} is suspended: resume it before using it`, {
        retryable: true,
      });
    if (listing !== undefined) await this.#removeGuest(name, listing.labels, 0, call);
    return this.#boot(name, labels, call);
  }

  async #boot(name: string, labels: Labels, call: Call): Promise<Guest> {
    this.#booting.add(name);
    this.#known.set(name, labels);
    try {
      return await this.#act(name, () => this.#bootOnce(name, labels, call));
    } finally {
      this.#booting.delete(name);
    }
  }

  async #bootOnce(name: string, labels: Labels, call: Call): Promise<Guest> {
    const t0 = Date.now();
    const keys = await this.#guestKeys({ name, labels }, call);
    const size = guestSize(labels, this.#settings);
    const { accel } = await this.accel(call);
    const dir = `${this.#settings.stateDir}/${name}`;
    const disk = `${dir}/disk.qcow2`;
    await this.#virsh.shell(
      ["install", "-d", "-m", "700", this.#settings.stateDir, dir],
      subCall(call, 30_000),
    );
    await this.#virsh.shell(
      ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", this.#settings.baseImage, disk],
      subCall(call, 60_000),
    );
    const data = dataDiskOf(labels, this.#settings.stateDir);
    if (data !== undefined) await this.#ensureDataDisk(data, call);
    const spec: DomainSpec = {
      name,
      vcpus: size.vcpus,
      memoryMiB: size.memoryMiB,
      accel,
      disk,
      ...(data === undefined ? {} : { dataDisk: data.path }),
      kernel: `${this.#imageDir}/vmlinuz`,
      initrd: `${this.#imageDir}/initrd.img`,
      network: this.#settings.network,
      mac: guestMac(name),
      consoleLog: `${dir}/console.log`,
      seed: {
        hostKey: keys.hostPrivateKey,
        authorizedKey: keys.clientPublicKey,
        hostname: guestHostname(name),
      },
      labels,
    };
    // The XML holds the guest's private host key: root-only, removed once libvirt has it.
    const xmlPath = `${dir}/domain.xml`;
    await this.#host.writeFile(xmlPath, domainXml(spec), { mode: 0o600 }, subCall(call, 30_000));
    try {
      await this.#virsh.run(["define", xmlPath], subCall(call, 30_000));
    } finally {
      await this.#host.exec(shellCommand(["rm", "-f", xmlPath]), {}, subCall(call, 10_000)).catch(() => {});
    }
    await this.#virsh.run(["start", name], subCall(call, 60_000));
    const started = Date.now();
    const bootMs = this.#settings.bootTimeoutSeconds * 1000;
    const progress: ConnectProgress = { stage: "its DHCP lease" };
    const guest = await this.#connect({ name, labels }, keys, subCall(call, bootMs), started, progress).catch(
      async (err: unknown) => {
        // Past its boot timeout (not the caller's deadline, not a refused key) the guest is hung:
        // a later attempt would find it running and wait on it again. It goes, and boots anew.
        if (Date.now() - started < bootMs || call.signal.aborted || isRefusal(err)) throw err;
        throw await this.#removeHungGuest(name, labels, bootMs, progress.stage, err, call);
      },
    );
    this.bootTimes.set(name, { start: started - t0, ...guest.times });
    return guest.guest;
  }

  /**
   * Removes a guest that did not come up within its boot timeout, and returns the error that
   * says so: the stage it was in, and its console's last line (where a boot that hangs stops).
   */
  async #removeHungGuest(
    name: string,
    labels: Labels,
    bootMs: number,
    stage: string,
    cause: unknown,
    call: Call,
  ): Promise<Error> {
    const lastLine = await this.#host
      .exec(
        shellCommand(["tail", "-n", "1", `${this.#settings.stateDir}/${name}/console.log`]),
        {},
        subCall(call, 10_000),
      )
      .then((r) => r.stdout.trim().slice(-200))
      .catch(() => "");
    await this.#removeGuestNow(name, labels, 0, call);
    // A timeout says nothing the stage does not; another error (a refused connection) does.
    const last = isDriverError(cause) && cause.code === "Timeout" ? "" : `: ${String(cause)}`;
    return new CreationFailedError(
      `guest ${name} did not come up within its boot timeout of ${bootMs / 1000} s (still waiting for ${stage}${last}); it was removed and boots anew${lastLine === "" ? "" : `; its console's last line: ${lastLine}`}`,
      { retryable: true },
    );
  }

  /**
   * Creates the replica's data disk when it has none, and grows it to the size asked; never
   * shrinks it (what it holds would be cut off): a smaller size is refused, naming both.
   */
  async #ensureDataDisk(data: { path: string; sizeBytes: number }, call: Call): Promise<void> {
    const dir = posix.dirname(data.path);
    const info = await this.#virsh.shell(
      [
        "sh",
        "-c",
        'set -e; install -d -m 700 "$1"; [ -e "$2" ] || qemu-img create -q -f qcow2 "$2" "$3"; qemu-img info --output=json "$2"',
        "sh",
        dir,
        data.path,
        String(data.sizeBytes),
      ],
      subCall(call, 60_000),
    );
    const size = Number((JSON.parse(info) as { "virtual-size"?: number })["virtual-size"]);
    if (size > data.sizeBytes)
      throw new CreationFailedError(
        `spec.memory.size (${data.sizeBytes} bytes) is below the size of the replica's data disk ${data.path} (${size} bytes): a data disk never shrinks; ask for at least ${size} bytes`,
      );
    if (size < data.sizeBytes)
      await this.#virsh.shell(
        ["qemu-img", "resize", "-q", data.path, String(data.sizeBytes)],
        subCall(call, 60_000),
      );
  }

  /** A running guest this driver did not boot (an operator restart): its keys are in the store. */
  async #adopt(ref: GuestRef, call: Call): Promise<Guest> {
    const keys = await this.#keys.get(ref, call);
    if (keys === undefined)
      throw new CreationFailedError(
        `guest ${ref.name} runs but its keys are lost; it cannot be reached and must be replaced`,
      );
    return (await this.#connect(ref, keys, call, Date.now())).guest;
  }

  async #connect(
    { name, labels }: GuestRef,
    keys: GuestKeys,
    call: Call,
    since: number,
    progress: ConnectProgress = { stage: "its DHCP lease" },
  ): Promise<{ guest: Guest; times: Omit<BootTimes, "start"> }> {
    const forgotten = this.#forgotten.get(name) ?? 0;
    let address: string | undefined;
    for (let delay = 200; address === undefined; delay = Math.min(delay * 2, 1000)) {
      address = await this.#virsh.address(this.#settings.network, guestMac(name), subCall(call, 30_000));
      if (address === undefined) {
        if (Date.now() >= call.deadline) throw new TimeoutError(`guest ${name} getting an address`, 0);
        await sleep(delay, call.signal);
      }
    }
    const addressAt = Date.now();
    const guestAddress = address;
    progress.stage = `its sshd (${guestAddress})`;
    const connection = new SshConnection(
      {
        host: guestAddress,
        port: GUEST_SSH_PORT,
        username: "root",
        privateKey: keys.clientPrivateKey,
        hostKey: keys.hostPublicKey,
        connectStream: (c) => openThroughHost(this.#host, guestAddress, GUEST_SSH_PORT, c),
      },
      // Under software emulation on a busy host a guest's first handshake can take many seconds.
      { reconnect: { initialMs: 500, maxMs: 5_000 }, readyTimeoutMs: 60_000 },
    );
    try {
      // sshd comes up after the address: retry what may pass, never a wrong key or a refused login.
      for (;;) {
        try {
          await connection.connection(subCall(call, 90_000));
          break;
        } catch (err) {
          if (isRefusal(err)) throw err;
          if (Date.now() >= call.deadline) throw err;
          await sleep(250, call.signal);
        }
      }
      const sshAt = Date.now();
      progress.stage = "its containerd";
      const driver = new ContainerdDriver({ ...GUEST_CONTAINERD }, connection);
      for (;;) {
        const health = await driver.health(subCall(call, 30_000)).catch((err: unknown) => ({
          ready: false,
          message: String(err),
        }));
        if (health.ready) break;
        if (Date.now() >= call.deadline)
          throw new TimeoutError(`containerd in guest ${name} getting ready (${health.message})`, 0);
        await sleep(250, call.signal);
      }
      if ((this.#forgotten.get(name) ?? 0) !== forgotten)
        throw new CreationFailedError(
          `guest ${name} stopped or was removed while the operator connected to it`,
          {
            retryable: true,
          },
        );
      const guest = { name, labels, address: guestAddress, connection, driver };
      this.#guests.set(name, guest);
      return {
        guest,
        times: { address: addressAt - since, ssh: sshAt - addressAt, containerd: Date.now() - sshAt },
      };
    } catch (err) {
      connection.close();
      throw err;
    }
  }

  #forget(name: string): void {
    this.#forgotten.set(name, (this.#forgotten.get(name) ?? 0) + 1);
    const guest = this.#guests.get(name);
    if (guest === undefined) return;
    this.#guests.delete(name);
    void guest.driver.close().catch(() => {});
    guest.connection.close();
  }

  /**
   * Shuts the guest down (poweroff through its connection, else ACPI; destroyed past the grace),
   * undefines it, and removes its disk and keys.
   */
  #removeGuest(name: string, labels: Labels | undefined, gracePeriodMs: number, call: Call): Promise<void> {
    return this.#act(name, () => this.#removeGuestNow(name, labels, gracePeriodMs, call));
  }

  async #removeGuestNow(
    name: string,
    labels: Labels | undefined,
    gracePeriodMs: number,
    call: Call,
  ): Promise<void> {
    const known = this.#guests.get(name);
    if (known !== undefined && gracePeriodMs > 0)
      await known.connection
        .exec("systemctl poweroff --no-block", {}, subCall(call, Math.min(gracePeriodMs, 10_000)))
        .catch(() => {});
    this.#forget(name);
    let state: string;
    try {
      state = await this.#virsh.state(name, subCall(call, 30_000));
    } catch (err) {
      if (!(isDriverError(err) && err.code === "NotFound")) throw err;
      state = "gone";
    }
    if (state === "running" || state === "paused" || state === "in shutdown") {
      const until = Date.now() + Math.min(gracePeriodMs, SHUTDOWN_MAX_MS);
      if (gracePeriodMs > 0 && known === undefined)
        await this.#virsh.run(["shutdown", name], subCall(call, 30_000)).catch(() => {});
      while (Date.now() < until && (await this.#virsh.state(name, subCall(call, 30_000))) !== "shut off")
        await sleep(500, call.signal);
      await this.#virsh.run(["destroy", name], subCall(call, 30_000)).catch((err: unknown) => {
        if (!/not running/i.test(String(err))) throw err;
      });
    }
    if (state !== "gone")
      await this.#virsh
        .run(["undefine", "--managed-save", name], subCall(call, 30_000))
        .catch((err: unknown) => {
          if (!(isDriverError(err) && err.code === "NotFound")) throw err;
        });
    await this.#virsh.shell(
      ["rm", "-rf", "--one-file-system", `${this.#settings.stateDir}/${name}`],
      subCall(call, 30_000),
    );
    if (labels !== undefined) await this.#keys.remove({ name, labels }, call);
  }

  /** Guests of ours, with their libvirt state, whose labels may hold objects matching `filter`. */
  async guests(filter: LabelFilter, call: Call): Promise<GuestListing[]> {
    return (await this.#list(call)).filter(
      (g) => replicaOf(g.labels) !== undefined && guestMayMatch(g.labels, filter),
    );
  }

  /**
   * The running guests that may hold objects matching `filter`, connected to. A guest that cannot
   * be reached (a wrong host key, a hung sshd) fails a listing of its own owner's objects, who
   * sees why; in a listing across owners it goes to `unreachable`, not failing the others.
   */
  async #running(
    filter: LabelFilter,
    call: Call,
    unreachable: (listing: GuestListing, err: unknown) => void = (_listing, err) => {
      throw err;
    },
  ): Promise<Guest[]> {
    const result: Guest[] = [];
    for (const g of await this.guests(filter, call)) {
      if (g.state !== "running") continue;
      const guest = await this.#reach(g, filter, call).catch((err: unknown) => {
        if (call.signal.aborted) throw err;
        unreachable(g, err);
        return undefined;
      });
      if (guest !== undefined) result.push(guest);
    }
    return result;
  }

  /**
   * The running guest of a listing, connected to; undefined while it boots. A failure to reach
   * it is thrown to the guest's owner only: a listing that does not name the owner (a host's
   * probe, another AgentType's capacity) gets an UnreachableGuest in its place.
   */
  async #reach(g: GuestListing, filter: LabelFilter, call: Call): Promise<Guest | undefined> {
    const acrossOwners = filter[LABEL_UID] === undefined;
    try {
      // Across owners, a guest slow to answer gets half of what is left, not all of it: the
      // listing goes on to the others (its adoption goes on too, for whoever asks next).
      return await this.#adoptIfRunning(g.labels, acrossOwners ? subCall(call, remainingMs(call) / 2) : call);
    } catch (err) {
      if (call.signal.aborted || !acrossOwners) throw err;
      throw new UnreachableGuest(g.name, err);
    }
  }

  async #guestOf(id: string, call: Call): Promise<{ guest: Guest; inner: string }> {
    const { guest: name, inner } = splitId(id);
    const known = this.#guests.get(name);
    if (known !== undefined) return { guest: known, inner };
    const listing = (await this.#list(call)).find((g) => g.name === name);
    if (listing?.state !== "running") throw new NotFoundError(`guest ${name}`);
    return { guest: await this.#ensureGuest(listing.labels, "adopt", call), inner };
  }

  /** Saves every matching guest's state to disk (libvirt managed save) and frees its CPU and memory. */
  async suspend(filter: LabelFilter, call: Call): Promise<string[]> {
    const done: string[] = [];
    for (const g of await this.guests(filter, call)) {
      if (g.state !== "running" && g.state !== "paused") continue;
      this.#forget(g.name);
      await this.#act(g.name, () => this.#virsh.run(["managedsave", g.name], call));
      done.push(g.name);
    }
    return done;
  }

  /** Starts every matching suspended guest where it was, and reconnects to it. */
  async resume(filter: LabelFilter, call: Call): Promise<string[]> {
    const done: string[] = [];
    for (const g of await this.guests(filter, call)) {
      if (!g.saved || g.state === "running") continue;
      await this.#act(g.name, async () => {
        await this.#virsh.run(["start", g.name], call);
        await this.#ensureGuest(g.labels, "adopt", call);
      });
      done.push(g.name);
    }
    return done;
  }

  /** The boot stages of the guest of a group this driver booted, in seconds. */
  startNote(groupId: string): string | undefined {
    const times = this.bootTimes.get(groupId.split("/")[0] ?? "");
    if (times === undefined) return undefined;
    const s = (ms: number) => (ms / 1000).toFixed(1);
    const total = times.start + times.address + times.ssh + times.containerd;
    return `guest booted in ${s(total)} s (define and start ${s(times.start)} s, DHCP lease ${s(times.address)} s, sshd ${s(times.ssh)} s, containerd ${s(times.containerd)} s)`;
  }

  // ------------------------------------------------------------------ ContainerDriver

  async createGroup(input: GroupConfigInput, call: Call): Promise<GroupInfo> {
    const config = parseConfig(groupConfig, "group", input);
    const guest = await this.#ensureGuest(config.labels, "boot", call);
    return prefixed(guest.name, await guest.driver.createGroup(config, call));
  }

  async listGroups(filter: LabelFilter, call: Call): Promise<GroupInfo[]> {
    const groups: GroupInfo[] = [];
    for (const g of await this.guests(filter, call)) {
      let unreachable: UnreachableGuest | undefined;
      const guest =
        g.state === "running"
          ? await this.#reach(g, filter, call).catch((err: unknown) => {
              if (!(err instanceof UnreachableGuest)) throw err;
              unreachable = err;
              return undefined;
            })
          : undefined;
      const machine = guestMachine(g);
      if (guest === undefined) {
        // A guest that is not running holds a group that is not ready: its owner sees and replaces
        // it. One that runs but cannot be reached is listed by its labels (what a capacity or a
        // probe counts); only its owner's own listing fails, with the reason.
        if (matchesLabels(g.labels, filter))
          groups.push({
            id: `${g.name}/`,
            name: g.name,
            attempt: 0,
            labels: g.labels,
            state: "not-ready",
            message:
              unreachable !== undefined
                ? unreachable.message
                : `its guest ${g.name} is ${g.saved ? "saved to disk (suspended)" : g.state}`,
            machine,
          });
        continue;
      }
      for (const group of await guest.driver.listGroups(filter, call))
        groups.push({ ...prefixed(guest.name, group), machine });
    }
    return groups;
  }

  async removeGroup(groupId: string, gracePeriodMs: number, call: Call): Promise<void> {
    const { guest: name, inner } = splitId(groupId);
    const known = this.#guests.get(name);
    // The containers first, each with its grace period, then the guest itself.
    if (known !== undefined && inner !== "")
      await known.driver
        .removeGroup(inner, gracePeriodMs, subCall(call, gracePeriodMs + 30_000))
        .catch(() => {});
    const labels = known?.labels ?? (await this.#list(call)).find((g) => g.name === name)?.labels;
    await this.#removeGuest(name, labels, gracePeriodMs, call);
  }

  async removeGroups(filter: LabelFilter, gracePeriodMs: number, call: Call): Promise<string[]> {
    const unreached: string[] = [];
    for (const g of await this.guests(filter, call)) {
      let reason: string | undefined;
      // A guest slow to answer (a hung sshd) gets half of what is left: the rest removes it.
      const guest =
        g.state === "running"
          ? await this.#adoptIfRunning(g.labels, subCall(call, remainingMs(call) / 2)).catch(
              (err: unknown) => {
                if (call.signal.aborted) throw err;
                reason = err instanceof Error ? err.message : String(err);
                return undefined;
              },
            )
          : undefined;
      const inner = guest === undefined ? [] : await guest.driver.listGroups(filter, call);
      // A guest goes with the groups it holds (listGroups shows them), or, where they cannot be
      // seen, when its own labels match: a guest holds one replica's group.
      if (inner.length === 0 && !matchesLabels(g.labels, filter)) continue;
      // Its containers first, each with its grace period, as removeGroup does.
      for (const group of inner)
        await guest?.driver
          .removeGroup(group.id, gracePeriodMs, subCall(call, gracePeriodMs + 30_000))
          .catch(() => {});
      // Not reached: libvirt shuts it down (ACPI, within the grace period), then destroys it.
      await this.#removeGuest(g.name, g.labels, gracePeriodMs, call);
      if (reason !== undefined)
        unreached.push(
          `guest ${g.name} could not be reached (${reason}): libvirt shut it down and removed it`,
        );
    }
    return unreached;
  }

  async create(groupId: string, config: ContainerConfigInput, call: Call): Promise<ContainerInfo> {
    const { guest, inner } = await this.#guestOf(groupId, call);
    return prefixedContainer(guest.name, await guest.driver.create(inner, config, call));
  }

  async start(containerId: string, call: Call): Promise<void> {
    const { guest, inner } = await this.#guestOf(containerId, call);
    await guest.driver.start(inner, call);
  }

  async stop(containerId: string, gracePeriodMs: number, call: Call): Promise<void> {
    const { guest, inner } = await this.#guestOf(containerId, call);
    await guest.driver.stop(inner, gracePeriodMs, call);
  }

  async remove(containerId: string, call: Call): Promise<void> {
    let target: { guest: Guest; inner: string };
    try {
      target = await this.#guestOf(containerId, call);
    } catch (err) {
      if (isDriverError(err) && err.code === "NotFound") return;
      throw err;
    }
    await target.guest.driver.remove(target.inner, call);
  }

  async get(containerId: string, call: Call): Promise<ContainerInfo> {
    const { guest, inner } = await this.#guestOf(containerId, call);
    return prefixedContainer(guest.name, await guest.driver.get(inner, call));
  }

  async list(filter: LabelFilter, call: Call): Promise<ContainerInfo[]> {
    const containers: ContainerInfo[] = [];
    for (const guest of await this.#running(filter, call))
      for (const c of await guest.driver.list(filter, call))
        containers.push(prefixedContainer(guest.name, c));
    return containers;
  }

  async logs(containerId: string, options: LogOptions, call: Call): Promise<LogLine[]> {
    const { guest, inner } = await this.#guestOf(containerId, call);
    return guest.driver.logs(inner, options, call);
  }

  /** Rotates in every running guest; one guest failing does not keep the others' from rotating. */
  async rotateLogs(filter: LabelFilter, rotation: LogRotation, call: Call): Promise<string[]> {
    const rotated: string[] = [];
    const failures: string[] = [];
    // An unreachable guest reads as its cause, whether the listing named an owner or not.
    const unreachable = (g: GuestListing, err: unknown) => {
      const cause = err instanceof UnreachableGuest ? err.cause : err;
      failures.push(`guest ${g.name}: ${cause instanceof Error ? cause.message : String(cause)}`);
    };
    for (const guest of await this.#running(filter, call, unreachable)) {
      try {
        for (const path of await guest.driver.rotateLogs(filter, rotation, call))
          rotated.push(`${guest.name}:${path}`);
      } catch (err) {
        if (call.signal.aborted) throw err;
        failures.push(`guest ${guest.name}: ${(err as Error).message}`);
      }
    }
    if (failures.length > 0)
      throw new CreationFailedError(
        `rotate the agents' logs (${rotated.length} rotated): ${failures.join("; ")}`,
      );
    return rotated;
  }

  async containerHealth(containerId: string, call: Call): Promise<ContainerHealth> {
    const { guest, inner } = await this.#guestOf(containerId, call);
    return guest.driver.containerHealth(inner, call);
  }

  async exec(containerId: string, command: readonly string[], call: Call): Promise<ExecResult> {
    const { guest, inner } = await this.#guestOf(containerId, call);
    return guest.driver.exec(inner, command, call);
  }

  /** In the guest, as on a containerd host: the guest image has tmux and crictl. */
  async execSession(
    containerId: string,
    command: readonly string[],
    options: SessionRequest,
    call: Call,
  ): Promise<CommandSession> {
    const { guest, inner } = await this.#guestOf(containerId, call);
    return guest.driver.execSession(inner, command, options, call);
  }

  async attach(containerId: string, terminal: TerminalSize, call: Call): Promise<CommandSession> {
    const { guest, inner } = await this.#guestOf(containerId, call);
    return guest.driver.attach(inner, terminal, call);
  }

  // ------------------------------------------------------------------ volumes (in the guests)

  async #createVolume(input: VolumeConfigInput, call: Call): Promise<VolumeInfo> {
    const config = parseConfig(volumeConfig, "volume", input);
    const guest = await this.#ensureGuest(config.labels, "boot", call);
    if (config.labels[LABEL_PERSISTENT] !== "true") return guest.driver.volumes.create(config, call);
    return this.#mountDataVolume(guest, config, call);
  }

  /**
   * A persistent volume: a directory on the guest's data disk (formatted on first use, grown to
   * the disk's size), bind-mounted where the guest's containerd driver keeps its volumes; its
   * record on the host beside the disk, so that it is listed, and removed, with no guest running.
   */
  async #mountDataVolume(
    guest: Guest,
    config: ReturnType<typeof volumeConfig.parse>,
    call: Call,
  ): Promise<VolumeInfo> {
    const data = dataDiskOf(config.labels, this.#settings.stateDir);
    if (data === undefined)
      throw new CreationFailedError(
        `volume ${config.name}: a persistent volume's labels must give its size (${LABEL_PERSISTENT_BYTES}) and replica`,
      );
    if (config.files.length > 0 || config.directories.length > 0)
      throw new CreationFailedError(`volume ${config.name}: a persistent volume starts empty`);
    const script = [
      "set -e",
      // By its serial in sysfs: the guest image runs no udev to make /dev/disk/by-id.
      'dev=$(cd /sys/block && for b in vd*; do s=""; read -r s <"$b/serial" || true; [ "$s" != "$6" ] || echo "/dev/$b"; done)',
      '[ -n "$dev" ] || { echo "no disk with serial $6" >&2; exit 1; }',
      `mnt=${GUEST_DATA_MOUNT}; dir="$mnt/$1"; root="$2"`,
      'if ! mountpoint -q "$mnt"; then',
      '  blkid "$dev" >/dev/null 2>&1 || mkfs.ext4 -q -L agenttype-data "$dev"',
      '  install -d -m 700 "$mnt"; mount "$dev" "$mnt"',
      "fi",
      'resize2fs "$dev" >/dev/null 2>&1 || true',
      'install -d -o "$3" -g "$4" -m "$5" "$dir"; chown "$3:$4" "$dir"; chmod "$5" "$dir"',
      'install -d -m 700 "$(dirname "$root")"; install -d "$root"',
      'mountpoint -q "$root" || mount --bind "$dir" "$root"',
    ].join("\n");
    const root = volumePath(GUEST_CONTAINERD, config.name);
    const made = await guest.connection.exec(
      shellCommand([
        "sh",
        "-c",
        script,
        "sh",
        config.name,
        root,
        String(config.uid),
        String(config.gid),
        config.mode.toString(8),
        DATA_DISK_SERIAL,
      ]),
      {},
      subCall(call, 120_000),
    );
    if (made.exitCode !== 0)
      throw new CreationFailedError(
        `mount the data disk of volume ${config.name} in guest ${guest.name}: ${made.stderr.trim()}`,
      );
    await this.#host.writeFile(
      data.record,
      `${JSON.stringify({ name: config.name, labels: config.labels, disk: data.path })}\n`,
      { mode: 0o600 },
      subCall(call, 30_000),
    );
    return { name: config.name, labels: config.labels, path: data.path };
  }

  /** The records of the data disks on the host: the persistent volumes, whether a guest runs or not. */
  async #dataVolumes(call: Call): Promise<(VolumeInfo & { record: string })[]> {
    const dir = `${this.#settings.stateDir}/data`;
    const listed = await this.#host.exec(
      `for f in ${shellCommand([dir])}/*.json; do [ -f "$f" ] && { printf '%s ' "$f"; tr -d '\\n' < "$f"; echo; }; done; true`,
      {},
      subCall(call, 30_000),
    );
    const volumes: (VolumeInfo & { record: string })[] = [];
    for (const line of listed.stdout.split("\n")) {
      const at = line.indexOf(" ");
      if (at <= 0) continue;
      try {
        const r = JSON.parse(line.slice(at + 1)) as { name: string; labels: Labels; disk: string };
        volumes.push({ name: r.name, labels: r.labels, path: r.disk, record: line.slice(0, at) });
      } catch {
        // A record cut short by a crash: its volume is made again by the next start.
      }
    }
    return volumes;
  }

  async #listVolumes(filter: LabelFilter, call: Call): Promise<VolumeInfo[]> {
    const volumes: VolumeInfo[] = [];
    for (const guest of await this.#running(filter, call))
      volumes.push(...(await guest.driver.volumes.list(filter, call)));
    // A data disk is its AgentType's by namespace and name, not uid (dataDiskOf): one retained
    // by an AgentType deleted before, of a replica this one never ran, is its too.
    const { [LABEL_UID]: _uid, ...byName } = filter;
    for (const { record: _record, ...v } of await this.#dataVolumes(call))
      if (matchesLabels(v.labels, byName) && !volumes.some((known) => known.name === v.name)) volumes.push(v);
    return volumes;
  }

  async #removeVolume(name: string, call: Call): Promise<void> {
    const data = (await this.#dataVolumes(call)).find((v) => v.name === name);
    if (data !== undefined) {
      // Its guests are gone first (removeReplicas removes groups before volumes).
      await this.#virsh.shell(["rm", "-f", data.path, data.record], subCall(call, 30_000));
      return;
    }
    // A replica's volumes are named after its group, which its guests' names begin with.
    for (const guest of this.#guests.values()) {
      const group =
        replicaOf(guest.labels) === undefined ? "" : guestName({ ...guest.labels, [LABEL_SPEC_HASH]: "" });
      if (group !== "" && name.startsWith(`${group}-`)) await guest.driver.volumes.remove(name, call);
    }
  }

  /**
   * Ends the event channel, the adoptions in flight and the connections to guests. A call after
   * it connects anew (a test's own driver drops its connections this way and goes on).
   */
  async close(): Promise<void> {
    this.#closing.abort(new Error("the kvm driver is closed"));
    this.#adoptions.abort(new Error("the kvm driver is closed"));
    this.#adoptions = new AbortController();
    for (const name of [...this.#guests.keys()]) this.#forget(name);
  }
}

/** What a group's status says of its guest: libvirt's state ("saved" when suspended), size and use. */
export function guestMachine(g: GuestListing): GroupMachine {
  return { name: g.name, state: g.saved && g.state === "shut off" ? "saved" : g.state, ...g.usage };
}

function prefixed(guest: string, group: GroupInfo): GroupInfo {
  return { ...group, id: `${guest}/${group.id}` };
}

function prefixedContainer(guest: string, c: ContainerInfo): ContainerInfo {
  return { ...c, id: `${guest}/${c.id}`, groupId: `${guest}/${c.groupId}` };
}

export const kvmDriver: DriverFactory<typeof kvmSettings> = {
  kind: "kvm",
  settings: kvmSettings,
  create: (settings, transport, services) => {
    // Guests are reached through channels of the host's own SSH connection (guest-link.ts).
    if (!(transport instanceof SshConnection))
      throw new Error("the kvm driver needs an SSH connection to its host");
    if (services.guestKeys === undefined) throw new Error("the kvm driver needs a store for guests' keys");
    return new KvmDriver(settings, transport, services.guestKeys, services.groupEvents);
  },
};
