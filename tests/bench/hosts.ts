// `make bench-hosts` (run by tests/bench/hosts.sh, which brings up the host and the control
// plane): how long an AgentType with runtime containerd takes from its creation in the API
// server to Ready, against the same replica (wrapper, sidecar, agent, the same images and
// config) started straight through the host's CRI by the same driver over one SSH connection,
// with no operator and no API server, in the same run, the two alternating round by round.
//   node tests/bench/hosts.ts --kubeconfig PATH --host-env STATE/host.env [--rounds 5]
// The last line is machine-readable.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type AgentType, agentType } from "../../api/agenttype.ts";
import { parseAs } from "../../api/field-errors.ts";
import { buildObjects } from "../../operator/build/objects.ts";
import { loadConfig } from "../../operator/config.ts";
import { within } from "../../operator/drivers/call.ts";
import { drivers } from "../../operator/drivers/drivers.ts";
import { ownerLabels } from "../../operator/drivers/labels.ts";
import { removeReplicas, startReplica } from "../../operator/drivers/replica.ts";
import { SshConnection } from "../../operator/drivers/ssh/connection.ts";
import { loadAccess } from "../../operator/kube/access.ts";
import { isNotFound, KubeClient, type KubeObject } from "../../operator/kube/client.ts";
import { resources } from "../../operator/kube/resources.ts";
import { hostReplicaPlan, replicaSpec } from "../../operator/placement/host-plan.ts";
import { OllamaServer } from "../../sidecar/testing/ollama-server.ts";
import { freePort } from "../fixtures/ports.ts";
import { installCrds } from "../integration/crds.ts";
import { type OperatorProcess, startOperator } from "../integration/operator-process.ts";

const { values } = parseArgs({
  options: {
    kubeconfig: { type: "string", default: process.env.KUBECONFIG },
    "host-env": { type: "string" },
    rounds: { type: "string", default: "5" },
  },
});
if (!values.kubeconfig) throw new Error("--kubeconfig or KUBECONFIG is required");
if (!values["host-env"]) throw new Error("--host-env (the host.env tests/hosts/host.sh writes) is required");
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1)
  throw new Error(`--rounds must be a positive integer, not ${values.rounds}`);
const hostEnv = Object.fromEntries(
  readFileSync(values["host-env"], "utf8")
    .split("\n")
    .filter((l) => l.includes("="))
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
) as Record<string, string>;
const need = (name: string) => {
  const v = hostEnv[name];
  if (!v) throw new Error(`${name} missing from ${values["host-env"]}`);
  return v;
};
const host = {
  address: need("AGENTTYPE_HOST_ADDRESS"),
  port: Number(need("AGENTTYPE_HOST_SSH_PORT")),
  user: need("AGENTTYPE_HOST_USER"),
  hostKey: need("AGENTTYPE_HOST_KEY"),
  clientKey: readFileSync(need("AGENTTYPE_HOST_CLIENT_KEY"), "utf8"),
  socket: need("AGENTTYPE_HOST_CONTAINERD_SOCKET"),
  cgroupParent: need("AGENTTYPE_HOST_CGROUP_PARENT"),
  gatewayIp: need("AGENTTYPE_HOST_GATEWAY_IP"),
  stateDir: `${need("AGENTTYPE_HOST_STATE")}/agenttype-bench`,
};
const IMAGES = {
  SIDECAR_IMAGE: "localhost/agenttype/sidecar:dev",
  WRAPPER_IMAGE: "localhost/agenttype/wrapper:dev",
  IMAGE_PULL_POLICY: "IfNotPresent",
};
const HOST = "bench-host";
const namespace = `bench-hosts-${Date.now().toString(36)}`;
const client = new KubeClient(loadAccess({ KUBECONFIG: values.kubeconfig }));
const log = (line: string) => console.error(`[bench-hosts] ${line}`);
const seconds = (ms: number) => (ms / 1000).toFixed(2);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function manifest(name: string, ollamaPort: number) {
  return {
    apiVersion: "agenttype.dev/v1alpha1",
    kind: "AgentType",
    metadata: { name, namespace },
    spec: {
      image: "localhost/agenttype/e2e-agent-node:dev",
      imagePullPolicy: "IfNotPresent",
      language: "node",
      replicas: 1,
      runtime: { type: "containerd", hostRef: { name: HOST } },
      env: [{ name: "OPENAI_API_KEY", value: "not-needed" }],
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
      memory: { type: "ephemeral" },
    },
  };
}

