// The world of a host-tier file that runs the operator: the tier's control plane with the CRDs,
// a namespace with the host's client key in a Secret, the faithful Ollama server and a tool
// server on this machine's address as the host sees it, an AgentTool, an AgentHost for the test
// host, a containerd driver of the test's own on that host (to look at what runs there), and the
// operator process. `operatorOnHost()` registers the hooks that set it up and tear it down.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll } from "vitest";
import { within } from "../../operator/drivers/call.ts";
import type { ContainerDriver } from "../../operator/drivers/driver.ts";
import { drivers } from "../../operator/drivers/drivers.ts";
import { managedFilter } from "../../operator/drivers/labels.ts";
import { removeReplicas } from "../../operator/drivers/replica.ts";
import { loadAccess } from "../../operator/kube/access.ts";
import { KubeClient, type KubeObject } from "../../operator/kube/client.ts";
import { resources } from "../../operator/kube/resources.ts";
import { OllamaServer } from "../../sidecar/testing/ollama-server.ts";
import { eventually } from "../fixtures/eventually.ts";
import { freePort } from "../fixtures/ports.ts";
import { removeSubresourcesRoute, subresourcesRoute } from "../fixtures/subresources-route.ts";
import { installCrds } from "../integration/crds.ts";
import { type OperatorProcess, startOperator } from "../integration/operator-process.ts";
import { connect, type TestHost, testHost } from "./host-env.ts";

const run = promisify(execFile);
const repo = join(import.meta.dirname, "..", "..");
export const AGENT_IMAGE = "localhost/agenttype/e2e-agent-node:dev";

export type Obj = KubeObject & { spec?: Record<string, unknown>; status?: Record<string, unknown> };
export interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
}
export type EventObject = KubeObject & {
  involvedObject: { name: string; uid?: string };
  reason: string;
  message: string;
  type: string;
  count?: number;
  lastTimestamp?: string;
  eventTime?: string;
};

export const condition = (o: Obj | undefined, type: string) =>
  ((o?.status?.conditions as Condition[] | undefined) ?? []).find((c) => c.type === type);

export interface OperatorOnHost {
  host: TestHost;
  namespace: string;
  /** The AgentHost every AgentType of the file runs on. */
  hostName: string;
  /** The driver's state directory on the host. */
  stateDir: string;
  client: KubeClient;
  driver: ContainerDriver;
  hostConnection: ReturnType<typeof connect>;
  ollama: OllamaServer;
  operator: OperatorProcess;
  kubeconfig: string;
  crictl: string;
  /** Starts the operator again (after a test stopped it); `operator` is the new process. */
  startOperator: () => Promise<OperatorProcess>;
  kubectl: (...args: string[]) => Promise<string>;
  getAgentType: (name: string) => Promise<Obj>;
  getHost: (name: string) => Promise<Obj>;
  events: (name: string, namespace?: string) => Promise<EventObject[]>;
  readyAgentType: (name: string, timeoutMs?: number) => Promise<Obj>;
  /** The agent container's log lines of every replica of an AgentType, read on the host. */
  agentLogs: (name: string) => Promise<string[]>;
  agentHost: (
    name: string,
    overrides?: { hostKey?: string; secret?: string; capacity?: object },
  ) => KubeObject & { spec: Record<string, unknown> };
  agentType: (
    name: string,
    env?: Record<string, string>,
  ) => KubeObject & { spec: Record<string, unknown> & { tools: unknown[] } };
  /** Waits until the AgentType no longer exists. */
  gone: (name: string, timeoutMs?: number) => Promise<void>;
}

