// The sidecar: the agent-facing API on loopback and the health and metrics port, over the
// services (router, tools) that are rebuilt when the config file changes (the last good config is kept when the
// new one is invalid).
import type { AddressInfo } from "node:net";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import type { SidecarConfig } from "../api/sidecarconfig.ts";
import { SIDECAR_STATUS_PATH } from "../api/sidecarstatus.ts";
import { credentialPaths, loadConfig, watchPath } from "./config.ts";
import { registerAnthropicApi } from "./llm/messages/api.ts";
import { registerOllamaApi } from "./llm/ollama-api.ts";
import { type ModelLifecycle, worthLogging } from "./llm/ollama-models.ts";
import { registerOpenAiApi } from "./llm/openai-api.ts";
import { registerResponsesApi } from "./llm/responses/api.ts";
import { MemoryStore } from "./memory.ts";
import { registerMemoryRoutes } from "./memory-api.ts";
import { Metrics } from "./metrics.ts";
import { buildServices, type Services } from "./services.ts";
import { statusBody, unreadyReason } from "./status.ts";
import { registerToolRoutes } from "./tools/routes.ts";

/** The agent API binds loopback only: it is for the agent in the same pod, nobody else. */
const AGENT_HOST = "127.0.0.1";
/** Largest request body the agent may send; long contexts fit, a runaway client does not. */
const BODY_LIMIT_BYTES = 8 * 1024 * 1024;

export interface SidecarOptions {
  configPath: string;
  logger: FastifyBaseLogger;
  /** Log request bodies (prompts) at debug level; off in production. */
  debug?: boolean;
  /** How often the config file is checked for changes. */
  reloadIntervalMs?: number;
  /** Overrides of the configured ports, for tests (0 picks a free port). */
  port?: number;
  metricsPort?: number;
}

export class Sidecar {
  readonly metrics: Metrics;
  readonly memory: MemoryStore;
  readonly #agentApp: FastifyInstance;
  readonly #opsApp: FastifyInstance;
  readonly #logger: FastifyBaseLogger;
  readonly #configPath: string;
  #services: Services;
  readonly #reloadIntervalMs: number;
  #watchers: (() => void)[] = [];