/** Polls (every 50 ms) until the AgentType is Ready for its generation; the time from `from`. */
async function untilReady(name: string, from: number, timeoutMs = 300_000): Promise<number> {
  for (;;) {
    const at = await client.get<KubeObject & { status?: AgentType["status"] }>(
      resources.agentType,
      namespace,
      name,
    );
    const ready = at.status?.conditions?.find((c) => c.type === "Ready");
    if (ready?.status === "True" && ready.observedGeneration === at.metadata.generation)
      return Date.now() - from;
    if (Date.now() - from > timeoutMs) throw new Error(`AgentType ${name} not Ready after ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function untilGone(name: string): Promise<void> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      await client.get(resources.agentType, namespace, name);
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    if (Date.now() > deadline) throw new Error(`AgentType ${name} still there after 180 s`);
    await sleep(200);
  }
}

async function main(): Promise<void> {
  const ollama = new OllamaServer();
  const ollamaPort = await freePort();
  await ollama.listen(ollamaPort, host.gatewayIp);
  await installCrds(values.kubeconfig as string);
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
  await client.create(resources.agentHost, undefined, {
    apiVersion: "agenttype.dev/v1alpha1",
    kind: "AgentHost",
    metadata: { name: HOST },
    spec: {
      driver: "containerd",
      ssh: {
        address: host.address,
        port: host.port,
        user: host.user,
        privateKeySecretRef: { namespace, name: "host-key", key: "id_ed25519" },
        hostKey: host.hostKey,
      },
      containerd: { socket: host.socket, stateDir: host.stateDir, cgroupParent: host.cgroupParent },
    },
  } as KubeObject);

  // The direct path: the operator's driver and replica plan, its own SSH connection, no operator.
  const connection = new SshConnection({
    host: host.address,
    port: host.port,
    username: host.user,
    privateKey: host.clientKey,
    hostKey: host.hostKey,
  });
  const driver = drivers.create(
    "containerd",
    { socket: host.socket, stateDir: `${host.stateDir}-direct`, cgroupParent: host.cgroupParent },
    connection,
  );
  const config = loadConfig([], IMAGES);
  const settings = {
    sidecarImage: config.sidecarImage,
    wrapperImage: config.wrapperImage,
    imagePullPolicy: config.imagePullPolicy,
    // Limits only: the cgroup they set up costs the same whatever the values.
    sidecarResources: {},
    memoryMaxBytes: config.memoryMaxBytes,
  };
  async function direct(round: number): Promise<number> {
    const parsed = parseAs(agentType, {
      ...manifest(`direct-${round}`, ollamaPort),
      metadata: { name: `direct-${round}`, namespace, uid: `bench-direct-${round}` },
    });
    if (!parsed.ok) throw new Error(`the bench's AgentType is invalid: ${JSON.stringify(parsed.errors)}`);
    const owner = { namespace, name: `direct-${round}`, uid: `bench-direct-${round}` };
    const started = Date.now();
    const objects = buildObjects(parsed.value, [], settings);
    await startReplica(driver, hostReplicaPlan(replicaSpec(owner, 0, objects, []), HOST), within(300_000));
    const ms = Date.now() - started;
    await removeReplicas(driver, ownerLabels(owner), 10_000, within(120_000));
    return ms;
  }

  let operator: OperatorProcess | undefined;
  try {
    operator = await startOperator({
      kubeconfig: values.kubeconfig as string,
      namespace,
      identity: "bench-hosts",
      leaderElection: false,
      extraEnv: { ...IMAGES, LOG_LEVEL: "info" },
    });
    async function viaOperator(round: number): Promise<number> {
      const name = `agent-${round}`;
      const started = Date.now();
      await client.create(resources.agentType, namespace, manifest(name, ollamaPort) as KubeObject);
      const ms = await untilReady(name, started);
      await client.delete(resources.agentType, namespace, name);
      await untilGone(name);
      return ms;
    }
    // One unmeasured round of each: the operator's first SSH connection, caches and page cache.
    log(`warm-up: operator ${seconds(await viaOperator(0))} s, direct ${seconds(await direct(0))} s`);
    const operatorMs: number[] = [];
    const directMs: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      // Alternate which goes first, so neither always follows the other's clean-up.
      const pair =
        round % 2 === 1
          ? [await viaOperator(round), await direct(round)]
          : [await direct(round), await viaOperator(round)].reverse();
      operatorMs.push(pair[0] as number);
      directMs.push(pair[1] as number);
      log(
        `round ${round}/${rounds}: apply→Ready ${seconds(pair[0] as number)} s, direct ${seconds(pair[1] as number)} s`,
      );
    }
    const applyToReady = median(operatorMs);
    const directMedian = median(directMs);
    log(`medians over ${rounds} rounds (target: ratio <= 1.5)`);
    console.log(
      `bench-hosts apply_to_ready_s=${seconds(applyToReady)} direct_s=${seconds(directMedian)} ratio=${(applyToReady / directMedian).toFixed(2)} rounds=${rounds}`,
    );
  } catch (error) {
    if (operator) console.error(operator.logs().split("\n").slice(-30).join("\n"));
    throw error;
  } finally {
    // Left by a failed round: deleted while the operator runs, which removes them from the host.
    for (const at of (
      await client.list<KubeObject>(resources.agentType, namespace).catch(() => ({ items: [] }))
    ).items) {
      await client.delete(resources.agentType, namespace, at.metadata.name).catch(() => {});
      await untilGone(at.metadata.name).catch(() => {});
    }
    await operator?.stop();
    await removeReplicas(driver, { "agenttype.dev/namespace": namespace }, 1000, within(120_000)).catch(
      () => {},
    );
    await driver.close();
    connection.close();
    await ollama.close();
    await client.delete(resources.agentHost, undefined, HOST).catch(() => {});
    await client.delete(resources.namespace, undefined, namespace).catch(() => {});
  }
}

await main();
