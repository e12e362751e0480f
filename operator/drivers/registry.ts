// Drivers by name: a driver is one file exporting a DriverFactory, and one line in drivers.ts
// registering it. Settings are validated with the factory's schema before it sees them.
import type * as z from "zod";
import { parseConfig } from "./config.ts";
import type { ContainerDriver, GroupEvent } from "./driver.ts";
import type { GuestKeyStore } from "./kvm/guest-keys.ts";
import type { HostTransport } from "./transport.ts";

/** What the operator lends a driver beside its transport; a driver that needs one says so. */
export interface DriverServices {
  /** Where guests' keys are kept (the KVM driver): a Secret owned by the AgentType in the operator. */
  guestKeys?: GuestKeyStore;
  /**
   * Told of what happens to groups as the backend sees it (the KVM driver's libvirt event
   * channel); a driver given it keeps a channel open for as long as it lives.
   */
  groupEvents?: (event: GroupEvent) => void;
}

export interface DriverFactory<S extends z.ZodType = z.ZodType> {
  /** The name an AgentHost's `spec.driver` uses. */
  kind: string;
  /** Schema of the driver's settings (for example an AgentHost's `spec.containerd`). */
  settings: S;
  create(settings: z.output<S>, transport: HostTransport, services: DriverServices): ContainerDriver;
}

export class DriverRegistry {
  readonly #factories = new Map<string, DriverFactory>();

  register<S extends z.ZodType>(factory: DriverFactory<S>): this {
    if (this.#factories.has(factory.kind)) throw new Error(`driver ${factory.kind} is registered twice`);
    this.#factories.set(factory.kind, factory as unknown as DriverFactory);
    return this;
  }

  kinds(): string[] {
    return [...this.#factories.keys()].sort();
  }

  /** A driver of `kind` on `transport`; unknown kinds and bad settings throw, naming them. */
  create(
    kind: string,
    settings: unknown,
    transport: HostTransport,
    services: DriverServices = {},
  ): ContainerDriver {
    const factory = this.#factories.get(kind);
    if (factory === undefined)
      throw new Error(`no driver named ${JSON.stringify(kind)}; known: ${this.kinds().join(", ") || "none"}`);
    return factory.create(
      parseConfig(factory.settings, `${kind} driver settings`, settings ?? {}),
      transport,
      services,
    );
  }
}
