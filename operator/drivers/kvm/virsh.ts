// libvirt on a host through `virsh` run over the host's SSH connection (see
// docs/adr/0010-kvm-driver.md): one command per operation, its errors turned into DriverErrors,
// and the parsers of its output, which are pure.
import { type Call, subCall } from "../call.ts";
import type { Labels } from "../config.ts";
import { CreationFailedError, type DriverError, NetworkError, NotFoundError } from "../errors.ts";
import { type HostTransport, shellCommand } from "../transport.ts";
import { METADATA_NS, parseGuestMetadata } from "./domain-xml.ts";

/** libvirt's domain states as `virsh domstate` prints them. */
export type DomainState =
  | "running"
  | "idle"
  | "paused"
  | "in shutdown"
  | "shut off"
  | "crashed"
  | "pmsuspended"
  | "no state";

/** What libvirt says a guest has and uses (`dominfo`, `domstats --balloon`). */
export interface GuestUsage {
  vcpus: number;
  /** Memory given to the guest. */
  memoryMiB: number;
  /** CPU time the guest has used since it started. */
  cpuSeconds: number;
  /** Resident memory of its QEMU process on the host; absent when libvirt cannot tell. */
  rssMiB?: number;
}

export interface GuestListing {
  name: string;
  state: DomainState;
  /** A managed save image exists: starting the domain resumes it where it was. */
  saved: boolean;
  labels: Labels;
  /** Absent when dominfo printed no sizes (a domain going away under us). */
  usage?: GuestUsage;
}

/** One line of `virsh event --loop --event lifecycle`: what happened to which domain. */
export interface LifecycleEvent {
  domain: string;
  /** libvirt's event and detail, for example "Stopped Destroyed" or "Crashed Panicked". */
  change: string;
  /** The event's first word: Defined, Undefined, Started, Suspended, Resumed, Stopped, Shutdown, PMSuspended, Crashed. */
  kind: string;
}

const SEPARATOR = "--agenttype-domain--";

/** A virsh failure as a DriverError: a missing domain is NotFound, a dead libvirtd retryable. */
export function virshError(what: string, target: string, stderr: string): DriverError {
  const message = `${what} on ${target}: ${stderr.trim() || "virsh failed"}`;
  if (/failed to get domain|Domain not found|no domain with matching name/i.test(stderr))
    return new NotFoundError(what, { cause: new Error(stderr.trim()) });
  if (
    /failed to connect to the hypervisor|Failed to connect socket|Cannot recv data|End of file while reading/i.test(
      stderr,
    )
  )
    return new NetworkError(message);
  return new CreationFailedError(message, { retryable: /already active|is locked|timed out/i.test(stderr) });
}

export class Virsh {
  readonly #transport: HostTransport;
  readonly #uri: string;

  constructor(transport: HostTransport, uri: string) {
    this.#transport = transport;
    this.#uri = uri;
  }

  get target(): string {
    return this.#transport.target;
  }

