// The process around the controllers: health and metrics endpoints, leader election, and the
// informers the controllers ask for. start() runs every controller once the caches are filled;
// stop() finishes in-flight work and releases the lease. It knows no kind of its own.
import Fastify, { type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { FIELD_MANAGER } from "./build/names.ts";
import type { OperatorConfig } from "./config.ts";
import { setupAgentTypeController } from "./controllers/agenttype/controller.ts";
import type { Controller } from "./engine/controller.ts";
import type { ControllerContext, ControllerSetup, InformerExtras } from "./engine/controller-context.ts";
import { InformerGroup } from "./engine/informer.ts";
import { LeaderElector } from "./engine/leader-election.ts";
import { createMetrics } from "./engine/metrics.ts";
import type { ApiServerAccess } from "./kube/access.ts";
import { KubeClient, type KubeObject, type ResourceType } from "./kube/client.ts";
import { EventRecorder } from "./kube/events.ts";

/** Every controller this operator runs; a new one is a folder under controllers/ and a line here. */
const CONTROLLERS: ControllerSetup[] = [setupAgentTypeController];

export class Manager {
  readonly metrics = createMetrics();
  private readonly config: OperatorConfig;
  private readonly logger: Logger;
  private readonly client: KubeClient;
  private readonly abort = new AbortController();
  private readonly server: FastifyInstance;
  private readonly elector: LeaderElector | undefined;
  private controllers: Controller[] = [];
  private informersSynced = false;
  private stopped: Promise<void> | undefined;

  constructor(config: OperatorConfig, access: ApiServerAccess, logger: Logger) {
    this.config = config;
    this.logger = logger;
    this.client = new KubeClient(access);
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
        leaseDurationSeconds: 10,
        renewDeadlineMs: 8_000,
        retryPeriodMs: 2_000,
        logger,
        onLeaderChange: (leading) => this.metrics.leader.set({ name: config.leaseName }, leading ? 1 : 0),
      });
    }
  }

  /** Listens, waits for the lease (if elected), then runs the controller until stop(). */
  async start(): Promise<void> {
    const { bindAddress, port } = this.config;
    const address = await this.server.listen({ host: bindAddress, port });
    this.logger.info({ address }, "serving /metrics, /healthz and /readyz");
    const signal = this.abort.signal;
    if (this.elector !== undefined) {
      const lost = () => {
        // Another replica may be reconciling already: continuing would fight it.
        this.logger.fatal("lost the leader lease; exiting");
        process.exit(1);
      };
      if (!(await this.elector.acquire(signal, lost))) return;
    }
    this.runControllers(signal);
  }

  /** Finishes the reconciles in flight, releases the lease and closes the endpoints. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.abort.abort();
      await Promise.all(this.controllers.map((c) => c.stop()));
      await this.elector?.release();
      await this.server.close();
    })();
    return this.stopped;
  }

  private runControllers(signal: AbortSignal): void {
    const informers: InformerGroup<KubeObject>[] = [];
    const context: ControllerContext = {
      client: this.client,
      config: this.config,
      logger: this.logger,
      metrics: this.metrics,
      events: new EventRecorder(this.client, FIELD_MANAGER, this.logger),
      informer: <T extends KubeObject>(type: ResourceType, extras: InformerExtras<T> = {}) => {
        const informer = new InformerGroup<T>(
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
          this.config.namespaces,
        );
        informers.push(informer as unknown as InformerGroup<KubeObject>);
        return informer;
      },
    };
    this.controllers = CONTROLLERS.map((setup) => setup(context));
    for (const informer of informers) void informer.run(signal);
    // Reconcile only once every cache is filled, so no reconcile acts on half a picture.
    void Promise.all(informers.map((i) => i.synced)).then(() => {
      if (signal.aborted) return;
      this.informersSynced = true;
      this.logger.info("caches synced; reconciling");
      for (const controller of this.controllers) controller.start();
    });
  }
}
