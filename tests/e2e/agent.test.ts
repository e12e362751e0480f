// The whole path a user takes, on the full-node tier: the project's images built from the
// Dockerfile (buildah) and imported into containerd, the operator installed with `helm
// install`, an Ollama-protocol LLM server and an HTTP tool server deployed as upstreams, and
// two unmodified sample agents (Node with the stock openai client, Python with urllib) that
// ask the LLM, list and call a tool and write memory, all through their sidecars. Then an image
// update, a scale, the start-up overhead against a bare pod of the same image, and a clean
// removal. The objects are those of tests/e2e/manifests/demo.yaml (what `make up` applies), in
// a namespace of this run, with the upstream URLs pointing at this run's Services.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import * as k8s from "@kubernetes/client-node";
import yaml from "js-yaml";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { eventually } from "../fixtures/eventually.ts";
import { type ExecError, execOk } from "../fixtures/exec.ts";
import { buildImages, helm, installOperator, kubectl, kubectlIn, repo } from "./cli.ts";
import { e2eCluster } from "./cluster-env.ts";

const { kubeconfig } = e2eCluster();
const run = Date.now().toString(36);
const ns = `e2e-agents-${run}`;
const operatorNs = `e2e-operator-${run}`;
const release = `e2e-${run}`;
const T = 300_000;
const DEMO_LLM_IP = "10.96.0.210";
const DEMO_TOOL_IP = "10.96.0.211";
/** This run's Services of the LLM upstream and the tool server, for the demo's fixed IPs. */
const upstreamIps = { llm: "", tool: "" };
/** A demo object with this run's upstream IPs in place of the demo's. */
const withUpstreams = <V>(o: V): V =>
  JSON.parse(
    JSON.stringify(o).replaceAll(DEMO_LLM_IP, upstreamIps.llm).replaceAll(DEMO_TOOL_IP, upstreamIps.tool),
  ) as V;

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  spec?: Record<string, unknown> & { clusterIP?: string };
  status?: Record<string, unknown>;
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  observedGeneration?: number;
}

const getJson = async <V = Obj>(...args: string[]): Promise<V> =>
  JSON.parse(await kubectl("get", "-o", "json", ...args)) as V;

/** Fetches a URL from inside a pod's sidecar container, as a process in the pod would. */
const fetchInSidecar = (pod: string, url: string) =>
  kubectl(
    "exec",
    "-n",
    ns,
    pod,
    "-c",
    "agenttype-sidecar",
    "--",
    "node",
    "-e",
    `fetch(${JSON.stringify(url)}).then(r => r.text()).then(console.log)`,
  );

const waitFor = <V>(what: string, fn: () => Promise<V | undefined>, timeoutMs = 180_000) =>
  eventually(what, fn, timeoutMs, 250);

const condition = (o: Obj, type: string): Condition | undefined =>
  ((o.status?.conditions as Condition[] | undefined) ?? []).find((c) => c.type === type);

/** The AgentType once Ready=True for its current generation. */
const agentReady = (name: string, timeoutMs?: number) =>
  waitFor(
    `AgentType ${name} Ready`,
    async () => {
      const at = await getJson("agenttype", "-n", ns, name);
      const ready = condition(at, "Ready");
      const generation = (at.metadata as { generation?: number }).generation;
      return ready?.status === "True" && ready.observedGeneration === generation ? at : undefined;
    },
    timeoutMs,
  );

interface Pod extends Obj {
  status: {
    phase?: string;
    conditions?: Condition[];
    initContainerStatuses?: { name: string; state?: { terminated?: { exitCode: number } } }[];
    containerStatuses?: { name: string; image: string; ready: boolean }[];
  };
  spec: { containers: { name: string; image: string }[]; initContainers?: { name: string }[] };
}

const podsOf = async (agent: string): Promise<Pod[]> =>
  (await getJson<{ items: Pod[] }>("pods", "-n", ns, "-l", `agenttype.dev/agent=${agent}`)).items.filter(
    (p) => !(p.metadata as { deletionTimestamp?: string }).deletionTimestamp,
  );

