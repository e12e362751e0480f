// Wires the operator together: informers, the AgentType controller, leader election and
// the health and metrics endpoints; start() runs it until stop() finishes in-flight work
// and releases the lease.
import Fastify, { type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { AgentTool } from "./api/agenttool.ts";
import type { AgentType } from "./api/agenttype.ts";
import { FIELD_MANAGER } from "./build/names.ts";
import type { OperatorConfig } from "./config.ts";
import type { ApiServerAccess } from "./kube/access.ts";
import { KubeClient, type KubeObject, type ResourceType } from "./kube/client.ts";
import { EventRecorder } from "./kube/events.ts";
import { resources } from "./kube/resources.ts";
import { createAgentTypeReconciler, type OwnedInformers } from "./reconcile/agenttype-reconciler.ts";
import { Controller } from "./runtime/controller.ts";
import { InformerGroup, type InformerOptions, objectKey } from "./runtime/informer.ts";
import { LeaderElector } from "./runtime/leader-election.ts";
import { createMetrics, queueObserver } from "./runtime/metrics.ts";
import { WorkQueue } from "./runtime/workqueue.ts";
import { toolName } from "./tools/resolve-tools.ts";

const CONTROLLER = "agenttype";

export class Manager {
  readonly metrics = createMetrics();
  private readonly config: OperatorConfig;
  private readonly logger: Logger;
  private readonly client: KubeClient;
  private readonly abort = new AbortController();
  private readonly server: FastifyInstance;
  private readonly elector: LeaderElector | undefined;
  private controller: Controller | undefined;
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
    this.runController(signal);
  }

  /** Finishes the reconciles in flight, releases the lease and closes the endpoints. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.abort.abort();
      await this.controller?.stop();
      await this.elector?.release();
      await this.server.close();
    })();
    return this.stopped;
  }

  private informerOptions<T extends KubeObject>(type: ResourceType, extra: Partial<InformerOptions<T>> = {}) {
    return {
      client: this.client,
      type,
      resyncMs: this.config.resyncSeconds * 1000,
      watchTimeoutSeconds: 60,
      silenceMs: 120_000,
      retryBaseMs: 200,
      retryMaxMs: 30_000,
      logger: this.logger,
      onRestart: (reason: string) => this.metrics.watchRestarts.inc({ resource: type.plural, reason }),
      ...extra,
    } satisfies InformerOptions<T>;
  }

  private runController(signal: AbortSignal): void {
    const namespaces = this.config.namespaces;
    const agentTypes = new InformerGroup<KubeObject>(
      this.informerOptions(resources.agentType, {
        indexers: {
          // namespace/tool name → the AgentTypes asking for that tool.
          tools: (object) =>
            ((object as AgentType).spec?.tools ?? []).map((t) => `${object.metadata.namespace}/${t.name}`),
        },
      }),
      namespaces,
    );
    const agentTools = new InformerGroup<KubeObject>(this.informerOptions(resources.agentTool), namespaces);
    const ownedSelector = {
      labelSelector: `app.kubernetes.io/managed-by=${FIELD_MANAGER}`,
      // The reconciler reads only metadata and status of what it owns; the spec is ours anyway.
      transform: ({ apiVersion, kind, metadata, status }: KubeObject & { status?: unknown }) => {
        const { managedFields: _, ...kept } = metadata as KubeObject["metadata"] & {
          managedFields?: unknown;
        };
        return { apiVersion, kind, metadata: kept, status } as KubeObject;
      },
    };
    const owned: Record<keyof OwnedInformers, InformerGroup<KubeObject>> = {
      deployment: new InformerGroup(this.informerOptions(resources.deployment, ownedSelector), namespaces),
      statefulSet: new InformerGroup(this.informerOptions(resources.statefulSet, ownedSelector), namespaces),
      configMap: new InformerGroup(this.informerOptions(resources.configMap, ownedSelector), namespaces),
      service: new InformerGroup(this.informerOptions(resources.service, ownedSelector), namespaces),
      serviceAccount: new InformerGroup(
        this.informerOptions(resources.serviceAccount, ownedSelector),
        namespaces,
      ),
    };
    const queue = new WorkQueue({ observer: queueObserver(this.metrics, CONTROLLER) });

    agentTypes.on((event, object, previous) => {
      // Our own status writes change neither generation nor deletion: nothing to do for them.
      const unchanged =
        event === "update" &&
        previous?.metadata.generation === object.metadata.generation &&
        previous?.metadata.deletionTimestamp === object.metadata.deletionTimestamp &&
        JSON.stringify(previous?.metadata.labels) === JSON.stringify(object.metadata.labels);
      if (!unchanged) queue.add(objectKey(object));
    });
    agentTools.on((_event, object, previous) => {
      for (const tool of [object, previous]) {
        if (tool === undefined) continue;
        const key = `${tool.metadata.namespace}/${toolName(tool as AgentTool)}`;
        for (const agent of agentTypes.byIndex("tools", key)) queue.add(objectKey(agent));
      }
    });
    for (const informer of Object.values(owned)) {
      informer.on((_event, object) => {
        const owner = object.metadata.ownerReferences?.find(
          (ref) => ref.controller && ref.kind === "AgentType",
        );
        if (owner !== undefined) queue.add(`${object.metadata.namespace}/${owner.name}`);
      });
    }

    const all = [agentTypes, agentTools, ...Object.values(owned)];
    for (const informer of all) void informer.run(signal);
    this.controller = new Controller({
      name: CONTROLLER,
      queue,
      workers: this.config.workers,
      metrics: this.metrics,
      logger: this.logger,
      reconcile: createAgentTypeReconciler({
        client: this.client,
        agentTypes,
        agentTools,
        owned,
        settings: {
          sidecarImage: this.config.sidecarImage,
          wrapperImage: this.config.wrapperImage,
          imagePullPolicy: this.config.imagePullPolicy,
          sidecarResources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
          memoryMaxBytes: this.config.memoryMaxBytes,
        },
        events: new EventRecorder(this.client, FIELD_MANAGER, this.logger),
      }),
    });
    // Reconcile only once every cache is filled, so no reconcile acts on half a picture.
    void Promise.all(all.map((i) => i.synced)).then(() => {
      if (signal.aborted) return;
      this.informersSynced = true;
      this.logger.info("caches synced; reconciling");
      this.controller?.start();
    });
  }
}