/** Registers the beforeAll/afterAll of a file whose AgentTypes run on the test host. */
export function operatorOnHost(options: {
  prefix: string;
  identity: string;
  capacity?: object;
  /** Serve the aggregated API (logs and exec of agents on hosts): one file of the tier at a time. */
  subresources?: boolean;
}): OperatorOnHost {
  const host = testHost();
  const namespace = `${options.prefix}-${Date.now().toString(36)}`;
  // One per file; host.sh down removes every agenttype* directory of its state.
  const stateDir = `${host.state}/agenttype-operator-${options.prefix}`;
  let kubectlBin = "";
  let toolServer: ChildProcess | undefined;
  let ollamaPort = 0;
  let toolPort = 0;
  const world = {
    host,
    namespace,
    hostName: "test-host",
    stateDir,
    hostConnection: connect(host),
    kubeconfig: "",
    crictl: "",
  } as OperatorOnHost;
  const extraHosts = new Set<string>();
  let subresourcesPort = 0;

  world.kubectl = async (...args) =>
    (await run(kubectlBin, ["--kubeconfig", world.kubeconfig, ...args], { timeout: 60_000 })).stdout;
  world.getAgentType = (name) => world.client.get<Obj>(resources.agentType, namespace, name);
  world.getHost = (name) => world.client.get<Obj>(resources.agentHost, undefined, name);
  world.events = async (name, ns = namespace) =>
    (await world.client.list<EventObject>(resources.event, ns)).items.filter(
      (e) => e.involvedObject.name === name,
    );
  world.readyAgentType = (name, timeoutMs = 240_000) =>
    eventually(
      `AgentType ${name} Ready`,
      async () => {
        const at = await world.getAgentType(name);
        const ready = condition(at, "Ready");
        return ready?.status === "True" && ready.observedGeneration === at.metadata.generation
          ? at
          : undefined;
      },
      timeoutMs,
      500,
    );
  world.gone = (name, timeoutMs = 120_000) =>
    eventually(
      `AgentType ${name} gone`,
      async () => {
        try {
          await world.getAgentType(name);
          return false;
        } catch {
          return true;
        }
      },
      timeoutMs,
      500,
    ).then(() => undefined);
  world.agentLogs = async (name) => {
    const containers = await world.driver.list(
      { "agenttype.dev/name": name, "agenttype.dev/role": "agent" },
      within(30_000),
    );
    const lines: string[] = [];
    for (const c of containers)
      lines.push(
        ...(await world.driver.logs(c.id, {}, within(30_000))).map(
          (l) => `${c.labels["agenttype.dev/replica"]}: ${l.text}`,
        ),
      );
    return lines;
  };
  world.agentHost = (name, overrides = {}) => {
    if (name !== world.hostName) extraHosts.add(name);
    return {
      apiVersion: "agenttype.dev/v1alpha1",
      kind: "AgentHost",
      metadata: { name },
      spec: {
        driver: "containerd",
        ssh: {
          address: host.address,
          port: host.port,
          user: host.user,
          privateKeySecretRef: { namespace, name: overrides.secret ?? "host-key", key: "id_ed25519" },
          hostKey: overrides.hostKey ?? host.hostKey,
        },
        containerd: {
          socket: host.containerdSocket,
          stateDir,
          cgroupParent: host.cgroupParent,
          // The host lives on this machine: the crictl the harness built is on its file system.
          crictl: world.crictl,
        },
        ...(overrides.capacity === undefined ? {} : { capacity: overrides.capacity }),
      },
    };
  };
  world.agentType = (name, env = {}) => ({
    apiVersion: "agenttype.dev/v1alpha1",
    kind: "AgentType",
    metadata: { name, namespace },
    spec: {
      image: AGENT_IMAGE,
      imagePullPolicy: "IfNotPresent",
      language: "node",
      replicas: 1,
      runtime: { type: "containerd", hostRef: { name: world.hostName } },
      env: Object.entries({ OPENAI_API_KEY: "not-needed", AGENT_VERSION: "1", ...env }).map(([k, v]) => ({
        name: k,
        value: v,
      })),
      llm: {
        providers: [
          {
            name: "local",
            type: "ollama",
            endpoint: `http://${host.gatewayIp}:${ollamaPort}`,
            model: "llama3.2",
          },
        ],
      },
      tools: [{ name: "calculator", version: "^2.0.0" }],
      memory: { type: "ephemeral" },
    },
  });
  world.startOperator = async () => {
    world.operator = await startOperator({
      kubeconfig: world.kubeconfig,
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
              // Two sessions to the host at once: the attach test opens a third.
              SUBRESOURCES_MAX_SESSIONS: "2",
              // Its CA Secret goes into the file's namespace, and kube-apiserver reaches it on
              // this machine's address on the host's bridge (subresourcesRoute).
              POD_NAMESPACE: namespace,
              BIND_ADDRESS: "0.0.0.0",
            }),
      },
    });
    return world.operator;
  };

  beforeAll(async () => {
    // The tier's own control plane (its state and ports are set by the tier's global setup).
    const out = await run(join(repo, "tests/cluster/cluster.sh"), ["up", "control-plane"], {
      timeout: 45 * 60_000,
    });
    world.kubeconfig = out.stdout.trim().split("\n").at(-1) ?? "";
    const bin = await run("bash", ["-c", `source ${repo}/tests/cluster/lib.sh && echo "$AGENTTYPE_BIN"`]);
    kubectlBin = join(bin.stdout.trim(), "kubectl");
    world.crictl = join(bin.stdout.trim(), "crictl");
    await installCrds(world.kubeconfig);
    const client = new KubeClient(loadAccess({ KUBECONFIG: world.kubeconfig }));
    world.client = client;
    await client.create(resources.namespace, undefined, {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: namespace },
    });
    await client.create(resources.secret, namespace, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "host-key", namespace },
      data: { id_ed25519: Buffer.from(host.clientKey).toString("base64") },
    } as KubeObject);

    // The LLM and the tool listen on this machine's address as the host sees it.
    world.ollama = new OllamaServer();
    ollamaPort = await freePort();
    await world.ollama.listen(ollamaPort, host.gatewayIp);
    toolPort = await freePort();
    toolServer = spawn(
      process.execPath,
      [join(repo, "tests/e2e/upstream/tool-server.ts"), "--port", String(toolPort)],
      { stdio: "ignore" },
    );
    await client.create(resources.agentTool, namespace, {
      apiVersion: "agenttype.dev/v1alpha1",
      kind: "AgentTool",
      metadata: { name: "calculator", namespace },
      spec: {
        name: "calculator",
        version: "2.1.0",
        description: "Evaluates an arithmetic expression.",
        protocol: "http",
        endpoint: { url: `http://${host.gatewayIp}:${toolPort}/evaluate` },
        inputSchema: {
          type: "object",
          properties: { expression: { type: "string" } },
          required: ["expression"],
        },
      },
    } as KubeObject);
    await client.create(
      resources.agentHost,
      undefined,
      world.agentHost(world.hostName, options.capacity === undefined ? {} : { capacity: options.capacity }),
    );

    if (options.subresources) {
      subresourcesPort = await freePort();
      await subresourcesRoute(client, namespace, host.gatewayIp, subresourcesPort);
    }
    world.driver = drivers.create(
      "containerd",
      { socket: host.containerdSocket, stateDir, cgroupParent: host.cgroupParent },
      world.hostConnection,
    );
    await world.startOperator();
  }, 900_000);

  afterAll(async () => {
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
    toolServer?.kill();
    await world.ollama?.close();
    // Whatever a failed test left on the host goes (groups and volumes), so the next file starts clean.
    if (world.driver) {
      await removeReplicas(world.driver, managedFilter(), 1000, within(120_000)).catch(() => {});
      await world.driver.close();
    }
    world.hostConnection.close();
    for (const name of [world.hostName, ...extraHosts])
      await world.client?.delete(resources.agentHost, undefined, name).catch(() => {});
    if (options.subresources) await removeSubresourcesRoute(world.client);
    await world.client?.delete(resources.namespace, undefined, namespace).catch(() => {});
  });

  return world;
}
