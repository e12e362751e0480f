// Leader election on a coordination.k8s.io Lease, as client-go does it: the holder renews the
// lease; a candidate takes it over once it has seen no renewal for a whole lease duration by
// its own clock (so clock skew between machines does not matter), and the holder releases it
// on shutdown so a successor need not wait.
import type { Logger } from "pino";
import { isNotFound, KubeApiError, type KubeClient, type KubeObject } from "../kube/client.ts";
import { resources } from "../kube/resources.ts";

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds: number;
  /** The holder gives up leadership if it could not renew for this long. */
  renewDeadlineMs: number;
  retryPeriodMs: number;
  logger: Logger;
  onLeaderChange?: (leading: boolean) => void;
}

interface Lease extends KubeObject {
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

const microTime = (date: Date) => date.toISOString().replace("Z", "000Z");

export class LeaderElector {
  private readonly options: LeaderElectionOptions;
  private observed: { record: string; at: number } | undefined;
  private lease: Lease | undefined;
  leading = false;

  constructor(options: LeaderElectionOptions) {
    this.options = options;
  }

  /**
   * Resolves when this process becomes leader (or `signal` aborts). Then keeps renewing in
   * the background; `lost` is called if renewal fails for longer than the renew deadline.
   */
  async acquire(signal: AbortSignal, lost: () => void): Promise<boolean> {
    const { retryPeriodMs } = this.options;
    while (!signal.aborted) {
      if (await this.tryAcquireOrRenew()) {
        this.setLeading(true);
        void this.renewLoop(signal, lost);
        return true;
      }
      await new Promise((resolve) => setTimeout(resolve, retryPeriodMs * (1 + Math.random() * 0.2)).unref());
    }
    return false;
  }

  /** Gives the lease up so that another replica takes over at once. */
  async release(): Promise<void> {
    if (!this.leading || this.lease === undefined) return;
    this.setLeading(false);
    const released: Lease = {
      ...this.lease,
      spec: {
        ...this.lease.spec,
        holderIdentity: "",
        leaseDurationSeconds: 1,
        renewTime: microTime(new Date()),
      },
    };
    try {
      await this.options.client.replace(resources.lease, released);
    } catch (error) {
      this.options.logger.warn({ err: (error as Error).message }, "could not release the lease");
    }
  }

  private setLeading(leading: boolean): void {
    if (this.leading === leading) return;
    this.leading = leading;
    this.options.logger.info(
      { lease: this.options.name, identity: this.options.identity, leading },
      "leadership changed",
    );
    this.options.onLeaderChange?.(leading);
  }

  private async renewLoop(signal: AbortSignal, lost: () => void): Promise<void> {
    const { retryPeriodMs, renewDeadlineMs } = this.options;
    let lastRenew = Date.now();
    while (!signal.aborted && this.leading) {
      await new Promise((resolve) => setTimeout(resolve, retryPeriodMs).unref());
      if (signal.aborted || !this.leading) return;
      if (await this.tryAcquireOrRenew()) {
        lastRenew = Date.now();
      } else if (Date.now() - lastRenew > renewDeadlineMs) {
        this.setLeading(false);
        lost();
        return;
      }
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { client, namespace, name, identity, leaseDurationSeconds, logger } = this.options;
    const now = new Date();
    const mine = (previous?: Lease["spec"]): Lease["spec"] => ({
      holderIdentity: identity,
      leaseDurationSeconds,
      acquireTime: previous?.holderIdentity === identity ? previous.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: (previous?.leaseTransitions ?? 0) + (previous?.holderIdentity === identity ? 0 : 1),
    });
    try {
      let lease: Lease;
      try {
        lease = await client.get<Lease>(resources.lease, namespace, name);
      } catch (error) {
        if (!isNotFound(error)) throw error;
        this.lease = await client.create<Lease>(resources.lease, namespace, {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec: { ...mine(), leaseTransitions: 0 },
        });
        return true;
      }
      const spec = lease.spec ?? {};
      const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.leaseDurationSeconds]);
      if (this.observed?.record !== record) this.observed = { record, at: Date.now() };
      const held =
        spec.holderIdentity !== undefined && spec.holderIdentity !== "" && spec.holderIdentity !== identity;
      const expired =
        Date.now() - this.observed.at > (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
      if (held && !expired) return false;
      this.lease = await client.replace<Lease>(resources.lease, { ...lease, spec: mine(spec) });
      return true;
    } catch (error) {
      // 409: another replica wrote the lease first; it wins this round.
      if (!(error instanceof KubeApiError && error.status === 409)) {
        logger.warn({ err: (error as Error).message }, "leader election request failed");
      }
      return false;
    }
  }
}
