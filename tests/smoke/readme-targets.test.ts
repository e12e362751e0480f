// The README's cluster commands, run as a user runs them, from a stopped cluster: `make
// cluster-up TIER=control-plane` and `make cluster-down`; `make up` twice in a row with a
// KUBECONFIG of another cluster exported (both must still act on the project's own cluster and
// build the images); what the demo gives: DNS names of Services resolving in pods, the samples
// of config/samples getting a status beside the demo without replacing any of its objects;
// `make images` leaving no buildah container behind; and `make down`, with that KUBECONFIG
// still exported, leaving no process, listener or bridge of the cluster.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { eventually } from "../fixtures/eventually.ts";
import { execOk } from "../fixtures/exec.ts";
import {
  buildahLeftovers,
  harness,
  listening,
  make,
  newBuildahLeftovers,
  processesMentioning,
  repo,
  script,
  tail,
} from "./make.ts";

const T = 1_200_000;
const cluster = harness(
  "AGENTTYPE_BIN",
  "AGENTTYPE_KUBECONFIG",
  "AGENTTYPE_STATE",
  "AGENTTYPE_APISERVER_PORT",
  "AGENTTYPE_ETCD_CLIENT_PORT",
  "AGENTTYPE_DNS_IP",
);
const DEMO = "agenttype-demo";

/** A kubeconfig of some other cluster, exported as a user who followed `make up`'s advice
 *  elsewhere would have it; nothing may use it. */
const elsewhere = mkdtempSync(join(tmpdir(), "smoke-elsewhere-"));
const otherKubeconfig = join(elsewhere, "kubeconfig");
writeFileSync(
  otherKubeconfig,
  [
    "apiVersion: v1",
    "kind: Config",
    "clusters: [{name: elsewhere, cluster: {server: 'https://127.0.0.1:1'}}]",
    "users: [{name: someone, user: {token: not-a-token}}]",
    "contexts: [{name: elsewhere, context: {cluster: elsewhere, user: someone}}]",
    "current-context: elsewhere",
    "",
  ].join("\n"),
);

/** kubectl on the project's own cluster; rejects with its stderr. */
const kubectl = (...args: string[]) =>
  execOk(join(cluster.AGENTTYPE_BIN, "kubectl"), ["--kubeconfig", cluster.AGENTTYPE_KUBECONFIG, ...args]);
const getJson = async <V>(...args: string[]) => JSON.parse(await kubectl("get", "-o", "json", ...args)) as V;

interface Condition {
  type: string;
  status: string;
  reason?: string;
}
interface Agent {
  metadata: { name: string };
  status?: { conditions?: Condition[]; resolvedTools?: { name: string; agentTool: string }[] };
}

/** Nothing of the project's cluster is left: no process, no listener, no bridge. */
async function expectClusterGone(): Promise<void> {
  const state = `${cluster.AGENTTYPE_STATE}/`;
  await eventually(
    "no process of the cluster left",
    async () => processesMentioning(state).length === 0,
    30_000,
  );
  expect(listening("0.0.0.0", Number(cluster.AGENTTYPE_APISERVER_PORT))).toBe(false);
  expect(listening("10.88.0.1", Number(cluster.AGENTTYPE_APISERVER_PORT))).toBe(false);
  expect(listening("127.0.0.1", Number(cluster.AGENTTYPE_ETCD_CLIENT_PORT))).toBe(false);
  expect(script("tests/cluster/cluster.sh", "status").code).toBe(1);
}

/** make up's output: the project's cluster, the exported KUBECONFIG ignored, images built, both
 *  agents done. */
function expectDemoUp(run: Awaited<ReturnType<typeof make>>): void {
  expect(run.code, tail(run)).toBe(0);
  expect(run.output).toContain("cluster: the project's own");
  expect(run.output).toContain(`KUBECONFIG=${otherKubeconfig} in the environment is not used`);
  expect(run.output).toContain("building and importing the images");
  expect(run.output).toContain("watching the namespaces agenttype-demo and default");
  expect(run.output.match(/^agent done/gm)).toHaveLength(2);
}

beforeAll(async () => {
  const down = await make("cluster-down");
  expect(down.code, tail(down)).toBe(0);
}, T);

afterAll(async () => {
  await make("cluster-down");
  rmSync(elsewhere, { recursive: true, force: true });
}, T);