  private constructor(options: SidecarOptions, services: Services, metrics: Metrics) {
    this.metrics = metrics;
    this.#services = services;
    this.#logger = options.logger;
    this.#configPath = options.configPath;
    this.#reloadIntervalMs = options.reloadIntervalMs ?? 2000;
    const { memory } = services.config;
    this.memory = new MemoryStore(memory.type === "persistent" ? memory.path : undefined, memory.maxBytes);

    this.#agentApp = Fastify({
      loggerInstance: options.logger,
      bodyLimit: BODY_LIMIT_BYTES,
      // Request lines name memory keys and cost time per request; failures are logged instead.
      logController: new LogController({ disableRequestLogging: true }),
    });
    if (options.debug === true) {
      this.#agentApp.addHook("preHandler", async (request) => {
        request.log.debug({ method: request.method, url: request.url, body: request.body }, "agent request");
      });
    }
    // With request logging off, fastify would log unexpected errors nowhere; they are logged here.
    this.#agentApp.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
      if ((error.statusCode ?? 500) >= 500)
        request.log.error({ err: error, url: request.url }, "request failed");
      return reply.send(error);
    });
    registerOpenAiApi(this.#agentApp, () => this.#services);
    registerOllamaApi(this.#agentApp, () => this.#services);
    registerAnthropicApi(this.#agentApp, () => this.#services);
    registerResponsesApi(this.#agentApp, () => this.#services);
    registerToolRoutes(this.#agentApp, () => this.#services.tools, metrics);
    registerMemoryRoutes(this.#agentApp, this.memory, metrics);

    this.#opsApp = Fastify({
      loggerInstance: options.logger,
      logController: new LogController({ disableRequestLogging: true }),
    });
    this.#opsApp.get("/healthz", async () => "ok");
    this.#opsApp.get("/readyz", async (_request, reply) => {
      const reason = unreadyReason(this.#services);
      return reason === undefined ? "ok" : reply.code(503).send(reason);
    });
    this.#opsApp.get(SIDECAR_STATUS_PATH, async () => statusBody(this.#services));
    this.#opsApp.get("/metrics", async (_request, reply) =>
      reply.header("content-type", metrics.registry.contentType).send(await metrics.registry.metrics()),
    );
  }

  /** Loads and validates the config; throws with every offending field named when it is bad. */
  static async start(options: SidecarOptions): Promise<Sidecar> {
    const loaded = loadConfig(options.configPath);
    if (!loaded.ok) throw new Error(loaded.message);
    const metrics = new Metrics();
    const services = await buildServices(loaded.config, metrics);
    const sidecar = new Sidecar(options, services, metrics);
    const { listen } = loaded.config;
    await sidecar.#agentApp.listen({ host: AGENT_HOST, port: options.port ?? listen.port });
    await sidecar.#opsApp.listen({
      host: listen.metricsHost,
      port: options.metricsPort ?? listen.metricsPort,
    });
    sidecar.#watch();
    sidecar.#prepareModels(services);
    options.logger.info(
      { agentUrl: sidecar.agentUrl, metricsPort: (sidecar.#opsApp.server.address() as AddressInfo).port },
      "sidecar ready",
    );
    return sidecar;
  }

  get config(): SidecarConfig {
    return this.#services.config;
  }

  get agentUrl(): string {
    return `http://${AGENT_HOST}:${(this.#agentApp.server.address() as AddressInfo).port}`;
  }

  get metricsUrl(): string {
    return `http://127.0.0.1:${(this.#opsApp.server.address() as AddressInfo).port}`;
  }

  /**
   * Starts the lifecycle of the services' models; each change reaches the provider states
   * (/readyz, /status), the metrics and, a line per step or tenth of a layer, the log.
   */
  #prepareModels(services: Services): void {
    const logged = new Map<string, ModelLifecycle>();
    void services.models.start((provider, model, lifecycle) => {
      services.router?.states.modelChanged(provider, lifecycle, Date.now());
      const labels = { provider, gen_ai_request_model: model };
      this.metrics.modelReady.set(labels, lifecycle.phase === "ready" ? 1 : 0);
      if (lifecycle.totalBytes !== undefined) {
        this.metrics.modelPullTotalBytes.set(labels, lifecycle.totalBytes);
        this.metrics.modelPullCompletedBytes.set(labels, lifecycle.completedBytes ?? 0);
      }
      const failed = lifecycle.phase === "failed" || lifecycle.phase === "unreachable";
      if (failed) this.metrics.modelFailures.inc(labels);
      if (!worthLogging(logged.get(provider), lifecycle)) return;
      logged.set(provider, lifecycle);
      const line = { provider, model, phase: lifecycle.phase, pull: lifecycle.pull };
      const message = services.redact.text(lifecycle.message);
      if (failed) this.#logger.warn(line, message);
      else this.#logger.info(line, message);
    });
  }

  /** Watches the config file and the credentials the running config reads. */
  #watch(): void {
    for (const stop of this.#watchers) stop();
    const paths = [this.#configPath, ...credentialPaths(this.#services.config)];
    this.#watchers = paths.map((path) => watchPath(path, this.#reloadIntervalMs, () => void this.reload()));
  }

  /** Re-reads the config file and credentials; a bad config is logged and the running one kept. */
  async reload(): Promise<boolean> {
    const loaded = loadConfig(this.#configPath);
    let next: Services;
    try {
      if (!loaded.ok) throw new Error(loaded.message);
      next = await buildServices(loaded.config, this.metrics, this.#services.budgets);
    } catch (error) {
      this.metrics.configReloads.inc({ result: "invalid" });
      this.#logger.error(`config reload refused, keeping the running config: ${(error as Error).message}`);
      return false;
    }
    const previous = this.#services;
    this.#services = next;
    this.#watch();
    previous.models.stop();
    this.#prepareModels(next);
    // Tool calls in flight on the old gateway get their full timeout before it disconnects.
    const longestToolTimeoutMs = Math.max(0, ...previous.config.tools.map((t) => t.timeoutSeconds * 1000));
    setTimeout(() => previous.tools.gateway.close(), longestToolTimeoutMs).unref();
    this.memory.maxBytes = next.config.memory.maxBytes;
    this.metrics.memoryLimitBytes.set(next.config.memory.maxBytes);
    const restartNeeded =
      JSON.stringify(previous.config.listen) !== JSON.stringify(next.config.listen) ||
      previous.config.memory.type !== next.config.memory.type ||
      previous.config.memory.path !== next.config.memory.path;
    if (restartNeeded)
      this.#logger.warn("listen ports and memory type or path change only at the next restart");
    this.metrics.configReloads.inc({ result: "ok" });
    this.#logger.info("config reloaded");
    return true;
  }

  async close(): Promise<void> {
    for (const stop of this.#watchers) stop();
    this.#services.models.stop();
    this.#services.tools.gateway.close();
    await Promise.all([this.#agentApp.close(), this.#opsApp.close()]);
    this.memory.close();
  }
}
