// The process around the controllers: health and metrics endpoints, leader election, and the
// informers the controllers ask for. start() runs every controller once the caches are filled;
// stop() cancels in-flight work and releases the lease; a lapsed lease stops the controllers at
// once and exits (docs/adr/0004-leader-election-deadlines.md). It knows no kind of its own.
import { setTimeout as sleep } from "node:timers/promises";
import Fastify, { type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { FIELD_MANAGER } from "./build/names.ts";
import type { OperatorConfig } from "./config.ts";
import { setupAgentHostController } from "./controllers/agenthost/controller.ts";
import { setupAgentToolController } from "./controllers/agenttool/controller.ts";
import { setupAgentTypeController } from "./controllers/agenttype/controller.ts";
import type { Controller } from "./engine/controller.ts";
import type { ControllerContext, ControllerSetup, InformerExtras } from "./engine/controller-context.ts";
import { InformerGroup } from "./engine/informer.ts";
import { LeaderElector } from "./engine/leader-election.ts";
import { createMetrics } from "./engine/metrics.ts";
import { SharedInformers } from "./engine/shared-informers.ts";
import { SecretGuestKeyStore } from "./hosts/guest-key-secrets.ts";
import { HostConnections } from "./hosts/host-connections.ts";
import type { ApiServerAccess } from "./kube/access.ts";
import { KubeClient, type KubeObject, type ResourceType } from "./kube/client.ts";
import { EventRecorder } from "./kube/events.ts";
import { serveSubresources } from "./subresources/serve.ts";
import type { SubresourceServer } from "./subresources/server.ts";

/** Every controller this operator runs; a new one is a folder under controllers/ and a line here. */
const CONTROLLERS: ControllerSetup[] = [
  setupAgentTypeController,
  setupAgentToolController,
  setupAgentHostController,
];

// client-go's defaults scaled down (15 s, 10 s, 2 s) for a faster failover; the order is what
// matters: every write ends before the renew deadline, which ends before the lease does.
const LEASE_DURATION_SECONDS = 10;
const RENEW_DEADLINE_MS = 8_000;
const RETRY_PERIOD_MS = 2_000;
/** How long a replica that lost its lease waits for its cancelled reconciles before it exits. */
const EXIT_GRACE_MS = 1_000;

export class Manager {
  readonly metrics = createMetrics();
  private readonly config: OperatorConfig;
  private readonly logger: Logger;
  private readonly client: KubeClient;
  private readonly abort = new AbortController();
  private readonly server: FastifyInstance;
  private readonly elector: LeaderElector | undefined;
  private controllers: Controller[] = [];
  private readonly hosts: HostConnections;
  /**
   * The aggregated API's own connections to hosts: it serves on standbys too, and on a leader
   * whose controllers stopped, so it does not share the controllers' (closed with them).
   */
  private readonly subresourceHosts: HostConnections;
  private readonly serving = new AbortController();
  private informersSynced = false;
  private subresources: Promise<SubresourceServer | undefined> | undefined;
  private stopped: Promise<void> | undefined;

  constructor(config: OperatorConfig, access: ApiServerAccess, logger: Logger) {
    this.config = config;
    this.logger = logger;
    this.client = new KubeClient(access, { requestTimeoutMs: config.requestTimeoutSeconds * 1000 });
    this.hosts = new HostConnections({}, { guestKeys: new SecretGuestKeyStore(this.client) });
    this.subresourceHosts = new HostConnections({}, { guestKeys: new SecretGuestKeyStore(this.client) });
    this.server = Fastify({ logger: false });
    this.server.get("/healthz", async () => "ok");
    this.server.get("/readyz", async (_request, reply) => {
      // A standby replica is ready: it is healthy and waiting for the lease.
      const leading = this.elector === undefined || this.elector.leading;
      if (leading && !this.informersSynced) return reply.code(503).send("informers not synced");
      return "ok";
    });
    this.server.get("/metrics", async (_request, reply) =>
      reply.type(this.metrics.registry.contentType).send(await this.metrics.registry.metrics()),
    );
    if (config.leaderElection) {
      this.elector = new LeaderElector({
        client: this.client,
        namespace: config.leaseNamespace,
        name: config.leaseName,
        identity: config.identity,
        leaseDurationSeconds: LEASE_DURATION_SECONDS,
        renewDeadlineMs: RENEW_DEADLINE_MS,
        retryPeriodMs: RETRY_PERIOD_MS,
        logger,
        onLeaderChange: (leading) => this.metrics.leader.set({ name: config.leaseName }, leading ? 1 : 0),
      });
      // A standby says so from the start, so that a dashboard tells it from a dead replica.
      this.metrics.leader.set({ name: config.leaseName }, 0);
    }
  }

  /** Listens, waits for the lease (if elected), then runs the controller until stop(). */
  async start(): Promise<void> {
    const { bindAddress, port } = this.config;
    const address = await this.server.listen({ host: bindAddress, port });
    this.logger.info({ address }, "serving /metrics, /healthz and /readyz");
    const signal = this.abort.signal;
    // Leader and standbys alike, so that a failover does not take the aggregated API away.
    if (this.config.subresourcesPort > 0)
      this.subresources = serveSubresources(
        {
          client: this.client,
          hosts: this.subresourceHosts,
          events: new EventRecorder(this.client, FIELD_MANAGER, this.logger),
          logger: this.logger,
        },
        {
          namespace: this.config.leaseNamespace,
          service: this.config.subresourcesService,
          bindAddress,
          port: this.config.subresourcesPort,
          maxSessionsPerHost: this.config.subresourcesMaxSessions,
        },
        this.serving.signal,
      );
    if (this.elector !== undefined) {
      const lost = () => {
        // Another replica may be reconciling already: stop at once (the write window of the
        // controllers' client closed with the lease), then exit as controller-runtime does,
        // to come back as a standby with fresh caches.
        const stopped = this.stopControllers("lost the leader lease");
        this.logger.fatal("lost the leader lease: reconciles cancelled; exiting");
        void Promise.race([stopped, sleep(EXIT_GRACE_MS)]).then(() => process.exit(1));
      };
      if (!(await this.elector.acquire(signal, lost))) return;
    }
    this.runControllers(signal);
  }

  /** Cancels the reconciles in flight, waits for them, releases the lease and closes the endpoints. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await this.stopControllers("the operator is shutting down");
      await this.elector?.release();
      this.serving.abort();
      await (await this.subresources)?.close();
      this.subresourceHosts.closeAll();
      await this.server.close();
    })();
    return this.stopped;
  }

  /** Stops the informers and aborts every reconcile at once; resolves when they have returned. */
  private stopControllers(reason: string): Promise<void> {
    this.abort.abort();
    return Promise.all(this.controllers.map((c) => c.stop(reason))).then(() => this.hosts.closeAll());
  }

  private runControllers(signal: AbortSignal): void {
    // One informer per kind and selector, however many controllers ask for it.
    const informers = new SharedInformers(
      <T extends KubeObject>(type: ResourceType, extras: InformerExtras<T>) =>
        new InformerGroup<T>(
          {
            client: this.client,
            type,
            resyncMs: this.config.resyncSeconds * 1000,
            watchTimeoutSeconds: 60,
            silenceMs: 120_000,
            retryBaseMs: 200,
            retryMaxMs: 30_000,
            logger: this.logger,
            onRestart: (reason) => this.metrics.watchRestarts.inc({ resource: type.plural, reason }),
            ...extras,
          },
          // A cluster-scoped kind has one informer, whatever namespaces are watched.
          type.namespaced ? this.config.namespaces : [],
        ),
    );
    // Reconcilers write only while this replica leads: not after its renew deadline passed.
    const elector = this.elector;
    const client =
      elector === undefined ? this.client : this.client.withWriteWindow(() => elector.remainingMs());
    const context: ControllerContext = {
      client,
      config: this.config,
      logger: this.logger,
      metrics: this.metrics,
      events: new EventRecorder(client, FIELD_MANAGER, this.logger),
      hosts: this.hosts,
      informer: <T extends KubeObject>(type: ResourceType, extras: InformerExtras<T> = {}) =>
        informers.informer(type, extras),
    };
    this.controllers = CONTROLLERS.map((setup) => setup(context));
    for (const informer of informers.all()) void informer.run(signal);
    // Reconcile only once every cache is filled, so no reconcile acts on half a picture.
    void Promise.all(informers.all().map((i) => i.synced)).then(() => {
      if (signal.aborted) return;
      this.informersSynced = true;
      this.logger.info("caches synced; reconciling");
      for (const controller of this.controllers) controller.start();
    });
  }
}
