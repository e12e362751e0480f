// The world of a guest-tier file (and of `make bench-kvm`) that runs the operator: the tier's
// control plane with the CRDs, a namespace with the KVM host's client key in a Secret, the LLM
// and tool servers of guest-env.ts, an AgentTool, an AgentHost with driver kvm for the KVM host,
// a KVM driver of the test's own on that host (reading the guests' keys from the operator's
// Secrets, to look at what runs in them), and the operator process. `kvmWorld()` makes it,
// `start()` and `stop()` bring it up and down; `operatorOnKvmHost()` registers them as hooks.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, inject } from "vitest";
import { within } from "../../operator/drivers/call.ts";
import { parseConfig } from "../../operator/drivers/config.ts";
import { KvmDriver, kvmSettings } from "../../operator/drivers/kvm/driver.ts";
import { managedFilter } from "../../operator/drivers/labels.ts";
import { SecretGuestKeyStore } from "../../operator/hosts/guest-key-secrets.ts";
import { loadAccess } from "../../operator/kube/access.ts";
import { KubeClient, type KubeObject } from "../../operator/kube/client.ts";
import { resources } from "../../operator/kube/resources.ts";
import { eventually } from "../fixtures/eventually.ts";
import { freePort } from "../fixtures/ports.ts";
import { removeSubresourcesRoute, subresourcesRoute } from "../fixtures/subresources-route.ts";
import { type Condition, condition, type EventObject, type Obj } from "../hosts/operator-fixture.ts";
import { installCrds } from "../integration/crds.ts";
import { type OperatorProcess, startOperator } from "../integration/operator-process.ts";
import { AGENT_IMAGE, hostConnection, type KvmHost, kvmHostFrom, upstreams } from "./guest-env.ts";

const run = promisify(execFile);
const repo = join(import.meta.dirname, "..", "..");

export interface OperatorOnKvmHost {
  host: KvmHost;
  namespace: string;
  hostName: string;
  /** The driver's state directory on the host (overlays, console logs). */
  stateDir: string;
  client: KubeClient;
  /** A KVM driver of the test's own, with the operator's guest keys (read from their Secrets). */
  driver: KvmDriver;
  hostConnection: ReturnType<typeof hostConnection>;
  operator: OperatorProcess;
  /** The admin's kubeconfig of the tier's control plane. */
  kubeconfig: string;
  startOperator: () => Promise<OperatorProcess>;
  kubectl: (...args: string[]) => Promise<string>;
  /** `virsh ARGS` on the KVM host. */
  virsh: (...args: string[]) => Promise<string>;
  getAgentType: (name: string) => Promise<Obj>;
  /** The AgentHost of the KVM host, as the API server has it now. */
  getAgentHost: () => Promise<Obj>;
  events: (name: string) => Promise<EventObject[]>;
  readyAgentType: (name: string, timeoutMs?: number) => Promise<Obj>;
  /** What AgentType `name` and the host show, for a reader of a failed run: see agentTypeReport. */
  report: (name: string, what: string) => Promise<string>;
  /**
   * `eventually`, and on a timeout the AgentType's report (status, Events, guests, consoles,
   * the operator's lines) printed before the error goes on: a failed wait says why.
   */
  waitFor: <T>(
    name: string,
    what: string,
    fn: () => Promise<T | undefined | false>,
    timeoutMs: number,
  ) => Promise<T>;
  agentType: (name: string, spec?: Record<string, unknown>) => KubeObject & { spec: Record<string, unknown> };
  gone: (name: string, timeoutMs?: number) => Promise<void>;
  start: () => Promise<void>;
  stop: () => Promise<void>;
}

/** The tier's AgentHost's spec.kvm.bootTimeoutSeconds. */
export const KVM_BOOT_TIMEOUT_SECONDS = 150;

