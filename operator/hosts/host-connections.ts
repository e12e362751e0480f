// One SSH connection and one driver per AgentHost, shared by every controller (the AgentHost
// probe and the agents placed on the host): a host is reached over a single multiplexed
// connection. A change of the host's address, pinned key, driver settings or client key
// replaces the connection; a deleted host's is closed. What drivers see happen to groups on a
// host (a guest stopped) goes to the listeners, with the host's name.
import { createHash } from "node:crypto";
import { type AgentHost, containerLogs } from "../../api/agenthost.ts";
import { parseQuantity } from "../build/quantity.ts";
import type { ContainerDriver, GroupEvent, LogRotation } from "../drivers/driver.ts";
import { drivers } from "../drivers/drivers.ts";
import type { DriverServices } from "../drivers/registry.ts";
import { SshConnection, type SshOptions } from "../drivers/ssh/connection.ts";

export interface HostAccess {
  connection: SshConnection;
  driver: ContainerDriver;
}

/** The settings the host's driver takes, from an AgentHost's spec. Pure. */
export function driverSettings(host: AgentHost): Record<string, unknown> {
  if (host.spec.driver === "kvm") {
    const k = host.spec.kvm;
    return {
      ...(k?.uri === undefined ? {} : { uri: k.uri }),
      ...(k?.network === undefined ? {} : { network: k.network }),
      ...(k?.baseImage === undefined ? {} : { baseImage: k.baseImage }),
      ...(k?.stateDir === undefined ? {} : { stateDir: k.stateDir }),
      ...(k?.bootTimeoutSeconds === undefined ? {} : { bootTimeoutSeconds: k.bootTimeoutSeconds }),
    };
  }
  const c = host.spec.containerd;
  return {
    ...(c?.socket === undefined ? {} : { socket: c.socket }),
    ...(c?.stateDir === undefined ? {} : { stateDir: c.stateDir }),
    ...(c?.cgroupParent === undefined ? {} : { cgroupParent: c.cgroupParent }),
    ...(c?.crictl === undefined ? {} : { crictl: c.crictl }),
  };
}

/** How the host's agents' log files rotate, from its spec (the kubelet's defaults when unset). Pure. */
export function logRotation(host: AgentHost): LogRotation {
  const { maxSize, maxFiles } = containerLogs.parse(host.spec.containerLogs ?? {});
  return { maxBytes: parseQuantity(maxSize), maxFiles };
}

/** What a connection depends on: when it changes, the connection is made anew. Pure. */
export function accessDigest(host: AgentHost, privateKey: string): string {
  return createHash("sha256")
    .update(JSON.stringify([host.spec.driver, host.spec.ssh, driverSettings(host), privateKey]))
    .digest("hex");
}

export class HostConnections {
  readonly #entries = new Map<string, HostAccess & { digest: string }>();
  readonly #options: Partial<SshOptions>;
  readonly #services: DriverServices;
  readonly #listeners: ((host: string, event: GroupEvent) => void)[] = [];

  constructor(options: Partial<SshOptions> = {}, services: DriverServices = {}) {
    this.#options = options;
    this.#services = services;
  }

  /** The host's connection and driver, made anew when the host or its key changed. */
  access(host: AgentHost, privateKey: string): HostAccess {
    const name = host.metadata.name;
    const digest = accessDigest(host, privateKey);
    const current = this.#entries.get(name);
    if (current?.digest === digest) return current;
    if (current !== undefined) this.#close(current);
    const { ssh } = host.spec;
    const connection = new SshConnection(
      { host: ssh.address, port: ssh.port, username: ssh.user, privateKey, hostKey: ssh.hostKey },
      this.#options,
    );
    const driver = drivers.create(host.spec.driver, driverSettings(host), connection, {
      ...this.#services,
      groupEvents: (event) => {
        for (const listener of this.#listeners) listener(name, event);
      },
    });
    const entry = { connection, driver, digest };
    this.#entries.set(name, entry);
    return entry;
  }

  /** Calls `listener` with what happens to groups on any host, as its driver sees it. */
  onGroupEvent(listener: (host: string, event: GroupEvent) => void): void {
    this.#listeners.push(listener);
  }

  /** The current access to a host, if one was made. */
  existing(name: string): HostAccess | undefined {
    return this.#entries.get(name);
  }

  forget(name: string): void {
    const entry = this.#entries.get(name);
    if (entry === undefined) return;
    this.#entries.delete(name);
    this.#close(entry);
  }

  closeAll(): void {
    for (const name of [...this.#entries.keys()]) this.forget(name);
  }

  #close(entry: HostAccess): void {
    void entry.driver.close().catch(() => {});
    entry.connection.close();
  }
}