describe("the README's make targets, from a stopped cluster", () => {
  test(
    "make cluster-up TIER=control-plane starts a control plane; make cluster-down stops it",
    async () => {
      const up = await make("cluster-up", { TIER: "control-plane" });
      expect(up.code, tail(up)).toBe(0);
      expect(up.stdout.trim().split("\n").at(-1)).toBe(cluster.AGENTTYPE_KUBECONFIG);
      expect(await kubectl("get", "--raw", "/readyz")).toBe("ok");
      const down = await make("cluster-down");
      expect(down.code, tail(down)).toBe(0);
      await expectClusterGone();
    },
    T,
  );

  test(
    "make up twice in a row, with another cluster's KUBECONFIG exported: the project's cluster, images built",
    async () => {
      const before = await buildahLeftovers();
      const first = await make("up", {}, { KUBECONFIG: otherKubeconfig }, T);
      expectDemoUp(first);
      const second = await make("up", {}, { KUBECONFIG: otherKubeconfig }, T);
      expectDemoUp(second);
      // make up leaves no buildah working container (nor its overlay mount) behind.
      expect(await newBuildahLeftovers(before)).toEqual([]);
    },
    T,
  );

  test(
    "a pod resolves Services by their DNS names, and no pod gets a DNS warning",
    async () => {
      const pod = `dns-probe-${Date.now().toString(36)}`;
      await kubectl(
        "run",
        pod,
        "-n",
        "default",
        "--restart=Never",
        "--image=localhost/agenttype/e2e-upstream:dev",
        "--image-pull-policy=Never",
        "--command",
        "--",
        "sh",
        "-c",
        "cat /etc/resolv.conf; getent hosts llm.agenttype-demo.svc; getent hosts kubernetes.default.svc.cluster.local",
      );
      await eventually(
        `pod ${pod} to finish`,
        async () =>
          (await getJson<{ status: { phase: string } }>("pod", "-n", "default", pod)).status.phase ===
          "Succeeded",
        120_000,
      );
      const log = await kubectl("logs", "-n", "default", pod);
      expect(log).toContain(`nameserver ${cluster.AGENTTYPE_DNS_IP}`);
      expect(log).toMatch(/^10\.96\.0\.210\s+llm\.agenttype-demo\.svc\.cluster\.local$/m);
      expect(log).toMatch(/^10\.96\.0\.1\s+kubernetes\.default\.svc\.cluster\.local$/m);
      await kubectl("delete", "pod", "-n", "default", pod, "--wait=false");
      const events = await getJson<{ items: { reason: string; message: string }[] }>("events", "-A");
      expect(events.items.filter((e) => /DNS/i.test(e.reason))).toEqual([]);
    },
    T,
  );

  test(
    "the samples get a status in default, and applied into the demo's namespace they replace none of its objects",
    async () => {
      const samples = join(repo, "config/samples");
      await kubectl("apply", "-k", samples);
      const names = (await getJson<{ items: Agent[] }>("agenttypes", "-n", "default")).items.map(
        (a) => a.metadata.name,
      );
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) {
        await eventually(
          `a status on the sample AgentType ${name} in default`,
          async () =>
            ((await getJson<Agent>("agenttype", "-n", "default", name)).status?.conditions ?? []).length > 0,
          120_000,
        );
      }
      await kubectl("apply", "-k", samples, "-n", DEMO);
      for (const agent of ["node-agent", "python-agent"]) {
        const at = await getJson<Agent>("agenttype", "-n", DEMO, agent);
        expect(at.status?.resolvedTools).toEqual([
          expect.objectContaining({ name: "calculator", agentTool: "demo-calculator" }),
        ]);
        expect(at.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
      }
      // The AgentHosts are cluster-scoped: the first delete removes them.
      await kubectl("delete", "-k", samples, "-n", DEMO, "--wait=false");
      await kubectl("delete", "-k", samples, "--wait=false", "--ignore-not-found");
    },
    T,
  );

  test(
    "make images builds every image and leaves no buildah container mounted",
    async () => {
      const before = await buildahLeftovers();
      const run = await make("images");
      expect(run.code, tail(run)).toBe(0);
      expect(await newBuildahLeftovers(before)).toEqual([]);
    },
    T,
  );

  test(
    "make down, with another cluster's KUBECONFIG exported, removes the demo and stops the project's cluster",
    async () => {
      const run = await make("down", {}, { KUBECONFIG: otherKubeconfig }, 300_000);
      expect(run.code, tail(run)).toBe(0);
      expect(run.output).toContain("cluster: the project's own");
      expect(run.output).toContain("stopping the local cluster with the demo and the operator in it");
      expect(run.output).toContain("control plane down");
      await expectClusterGone();
    },
    T,
  );
});
