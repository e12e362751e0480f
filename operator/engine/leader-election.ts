// Leader election on a coordination.k8s.io Lease, as client-go does it: the holder renews the
// lease; a candidate takes it over once it has seen no renewal for a whole lease duration by
// its own clock (so clock skew between machines does not matter), and the holder releases it
// on shutdown so a successor need not wait. A holder that has not renewed within its renew
// deadline, counted from the start of its last successful renewal, is no longer leader: every
// Lease call is bounded by that deadline, and remainingMs() closes the write window of the
// controllers' client at that instant (docs/adr/0004-leader-election-deadlines.md).
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { isNotFound, KubeApiError, type KubeClient, type KubeObject } from "../kube/client.ts";
import { resources } from "../kube/resources.ts";

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds: number;
  /**
   * The holder gives up leadership when it has not renewed for this long; shorter than the
   * lease duration, so that it has stopped before a candidate may take over.
   */
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
  /** performance.now() at which leadership lapses unless renewed: a monotonic clock, which also runs while the process is stopped. */
  private validUntil = 0;
  private expiry: NodeJS.Timeout | undefined;
  private lost: () => void = () => {};
  leading = false;

  constructor(options: LeaderElectionOptions) {
    if (options.renewDeadlineMs >= options.leaseDurationSeconds * 1000) {
      throw new Error("leader election: the renew deadline must be shorter than the lease duration");
    }
    this.options = options;
  }

  /** Milliseconds this replica may still act as leader; 0 when it is not the leader. */
  remainingMs(): number {
    return this.leading ? Math.max(0, this.validUntil - performance.now()) : 0;
  }

  /**
   * Resolves when this process becomes leader (or `signal` aborts). Then keeps renewing in
   * the background; `lost` is called, once, the instant the renew deadline passes without a
   * renewal.
   */
  async acquire(signal: AbortSignal, lost: () => void): Promise<boolean> {
    const { retryPeriodMs, renewDeadlineMs } = this.options;
    this.lost = lost;
    while (!signal.aborted) {
      const startedAt = performance.now();
      const attempt = AbortSignal.any([signal, AbortSignal.timeout(renewDeadlineMs)]);
      if ((await this.tryAcquireOrRenew(attempt)) && performance.now() < startedAt + renewDeadlineMs) {
        this.renewed(startedAt);
        this.setLeading(true);
        void this.renewLoop(signal);
        return true;
      }
      await sleep(retryPeriodMs * (1 + Math.random() * 0.2), undefined, { signal, ref: false }).catch(
        () => {},
      );
    }
    return false;
  }

  /** Gives the lease up so that another replica takes over at once. */
  async release(): Promise<void> {
    if (!this.leading || this.lease === undefined) return;
    this.setLeading(false);
    clearTimeout(this.expiry);
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
      await this.options.client.replace(
        resources.lease,
        released,
        AbortSignal.timeout(this.options.renewDeadlineMs),
      );
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

  /** A renewal that started at `startedAt` succeeded: leadership holds until the renew deadline from then. */
  private renewed(startedAt: number): void {
    this.validUntil = startedAt + this.options.renewDeadlineMs;
    clearTimeout(this.expiry);
    this.expiry = setTimeout(() => this.expire(), this.validUntil - performance.now());
  }

  private expire(): void {
    if (!this.leading) return;
    const left = this.validUntil - performance.now();
    if (left > 0) {
      this.expiry = setTimeout(() => this.expire(), left);
      return;
    }
    this.options.logger.error(
      { lease: this.options.name, renewDeadlineMs: this.options.renewDeadlineMs },
      "could not renew the lease within the renew deadline",
    );
    this.setLeading(false);
    this.lost();
  }

  private async renewLoop(signal: AbortSignal): Promise<void> {
    const { retryPeriodMs } = this.options;
    while (!signal.aborted && this.leading) {
      await sleep(retryPeriodMs, undefined, { signal, ref: false }).catch(() => {});
      if (signal.aborted || !this.leading) return;
      const startedAt = performance.now();
      // A hung connection must not hold this loop, or the lease, past the renew deadline.
      const attempt = AbortSignal.any([
        signal,
        AbortSignal.timeout(Math.max(1, Math.floor(this.remainingMs()))),
      ]);
      if ((await this.tryAcquireOrRenew(attempt)) && this.leading) this.renewed(startedAt);
    }
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
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
        lease = await client.get<Lease>(resources.lease, namespace, name, signal);
      } catch (error) {
        if (!isNotFound(error)) throw error;
        this.lease = await client.create<Lease>(
          resources.lease,
          namespace,
          {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            metadata: { name, namespace },
            spec: { ...mine(), leaseTransitions: 0 },
          },
          signal,
        );
        return true;
      }
      const spec = lease.spec ?? {};
      const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.leaseDurationSeconds]);
      if (this.observed?.record !== record) this.observed = { record, at: performance.now() };
      const held =
        spec.holderIdentity !== undefined && spec.holderIdentity !== "" && spec.holderIdentity !== identity;
      const expired =
        performance.now() - this.observed.at > (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
      if (held && !expired) return false;
      this.lease = await client.replace<Lease>(resources.lease, { ...lease, spec: mine(spec) }, signal);
      return true;
    } catch (error) {
      // 409: another replica wrote the lease first; it wins this round. A non-API error
      // with the signal aborted is our own shutdown.
      const conflict = error instanceof KubeApiError && error.status === 409;
      const shutdown = signal.aborted && !(error instanceof KubeApiError);
      if (!conflict && !shutdown) {
        logger.warn({ err: (error as Error).message }, "leader election request failed");
      }
      return false;
    }
  }
}