const podReady = (p: Pod) =>
  p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;

/** The agent container's log once the agent finished its run (or failed). */
const agentLog = (pod: string) =>
  waitFor(
    `the agent in ${pod} to finish`,
    async () => {
      const log = await kubectl("logs", "-n", ns, pod, "-c", "agent");
      return /^agent (done|failed)/m.test(log) ? log : undefined;
    },
    120_000,
  );

const kc = new k8s.KubeConfig();
kc.loadFromFile(kubeconfig);
const core = kc.makeApiClient(k8s.CoreV1Api);

/**
 * Times one pod from its creation to Ready, polling the API every 50 ms (kubectl would add its
 * own start-up to every poll). `podToReady` counts from the moment the pod object first exists
 * (for an AgentType: after the operator and the Deployment controller made it);
 * `createToReady` from the `create` call.
 */
async function timePod(
  name: string,
  create: () => Promise<unknown>,
): Promise<{ podToReady: number; createToReady: number }> {
  const t0 = performance.now();
  await create();
  let seen: number | undefined;
  for (;;) {
    const now = performance.now();
    const pods = (await core.listNamespacedPod({ namespace: ns })).items.filter(
      (p) => p.metadata?.name === name || p.metadata?.labels?.["agenttype.dev/agent"] === name,
    );
    const [pod] = pods;
    if (pod !== undefined) seen ??= now;
    if (pod?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) {
      return { podToReady: (now - (seen ?? now)) / 1000, createToReady: (now - t0) / 1000 };
    }
    if (now - t0 > 120_000) throw new Error(`pod ${name} not Ready after 120 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The uid each sample agent runs as in this run: one its image never heard of (not its USER
 * 1000, not ours 65532), so the wrapper and the sidecar are shown to work for any non-root uid.
 */
const agentUid = (offset: number) => 20_000 + ((Number.parseInt(run.slice(-4), 36) + offset) % 40_000);
const AGENT_UIDS: Record<string, number> = { "node-agent": agentUid(0), "python-agent": agentUid(1) };

/**
 * The demo manifests, moved into this run's namespace with the Services' IPs left to the cluster;
 * the agents run as an arbitrary uid (and its group) with a read-only root filesystem, on top of
 * the restricted profile the namespace enforces.
 */
function demoObjects(): Obj[] {
  const docs = yaml.loadAll(readFileSync(resolve(repo, "tests/e2e/manifests/demo.yaml"), "utf8")) as Obj[];
  return docs
    .filter((d) => d.kind !== "Namespace")
    .map((d) => {
      const o = structuredClone(d);
      o.metadata.namespace = ns;
      if (o.kind === "Service" && o.spec) delete o.spec.clusterIP;
      const uid = AGENT_UIDS[o.metadata.name];
      if (o.kind === "AgentType" && o.spec && uid !== undefined) {
        o.spec.securityContext = { runAsUser: uid, runAsGroup: uid, readOnlyRootFilesystem: true };
      }
      return o;
    });
}

/** CRDs installed before this run (by `make up`): this run must leave them as they are. */
let crdsPreinstalled = false; // set by the helm install test

const list = (items: Obj[]) => JSON.stringify({ apiVersion: "v1", kind: "List", items });

beforeAll(async () => {
  await buildImages();
  for (const n of [ns, operatorNs]) await kubectl("create", "namespace", n);
  // The agents' namespace enforces the restricted Pod Security standard: every pod of this run
  // there (agents, upstreams, the bare pods of the start-up test) must be admitted under it.
  await kubectl(
    "label",
    "namespace",
    ns,
    "pod-security.kubernetes.io/enforce=restricted",
    "pod-security.kubernetes.io/enforce-version=latest",
  );
  await waitFor("serviceaccount default", () => kubectl("get", "serviceaccount", "-n", ns, "default"));
}, 1_200_000);

afterAll(async () => {
  if (process.env.AGENTTYPE_KEEP_CLUSTER === "1") return;
  await helm("uninstall", release, "-n", operatorNs).catch(() => undefined);
  await kubectl("delete", "namespace", "--ignore-not-found", "--wait=false", ns, operatorNs).catch(
    () => undefined,
  );
}, T);

describe("an agent from an unmodified image, end to end", () => {
  test(
    "helm install runs the operator: 2 replicas, one of them holding the leader Lease",
    async () => {
      ({ crdsPreinstalled } = await installOperator(release, operatorNs, ns));
      const deployment = await getJson("deployment", "-n", operatorNs, `${release}-agenttype-operator`);
      expect(deployment.status?.readyReplicas).toBe(2);
      const pods = (
        await getJson<{ items: Pod[] }>(
          "pods",
          "-n",
          operatorNs,
          "-l",
          `app.kubernetes.io/instance=${release}`,
        )
      ).items.map((p) => p.metadata.name);
      const lease = await waitFor("the leader Lease", async () => {
        const l = await getJson<{ spec: { holderIdentity?: string } }>(
          "lease",
          "-n",
          operatorNs,
          `${release}-agenttype-operator`,
        );
        return l.spec.holderIdentity ? l : undefined;
      });
      expect(pods).toContain(lease.spec.holderIdentity);
      // Least privilege, namespaced: what it needs in the agents' namespace, nothing elsewhere.
      const sa = `system:serviceaccount:${operatorNs}:${release}-agenttype-operator`;
      const can = async (...args: string[]) =>
        // `can-i` answers "no" with exit status 1.
        (await kubectl("auth", "can-i", "--as", sa, ...args).catch((e: ExecError) => e.stdout)).trim();
      expect(await can("patch", "agenttypes.agenttype.dev", "--subresource=status", "-n", ns)).toBe("yes");
      expect(await can("create", "deployments.apps", "-n", ns)).toBe("yes");
      expect(await can("update", "leases.coordination.k8s.io", "-n", operatorNs)).toBe("yes");
      // Secrets: get and create only, for the SSH keys AgentHosts name (the hosts ClusterRole;
      // README "Narrowing the operator's Secret access" binds it in one namespace instead).
      expect(await can("list", "secrets", "-n", ns)).toMatch(/^no/);
      expect(await can("update", "secrets", "-n", ns)).toMatch(/^no/);
      // AgentTypes: patch for the host clean-up finalizer, never update or delete.
      expect(await can("update", "agenttypes.agenttype.dev", "-n", ns)).toMatch(/^no/);
      expect(await can("delete", "agenttypes.agenttype.dev", "-n", ns)).toMatch(/^no/);
      expect(await can("create", "deployments.apps", "-n", "default")).toMatch(/^no/);
      expect(await can("list", "agenttypes.agenttype.dev", "--all-namespaces")).toMatch(/^no/);
      await kubectl(
        "wait",
        "--for=condition=Established",
        "crd/agenttypes.agenttype.dev",
        "crd/agenttools.agenttype.dev",
      );
      // The aggregated API (kubectl agenttype logs and exec of agents on hosts), served by the
      // operator's pods under the chart's RBAC, NetworkPolicy and Service: kube-apiserver
      // reaches it, trusts the CA the operator wrote, and gets its discovery document.
      const api = await waitFor("the aggregated API Available", async () => {
        const a = await getJson("apiservice", "v1alpha1.subresources.agenttype.dev");
        return condition(a, "Available")?.status === "True" ? a : undefined;
      });
      expect((api.spec as { caBundle?: string }).caBundle).toBeTruthy();
      const discovery = JSON.parse(
        await kubectl("get", "--raw", "/apis/subresources.agenttype.dev/v1alpha1"),
      );
      expect(discovery.resources.map((r: { name: string }) => r.name)).toEqual([
        "agenttypes/log",
        "agenttypes/exec",
        "agenttypes/attach",
      ]);
    },
    T,
  );

  test(
    "the Node and Python agents ask the LLM, list and call a tool and write memory through their sidecars",
    async () => {
      const objects = demoObjects();
      const upstreams = objects.filter((o) => o.kind === "Deployment" || o.kind === "Service");
      await kubectlIn(list(upstreams), "apply", "--server-side", "-f", "-");
      const ip = async (svc: string) => (await getJson("service", "-n", ns, svc)).spec?.clusterIP as string;
      upstreamIps.llm = await ip("llm");
      upstreamIps.tool = await ip("calculator");
      const agents = withUpstreams(objects.filter((o) => o.apiVersion.startsWith("agenttype.dev")));
      await kubectl(
        "rollout",
        "status",
        "-n",
        ns,
        "deployment/llm",
        "deployment/calculator",
        "--timeout=120s",
      );
      await kubectlIn(list(agents), "apply", "--server-side", "-f", "-");

      for (const [agent, runtime] of [
        ["node-agent", /agenttype: sidecar ready after \d+ ms \(node v24\./],
        ["python-agent", /agenttype: sidecar ready after \d+ ms \(python 3\./],
      ] as const) {
        const at = await agentReady(agent);
        expect(at.status?.readyReplicas).toBe(1);
        expect(at.status?.resolvedTools).toEqual([
          expect.objectContaining({ name: "calculator", version: "2.1.0" }),
        ]);
        expect(condition(at, "ToolsResolved")?.status).toBe("True");
        // The tool answers the operator's probe (a GET of its endpoint: 405, it takes POST): the
        // AgentTool is Available, and no agent is told its tool is unavailable.
        await waitFor(
          "the AgentTool demo-calculator Available",
          async () => {
            const tool = await getJson("agenttool", "-n", ns, "demo-calculator");
            return condition(tool, "Available")?.status === "True" ? tool : undefined;
          },
          120_000,
        );
        await waitFor(
          `${agent}: ToolsResolved=True Resolved`,
          async () => {
            const now = await getJson("agenttype", "-n", ns, agent);
            return condition(now, "ToolsResolved")?.reason === "Resolved" ? now : undefined;
          },
          120_000,
        );

        const [pod] = await podsOf(agent);
        if (pod === undefined) throw new Error(`no pod of ${agent}`);
        // The pod contract: the wrapper ran and exited 0, the sidecar runs beside the agent.
        expect(pod.spec.initContainers?.map((c) => c.name)).toEqual([
          "agenttype-wrapper",
          "agenttype-sidecar",
        ]);
        expect(pod.status.initContainerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
        // The agent runs as this run's uid, and cannot write its root filesystem.
        const identity = await kubectl(
          "exec",
          "-n",
          ns,
          pod.metadata.name,
          "-c",
          "agent",
          "--",
          "sh",
          "-c",
          "id -u; id -g; touch /probe 2>/dev/null && echo writable || echo read-only",
        );
        const uid = AGENT_UIDS[agent];
        expect(identity.trim().split("\n")).toEqual([String(uid), String(uid), "read-only"]);
        const log = await agentLog(pod.metadata.name);
        expect(log).not.toMatch(/agent failed/);
        expect(log).toMatch(runtime); // the wrapper's preload or shim ran in the agent's runtime
        const question =
          agent === "node-agent"
            ? "What is 6 * 7? (asked by the node agent)"
            : "What is (2 + 3) * 7? (asked by the python agent)";
        // The Ollama-protocol server echoes the prompt: the answer came from the upstream.
        expect(log).toContain(`llm: You said: ${question} [model llama3.2`);
        expect(log).toContain("tools: calculator@2.1.0");
        expect(log).toContain(
          agent === "node-agent" ? "tool calculator: 6 * 7 = 42" : "tool calculator: (2 + 3) * 7 = 35",
        );
        expect(log).toContain(`memory: runs/${pod.metadata.name} = {"question":`);

        // The memory lives in the sidecar: read it from there, as another process would.
        const stored = await fetchInSidecar(
          pod.metadata.name,
          `http://127.0.0.1:4000/memory/runs/${pod.metadata.name}`,
        );
        expect(JSON.parse(stored).value).toMatchObject({ answer: agent === "node-agent" ? "42" : "35" });
        const metrics = await fetchInSidecar(pod.metadata.name, "http://127.0.0.1:9090/metrics");
        expect(metrics).toMatch(/agenttype_tool_calls_total\{[^}]*tool="calculator"[^}]*\} 1/);
        expect(metrics).toMatch(/agenttype_llm_requests_total\{[^}]*outcome="[^"]*"[^}]*\} 1/);
      }
      // Both calls reached the tool server.
      const toolLog = await kubectl("logs", "-n", ns, "deployment/calculator");
      expect(toolLog).toContain('tool-server: evaluate "6 * 7" = 42');
      expect(toolLog).toContain('tool-server: evaluate "(2 + 3) * 7" = 35');
    },
    T,
  );

  test(
    "an image update rolls the agent's pods to the new image",
    async () => {
      const images = resolve(repo, "tests/cluster/images.sh");
      await execOk(images, [
        "buildah",
        "tag",
        "localhost/agenttype/e2e-agent-node:dev",
        "localhost/agenttype/e2e-agent-node:v2",
      ]);
      await execOk(images, ["import", "localhost/agenttype/e2e-agent-node:v2"], { timeoutMs: T });
      const [before] = await podsOf("node-agent");
      await kubectl(
        "patch",
        "agenttype",
        "-n",
        ns,
        "node-agent",
        "--type=merge",
        "-p",
        JSON.stringify({ spec: { image: "localhost/agenttype/e2e-agent-node:v2" } }),
      );
      await agentReady("node-agent");
      const pods = await waitFor("the rollout to finish", async () => {
        const p = await podsOf("node-agent");
        return p.length === 1 && p[0]?.metadata.name !== before?.metadata.name && p.every(podReady)
          ? p
          : undefined;
      });
      const [pod] = pods;
      if (pod === undefined) throw new Error("no pod after the rollout");
      expect(pod.spec.containers.find((c) => c.name === "agent")?.image).toBe(
        "localhost/agenttype/e2e-agent-node:v2",
      );
      expect(await agentLog(pod.metadata.name)).toContain("tool calculator: 6 * 7 = 42");
    },
    T,
  );

  test(
    "kubectl scale at/python-agent --replicas=2 gives two Ready agents, each with its own sidecar memory",
    async () => {
      await kubectl("scale", "-n", ns, "agenttype/python-agent", "--replicas=2");
      const at = await waitFor("2 ready replicas", async () => {
        const a = await agentReady("python-agent");
        return a.status?.readyReplicas === 2 ? a : undefined;
      });
      expect(at.status?.replicas).toBe(2);
      // Two replicas: a node drain may evict only one at a time.
      const budget = await getJson("poddisruptionbudget", "-n", ns, "python-agent");
      expect(budget.spec?.maxUnavailable).toBe(1);
      expect(budget.status?.expectedPods).toBe(2);
      const pods = await podsOf("python-agent");
      expect(pods).toHaveLength(2);
      for (const p of pods) {
        expect(await agentLog(p.metadata.name)).toContain(`memory: runs/${p.metadata.name} = `);
      }
      const printed = await kubectl("get", "agenttype", "-n", ns, "python-agent");
      expect(printed).toMatch(/python-agent\s+True\s+2\s+2/);
    },
    T,
  );

  test(
    "start-up overhead: time to Ready of an AgentType's pod vs a bare pod of the same image",
    async () => {
      const image = "localhost/agenttype/e2e-agent-node:dev";
      const template = demoObjects().find((o) => o.kind === "AgentType" && o.metadata.name === "node-agent");
      if (template === undefined) throw new Error("node-agent missing from demo.yaml");
      const rounds = 5;
      const timings = { agent: [] as number[], bare: [] as number[], agentFromCreate: [] as number[] };
      for (let i = 0; i < rounds; i++) {
        // Bare: the agent's image alone, as a user would run it without AgentType.
        const bare = await timePod(`startup-bare-${i}`, () =>
          core.createNamespacedPod({
            namespace: ns,
            body: {
              metadata: { name: `startup-bare-${i}` },
              spec: {
                terminationGracePeriodSeconds: 1,
                containers: [
                  {
                    name: "agent",
                    image,
                    imagePullPolicy: "IfNotPresent",
                    env: [{ name: "OPENAI_API_KEY", value: "x" }],
                    // What the AgentType's agent container gets: the restricted profile and
                    // this run's uid, as the namespace demands.
                    securityContext: {
                      ...(template.spec?.securityContext as object),
                      runAsNonRoot: true,
                      allowPrivilegeEscalation: false,
                      capabilities: { drop: ["ALL"] },
                      seccompProfile: { type: "RuntimeDefault" },
                    },
                  },
                ],
              },
            },
          }),
        );
        const body = withUpstreams(structuredClone(template));
        body.metadata.name = `startup-${i}`;
        const agent = await timePod(`startup-${i}`, () =>
          kubectlIn(JSON.stringify(body), "create", "-f", "-"),
        );
        timings.bare.push(bare.podToReady);
        timings.agent.push(agent.podToReady);
        timings.agentFromCreate.push(agent.createToReady);
        await core.deleteNamespacedPod({ name: `startup-bare-${i}`, namespace: ns });
        await kubectl("delete", "agenttype", "-n", ns, `startup-${i}`, "--wait=false");
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
      const fmt = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(",");
      const [agentS, bareS] = [median(timings.agent), median(timings.bare)];
      process.stdout.write(
        `e2e-startup rounds agent_s=${fmt(timings.agent)} bare_s=${fmt(timings.bare)} ` +
          `agent_from_agenttype_create_s=${fmt(timings.agentFromCreate)}\n` +
          `e2e-startup agent_ready_s=${agentS.toFixed(2)} bare_ready_s=${bareS.toFixed(2)} ratio=${(agentS / bareS).toFixed(2)}\n`,
      );
      expect(agentS).toBeGreaterThan(bareS); // two more containers start first: never free
    },
    T,
  );

  test(
    "deleting the AgentTypes and `helm uninstall` leave nothing behind",
    async () => {
      await kubectl("delete", "agenttype", "-n", ns, "--all", "--wait=true");
      await waitFor("the agents' objects to be collected", async () => {
        const left = await kubectl(
          "get",
          "deployments,statefulsets,configmaps,services,serviceaccounts,poddisruptionbudgets,pods",
          "-n",
          ns,
          "-l",
          "app.kubernetes.io/managed-by=agenttype-operator",
          "-o",
          "name",
        );
        return left.trim() === "" ? true : undefined;
      });
      await helm("uninstall", release, "-n", operatorNs, "--wait");
      await waitFor("the operator's objects to be gone", async () => {
        const left = await kubectl(
          "get",
          "deployments,pods,services,serviceaccounts,roles,rolebindings,poddisruptionbudgets",
          "-n",
          operatorNs,
          "-l",
          `app.kubernetes.io/instance=${release}`,
          "-o",
          "name",
        );
        return left.trim() === "" ? true : undefined;
      });
      const cluster = await kubectl(
        "get",
        "clusterroles,clusterrolebindings,crds",
        "-l",
        `app.kubernetes.io/instance=${release}`,
        "-o",
        "name",
      );
      expect(cluster.trim()).toBe("");
      const roles = await kubectl("get", "roles,rolebindings", "-n", ns, "-o", "name");
      expect(roles).not.toContain(release);
      const crds = await kubectl("get", "crds", "-o", "name");
      // Removed with the release that installed them; another release's stay.
      if (crdsPreinstalled) expect(crds).toContain("agenttypes.agenttype.dev");
      else expect(crds).not.toContain("agenttype.dev");
    },
    T,
  );
});