/** Registers the beforeAll/afterAll of a file whose AgentTypes run in guests on the KVM host. */
export function operatorOnKvmHost(options: WorldOptions): OperatorOnKvmHost {
  const world = kvmWorld(kvmHostFrom(inject("kvmHostEnv")), options);
  beforeAll(world.start, 900_000);
  afterAll(world.stop, 300_000);
  return world;
}

interface WorldOptions {
  prefix: string;
  identity: string;
  /** Serve the aggregated API (kubectl agenttype logs and exec of agents in guests). */
  subresources?: boolean;
}

export function kvmWorld(host: KvmHost, options: WorldOptions): OperatorOnKvmHost {
  const namespace = `${options.prefix}-${Date.now().toString(36)}`;
  let kubectlBin = "";
  let servers: Awaited<ReturnType<typeof upstreams>> | undefined;
  let kubeconfig = "";
  let subresourcesPort = 0;
  const world = {
    host,
    namespace,
    hostName: "kvm-host",
    stateDir: `${host.state}/kvm-operator`,
    hostConnection: hostConnection(host),
  } as OperatorOnKvmHost;

  world.kubectl = async (...args) =>
    (await run(kubectlBin, ["--kubeconfig", kubeconfig, ...args], { timeout: 60_000 })).stdout;
  world.virsh = async (...args) => {
    const r = await world.hostConnection.exec(
      ["virsh", "-q", "-c", host.uri, ...args].join(" "),
      {},
      within(60_000),
    );
    if (r.exitCode !== 0) throw new Error(`virsh ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  world.getAgentType = (name) => world.client.get<Obj>(resources.agentType, namespace, name);
  world.getAgentHost = () => world.client.get<Obj>(resources.agentHost, undefined, world.hostName);
  world.events = async (name) =>
    (await world.client.list<EventObject>(resources.event, namespace)).items.filter(
      (e) => e.involvedObject.name === name,
    );
  world.report = (name, what) => agentTypeReport(world, name, what);
  world.waitFor = (name, what, fn, timeoutMs) =>
    eventually(what, fn, timeoutMs, 1000).catch(async (err: Error) => {
      console.log(await world.report(name, what));
      // CI shows a failed run's error lines, not the report above them: the error says in one
      // line where the AgentType stood.
      err.message += `; ${await agentTypeInOneLine(world, name)}`;
      throw err;
    });
  world.readyAgentType = (name, timeoutMs = 600_000) =>
    world.waitFor(
      name,
      `AgentType ${name} Ready`,
      async () => {
        const at = await world.getAgentType(name);
        const ready = condition(at, "Ready");
        return ready?.status === "True" && ready.observedGeneration === at.metadata.generation
          ? at
          : undefined;
      },
      timeoutMs,
    );
  world.gone = (name, timeoutMs = 300_000) =>
    world
      .waitFor(
        name,
        `AgentType ${name} gone`,
        async () =>
          world.getAgentType(name).then(
            () => false,
            () => true,
          ),
        timeoutMs,
      )
      .then(() => undefined);
  world.agentType = (name, spec = {}) => ({
    apiVersion: "agenttype.dev/v1alpha1",
    kind: "AgentType",
    metadata: { name, namespace },
    spec: {
      image: AGENT_IMAGE,
      imagePullPolicy: "IfNotPresent",
      language: "node",
      replicas: 1,
      runtime: { type: "kvm", hostRef: { name: world.hostName } },
      env: [
        { name: "OPENAI_API_KEY", value: "not-needed" },
        { name: "AGENT_VERSION", value: "1" },
      ],
      llm: {
        providers: [{ name: "local", type: "ollama", endpoint: servers?.ollamaUrl, model: "llama3.2" }],
      },
      tools: [{ name: "calculator", version: "^2.0.0" }],
      memory: { type: "ephemeral" },
      ...spec,
    },
  });
  world.startOperator = async () => {
    world.operator = await startOperator({
      kubeconfig,
      namespace,
      identity: options.identity,
      leaderElection: false,
      extraEnv: {
        SIDECAR_IMAGE: "localhost/agenttype/sidecar:dev",
        WRAPPER_IMAGE: "localhost/agenttype/wrapper:dev",
        IMAGE_PULL_POLICY: "IfNotPresent",
        ...(subresourcesPort === 0
          ? {}
          : {
              SUBRESOURCES_PORT: String(subresourcesPort),
              POD_NAMESPACE: namespace,
              BIND_ADDRESS: "0.0.0.0",
            }),
      },
    });
    return world.operator;
  };

  world.start = async () => {
    // The tier's own control plane (its state and ports are set by the tier's global setup).
    const out = await run(join(repo, "tests/cluster/cluster.sh"), ["up", "control-plane"], {
      timeout: 45 * 60_000,
    });
    kubeconfig = out.stdout.trim().split("\n").at(-1) ?? "";
    world.kubeconfig = kubeconfig;
    const bin = await run("bash", ["-c", `source ${repo}/tests/cluster/lib.sh && echo "$AGENTTYPE_BIN"`]);
    kubectlBin = join(bin.stdout.trim(), "kubectl");
    await installCrds(kubeconfig);
    const client = new KubeClient(loadAccess({ KUBECONFIG: kubeconfig }));
    world.client = client;
    world.driver = new KvmDriver(
      parseConfig(kvmSettings, "kvm driver settings", {
        uri: host.uri,
        network: host.network,
        baseImage: host.image,
        stateDir: world.stateDir,
      }),
      world.hostConnection,
      new SecretGuestKeyStore(client),
    );
    // Leftovers of an interrupted earlier run on the host: guests whose keys are gone with their namespace.
    for (const g of await world.driver.guests(managedFilter(), within(60_000))) {
      await world.virsh("destroy", g.name).catch(() => "");
      await world.virsh("undefine", "--managed-save", g.name);
    }
    await world.hostConnection.exec(`rm -rf ${world.stateDir}`, {}, within(30_000));

    await client.create(resources.namespace, undefined, {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: namespace },
    });
    await client.create(resources.secret, namespace, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "kvm-host-key", namespace },
      data: { id_ed25519: Buffer.from(host.clientKey).toString("base64") },
    } as KubeObject);
    servers = await upstreams(host);
    if (options.subresources) {
      subresourcesPort = await freePort();
      await subresourcesRoute(client, namespace, host.gatewayIp, subresourcesPort);
    }
    await client.create(resources.agentTool, namespace, {
      apiVersion: "agenttype.dev/v1alpha1",
      kind: "AgentTool",
      metadata: { name: "calculator", namespace },
      spec: {
        name: "calculator",
        version: "2.1.0",
        description: "Evaluates an arithmetic expression.",
        protocol: "http",
        endpoint: { url: servers.toolUrl },
        inputSchema: {
          type: "object",
          properties: { expression: { type: "string" } },
          required: ["expression"],
        },
      },
    } as KubeObject);
    // An interrupted earlier run's AgentHost (cluster-scoped: its namespace going did not take it).
    await client.delete(resources.agentHost, undefined, world.hostName).catch(() => {});
    await eventually(
      "an earlier AgentHost gone",
      () =>
        client.get(resources.agentHost, undefined, world.hostName).then(
          () => false,
          () => true,
        ),
      60_000,
      500,
    );
    await client.create(resources.agentHost, undefined, {
      apiVersion: "agenttype.dev/v1alpha1",
      kind: "AgentHost",
      metadata: { name: world.hostName },
      spec: {
        driver: "kvm",
        ssh: {
          address: host.address,
          port: host.port,
          user: host.user,
          privateKeySecretRef: { namespace, name: "kvm-host-key", key: "id_ed25519" },
          hostKey: host.hostKey,
        },
        kvm: {
          uri: host.uri,
          network: host.network,
          baseImage: host.image,
          stateDir: world.stateDir,
          // A boot takes 15 s here, a minute beside the other tiers: a hung one is replaced
          // within the tests' waits for Ready, not past them.
          bootTimeoutSeconds: KVM_BOOT_TIMEOUT_SECONDS,
        },
      },
    } as KubeObject);
    await world.startOperator();
  };

  world.stop = async () => {
    await world.operator?.stop();
    if (world.operator)
      console.log(
        world.operator
          .logs()
          .split("\n")
          .filter((l) => /"level":(40|50|60)/.test(l))
          .slice(-20)
          .join("\n"),
      );
    await servers?.close();
    // Whatever a failed test left on the host goes, so the next file starts clean.
    if (world.driver) {
      for (const g of await world.driver.guests(managedFilter(), within(60_000)).catch(() => [])) {
        await world.virsh("destroy", g.name).catch(() => "");
        await world.virsh("undefine", "--managed-save", g.name).catch(() => "");
      }
      await world.driver.close();
    }
    await world.hostConnection.exec(`rm -rf ${world.stateDir}`, {}, within(30_000)).catch(() => {});
    world.hostConnection.close();
    await world.client?.delete(resources.agentHost, undefined, world.hostName).catch(() => {});
    if (options.subresources) await removeSubresourcesRoute(world.client);
    await world.client?.delete(resources.namespace, undefined, namespace).catch(() => {});
  };

  return world;
}

/** AgentType `name`'s conditions that are not True and its last Events, in one line. */
async function agentTypeInOneLine(world: OperatorOnKvmHost, name: string): Promise<string> {
  const at = await world.getAgentType(name).catch((err: Error) => err);
  if (at instanceof Error) return `AgentType ${name}: ${at.message}`;
  const conditions = ((at.status?.conditions ?? []) as Condition[]).map(
    (c) => `${c.type}=${c.status} ${c.reason}: ${c.message}`,
  );
  const when = (e: EventObject) => String(e.lastTimestamp ?? e.eventTime ?? "");
  const events = (await world.events(name).catch(() => [])).sort((a, b) => when(a).localeCompare(when(b)));
  const last = events.slice(-3).map((e) => `${e.type} ${e.reason}: ${e.message}`);
  return `AgentType ${name}: ${conditions.join(" | ")}; last events: ${last.join(" | ")}`;
}

/**
 * What a reader of a failed run needs when a wait on an AgentType failed, before the
 * teardown removes it: its status, its Events, its guests on the host and their consoles' last
 * lines, and what the operator logged of it.
 */
async function agentTypeReport(world: OperatorOnKvmHost, name: string, what: string): Promise<string> {
  const lines = [`--- no ${what}: what AgentType ${name} and the host show`];
  const part = async (title: string, fn: () => Promise<string>) => {
    const text = await fn().catch((err: Error) => `(could not read: ${err.message})`);
    lines.push(`${title}:`, text.trimEnd());
  };
  await part("status", async () => JSON.stringify((await world.getAgentType(name)).status ?? {}, null, 1));
  await part("events", async () =>
    (await world.events(name)).map((e) => `${e.type} ${e.reason}: ${e.message}`).join("\n"),
  );
  await part("domains on the host", () => world.virsh("list", "--all"));
  await part("consoles' last lines", async () => {
    const r = await world.hostConnection.exec(
      `for f in ${world.stateDir}/*/console.log; do [ -f "$f" ] && { echo "== $f"; tail -n 25 "$f"; }; done`,
      {},
      within(30_000),
    );
    return r.stdout;
  });
  await part("the operator's last lines naming it", async () =>
    (world.operator?.logs() ?? "")
      .split("\n")
      .filter((l) => l.includes(name))
      .slice(-60)
      .join("\n"),
  );
  // A stall of the whole operator names no AgentType: its last lines of any kind show it.
  await part("the operator's last lines", async () =>
    (world.operator?.logs() ?? "").split("\n").slice(-30).join("\n"),
  );
  await part("the AgentHost's status", async () =>
    JSON.stringify((await world.getAgentHost()).status ?? {}, null, 1),
  );
  return lines.join("\n");
}