  /** Runs `virsh -c URI ARGS...`; a non-zero exit throws virshError. */
  async run(args: readonly string[], call: Call, stdin?: string): Promise<string> {
    const what = `virsh ${args.slice(0, 2).join(" ")}`;
    const result = await this.#transport.exec(
      shellCommand(["virsh", "-q", "-c", this.#uri, ...args]),
      stdin === undefined ? {} : { stdin },
      call,
    );
    if (result.exitCode !== 0) throw virshError(what, this.#transport.target, result.stderr);
    return result.stdout;
  }

  /** Runs a shell command line on the host (qemu-img, mkdir); a non-zero exit throws. */
  async shell(argv: readonly string[], call: Call): Promise<string> {
    const result = await this.#transport.exec(shellCommand(argv), {}, call);
    if (result.exitCode !== 0)
      throw new CreationFailedError(`${argv[0]} on ${this.#transport.target}: ${result.stderr.trim()}`);
    return result.stdout;
  }

  /** Every domain with its state and our labels, in one round trip. */
  async listGuests(call: Call): Promise<GuestListing[]> {
    const uri = shellCommand([this.#uri]);
    const ns = shellCommand([METADATA_NS]);
    // One exec: the list, then per domain its state, whether it has a managed save, its metadata.
    const script = [
      `for d in $(virsh -q -c ${uri} list --all --name); do`,
      `  echo ${SEPARATOR} "$d"`,
      `  virsh -q -c ${uri} dominfo "$d" 2>/dev/null`,
      `  virsh -q -c ${uri} domstats --balloon "$d" 2>/dev/null | grep 'balloon.rss='`,
      `  virsh -q -c ${uri} metadata "$d" ${ns} 2>/dev/null`,
      "done",
    ].join("\n");
    const result = await this.#transport.exec(script, {}, subCall(call, 60_000));
    if (result.exitCode !== 0) throw virshError("virsh list", this.#transport.target, result.stderr);
    return parseGuestList(result.stdout);
  }

  async state(name: string, call: Call): Promise<DomainState> {
    return parseDomainState(await this.run(["domstate", name], call));
  }

  /**
   * Streams libvirt's lifecycle events to `onEvent` until the channel ends: libvirtd stopping,
   * the host's connection dropping, or `call` aborted or past its deadline. Resolves with how
   * it ended; the caller opens it again.
   */
  async events(onEvent: (event: LifecycleEvent) => void, call: Call): Promise<string> {
    let partial = "";
    const result = await this.#transport.exec(
      shellCommand(["virsh", "-q", "-c", this.#uri, "event", "--loop", "--event", "lifecycle"]),
      {
        maxOutputBytes: 64 * 1024,
        onStdout: (chunk) => {
          const lines = (partial + chunk.toString("utf8")).split("\n");
          partial = lines.pop() ?? "";
          for (const line of lines) {
            const event = parseLifecycleEvent(line);
            if (event !== undefined) onEvent(event);
          }
        },
      },
      call,
    );
    return result.stderr.trim().split("\n")[0] || `virsh event exited with ${result.exitCode}`;
  }

  /**
   * The IPv4 address the network's DHCP server leased to a MAC address, once it has. By the MAC
   * the driver chose, not the domain's interfaces: libvirtd restarted reads those back wrong.
   */
  async address(network: string, mac: string, call: Call): Promise<string | undefined> {
    return parseDomifaddr(await this.run(["net-dhcp-leases", network, "--mac", mac], call));
  }
}

export function parseDomainState(text: string): DomainState {
  const state = text.trim().split("\n")[0]?.trim() ?? "";
  const known: DomainState[] = [
    "running",
    "idle",
    "paused",
    "in shutdown",
    "shut off",
    "crashed",
    "pmsuspended",
  ];
  return (known as string[]).includes(state) ? (state as DomainState) : "no state";
}

/** The first IPv4 address in `virsh domifaddr` or `net-dhcp-leases` output. */
export function parseDomifaddr(text: string): string | undefined {
  for (const line of text.split("\n")) {
    const m = /\sipv4\s+(\d{1,3}(?:\.\d{1,3}){3})\/\d+/.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

/** `event 'lifecycle' for domain 'NAME': Stopped Destroyed`, with or without a timestamp. */
export function parseLifecycleEvent(line: string): LifecycleEvent | undefined {
  const m = /event 'lifecycle' for domain '([^']+)': (\S.*)$/.exec(line.trim());
  if (m === null) return undefined;
  const change = (m[2] ?? "").trim();
  return { domain: m[1] ?? "", change, kind: change.split(/\s+/)[0] ?? "" };
}

/** The sizes and CPU time in `dominfo` output, with the RSS of a `domstats --balloon` line. */
export function parseGuestUsage(text: string): GuestUsage | undefined {
  const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, "im").exec(text)?.[1]?.trim();
  const vcpus = Number(field("CPU\\(s\\)"));
  const memoryKiB = Number(/^(\d+)\s*KiB/.exec(field("Max memory") ?? "")?.[1]);
  if (!Number.isFinite(vcpus) || vcpus <= 0 || !Number.isFinite(memoryKiB)) return undefined;
  const cpu = /^([\d.]+)s$/.exec(field("CPU time") ?? "")?.[1];
  const rss = /balloon\.rss=(\d+)/.exec(text)?.[1];
  return {
    vcpus,
    memoryMiB: Math.round(memoryKiB / 1024),
    cpuSeconds: cpu === undefined ? 0 : Number(cpu),
    ...(rss === undefined ? {} : { rssMiB: Math.round(Number(rss) / 1024) }),
  };
}

export function parseGuestList(text: string): GuestListing[] {
  const guests: GuestListing[] = [];
  for (const block of text.split(`${SEPARATOR} `).slice(1)) {
    const [name = "", ...rest] = block.split("\n");
    const body = rest.join("\n");
    const saved = /^Managed save:\s*yes/im.test(body);
    const state = /^State:\s*(.+)$/im.exec(body)?.[1] ?? "";
    const usage = parseGuestUsage(body);
    guests.push({
      name: name.trim(),
      state: parseDomainState(state),
      saved,
      labels: parseGuestMetadata(body),
      ...(usage === undefined ? {} : { usage }),
    });
  }
  return guests;
}
