// Deadlines against the real control plane (ADR 0004): a leader frozen longer than its lease is
// replaced and, once resumed, writes nothing and exits; a leader whose API server hangs stops
// at its renew deadline; an API server that stops answering without closing connections makes
// reconciles time out, retry, and converge once it answers again.
import { setTimeout as sleep } from "node:timers/promises";
import { AppsV1Api, CustomObjectsApi, type KubeConfig, type V1Deployment } from "@kubernetes/client-node";
import { afterEach, beforeAll, describe, expect } from "vitest";
import { controlPlanePid } from "../fixtures/control-plane.ts";
import { eventually, kubeconfigPath, simpleAgent, test } from "./cluster.ts";
import { installCrds } from "./crds.ts";
import { type OperatorProcess, startOperator } from "./operator-process.ts";

const LEADER = 'leader_election_master_status{name="agenttype-operator"}';
/** The operator's lease duration and renew deadline (operator/manager.ts). */
const LEASE_MS = 10_000;
const RENEW_DEADLINE_MS = 8_000;
const RETRY_MS = 2_000;
const running: OperatorProcess[] = [];

beforeAll(async () => {
  await installCrds(kubeconfigPath());
});

afterEach(async () => {
  // SIGKILL ends a stopped process too.
  for (const operator of running.splice(0)) await operator.stop("SIGKILL");
});

async function operator(
  namespace: string,
  identity: string,
  options: { leaderElection?: boolean; env?: Record<string, string> } = {},
): Promise<OperatorProcess> {
  const started = await startOperator({
    kubeconfig: kubeconfigPath(),
    namespace,
    identity,
    leaderElection: options.leaderElection ?? true,
    extraEnv: options.env ?? {},
  });
  running.push(started);
  return started;
}

function apis(kc: KubeConfig, namespace: string) {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const apps = kc.makeApiClient(AppsV1Api);
  const at = { group: "agenttype.dev", version: "v1alpha1", plural: "agenttypes", namespace };
  return {
    create: (name: string) => custom.createNamespacedCustomObject({ ...at, body: simpleAgent(name) }),
    setImage: (name: string, image: string) =>
      custom.patchNamespacedCustomObject({
        ...at,
        name,
        body: [{ op: "replace", path: "/spec/image", value: image }],
      }),
    deployment: (name: string) => apps.readNamespacedDeployment({ namespace, name }),
    observedGeneration: async (name: string) => {
      const object = (await custom.getNamespacedCustomObject({ ...at, name })) as {
        metadata: { generation?: number };
        status?: { observedGeneration?: number };
      };
      return object.status?.observedGeneration === object.metadata.generation;
    },
  };
}

const sidecarImage = (d: V1Deployment) =>
  d.spec?.template.spec?.initContainers?.find((c) => c.name === "agenttype-sidecar")?.image;
const agentImage = (d: V1Deployment) =>
  d.spec?.template.spec?.containers.find((c) => c.name === "agent")?.image;

/** The operator's JSON log lines. */
function logLines(operator: OperatorProcess): { time: number; msg: string; key?: string; err?: string }[] {
  return operator
    .logs()
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line));
}

/** Runs `during` with the kube-apiserver stopped (SIGSTOP): connections stay open, nothing answers. */
async function withApiServerFrozen<T>(during: () => Promise<T>): Promise<{ result: T; frozenMs: number }> {
  const pid = await controlPlanePid("kube-apiserver");
  process.kill(pid, "SIGSTOP");
  const frozenAt = Date.now();
  try {
    return { result: await during(), frozenMs: Date.now() - frozenAt };
  } finally {
    // Whatever happened above, the API server answers again for the tests after this one.
    process.kill(pid, "SIGCONT");
  }
}

describe("leader election deadlines", () => {
  test("a leader frozen longer than its lease is replaced; resumed, it writes nothing and exits", async ({
    kc,
    namespace,
  }) => {
    const api = apis(kc, namespace);
    // Each replica stamps its own sidecar image into what it applies: a write by the old
    // leader after the takeover would show in the Deployments.
    const a = await operator(namespace, "op-a", { env: { SIDECAR_IMAGE: "agenttype/sidecar:op-a" } });
    const b = await operator(namespace, "op-b", { env: { SIDECAR_IMAGE: "agenttype/sidecar:op-b" } });
    const leader = await eventually("one leader, one standby exporting 0", async () => {
      const [la, lb] = await Promise.all([a.metric(LEADER), b.metric(LEADER)]);
      if (la === 1 && lb === 0) return a;
      if (lb === 1 && la === 0) return b;
      return undefined;
    });
    const standby = leader === a ? b : a;
    const stamp = (o: OperatorProcess) => `agenttype/sidecar:${o.identity}`;
    await api.create("before");
    await eventually("reconciled by the leader", async () => {
      return sidecarImage(await api.deployment("before")) === stamp(leader);
    });

    expect(leader.child.exitCode, leader.logs()).toBeNull();
    leader.child.kill("SIGSTOP");
    const frozenAt = Date.now();
    // Changes that reach the frozen leader's watch connections, for it to act on if it ever
    // acted again: one changed AgentType, one new.
    await api.setImage("before", "ghcr.io/acme/summarizer:2.0.0");
    await api.create("during");
    await eventually("the standby leads", async () => (await standby.metric(LEADER)) === 1, 3 * LEASE_MS);
    const takeoverMs = Date.now() - frozenAt;
    await eventually("the change reconciled by the new leader", async () => {
      const d = await api.deployment("before");
      return agentImage(d) === "ghcr.io/acme/summarizer:2.0.0" && sidecarImage(d) === stamp(standby);
    });
    await eventually("the new AgentType reconciled by the new leader", async () => {
      return sidecarImage(await api.deployment("during")) === stamp(standby);
    });
    // Frozen for longer than the lease, whatever the takeover took.
    await sleep(Math.max(0, LEASE_MS + 2_000 - (Date.now() - frozenAt)));

    const resumedAt = Date.now();
    leader.child.kill("SIGCONT");
    const exitCode = await Promise.race([leader.exited, sleep(15_000, "still running")]);
    const stopMs = Date.now() - resumedAt;
    expect(exitCode, leader.logs()).toBe(1);
    expect(logLines(leader).some((l) => l.msg.startsWith("lost the leader lease"))).toBe(true);
    // Nothing the old leader might have sent after its resume shows: the Deployments carry
    // the new leader's stamp, now and after the new leader has had time for another round.
    await sleep(3_000);
    for (const name of ["before", "during"]) {
      expect(sidecarImage(await api.deployment(name)), name).toBe(stamp(standby));
    }
    // A stale status from the old leader (measured without the write window: observedGeneration
    // set back to its cached generation) would show here.
    expect(await api.observedGeneration("before"), "the new leader's status stays").toBe(true);
    const refused = logLines(leader).filter(
      (l) => l.time >= resumedAt && (l.err ?? "").includes("leadership lapsed"),
    ).length;
    console.log(
      `[leader-deadlines] frozen leader: standby led ${(takeoverMs / 1000).toFixed(1)} s after SIGSTOP; ` +
        `resumed after ${((resumedAt - frozenAt) / 1000).toFixed(1)} s, it exited in ${stopMs} ms ` +
        `(${refused} writes refused by its closed write window)`,
    );
    expect(takeoverMs).toBeLessThan(LEASE_MS + 6_000);
    expect(stopMs).toBeLessThan(3_000);
  });

  test("a leader whose API server stops answering stops at its renew deadline and exits", async ({
    namespace,
  }) => {
    const leader = await operator(namespace, "op-alone");
    await eventually("it leads", async () => (await leader.metric(LEADER)) === 1);
    const { result: exitCode, frozenMs } = await withApiServerFrozen(() =>
      Promise.race([leader.exited, sleep(RENEW_DEADLINE_MS + 10_000, "still running")]),
    );
    expect(exitCode, leader.logs()).toBe(1);
    expect(
      logLines(leader).some((l) => l.msg === "could not renew the lease within the renew deadline"),
      leader.logs(),
    ).toBe(true);
    console.log(
      `[leader-deadlines] API server frozen: the leader exited ${(frozenMs / 1000).toFixed(1)} s after the freeze ` +
        `(renew deadline ${RENEW_DEADLINE_MS / 1000} s from the start of its last renewal, every ${RETRY_MS / 1000} s)`,
    );
    // Within the renew deadline of its last renewal, which started at most one retry period
    // before the freeze: its hung Lease requests did not hold it any longer.
    expect(frozenMs).toBeLessThanOrEqual(RENEW_DEADLINE_MS + 1_000);
    expect(frozenMs).toBeGreaterThanOrEqual(RENEW_DEADLINE_MS - RETRY_MS - 1_000);
  });
});

describe("request deadlines", () => {
  test("an API server that stops answering: reconciles time out, are retried, and converge", async ({
    kc,
    namespace,
  }) => {
    const api = apis(kc, namespace);
    const op = await operator(namespace, "op-deadline", {
      leaderElection: false,
      env: { REQUEST_TIMEOUT_SECONDS: "2" },
    });
    await api.create("before");
    await eventually("the first Deployment", () => api.deployment("before"));

    // The operator is frozen while the changes are made, so that it reads them from its watch
    // connections only after the API server has stopped answering: its reconciles then meet
    // the hung server for certain.
    op.child.kill("SIGSTOP");
    try {
      await api.setImage("before", "ghcr.io/acme/summarizer:2.0.0");
      await api.create("during");
      await sleep(1_000);
    } catch (error) {
      op.child.kill("SIGCONT");
      throw error;
    }
    const timeouts = () =>
      logLines(op).filter(
        (l) => l.msg === "reconcile failed; retrying" && (l.err ?? "").includes("no answer within 2 s"),
      );
    const { frozenMs } = await withApiServerFrozen(async () => {
      op.child.kill("SIGCONT");
      // Retried: some key timed out twice.
      await eventually(
        "a reconcile timed out, was retried, and timed out again",
        async () => {
          const keys = timeouts().map((l) => l.key);
          return keys.some((key, i) => keys.indexOf(key) !== i);
        },
        20_000,
        100,
      );
    });
    const resumedAt = Date.now();
    await eventually(
      "converged after the API server answers again",
      async () => {
        const [before, during] = await Promise.all([api.deployment("before"), api.deployment("during")]);
        return (
          agentImage(before) === "ghcr.io/acme/summarizer:2.0.0" &&
          during !== undefined &&
          (await api.observedGeneration("before")) &&
          (await api.observedGeneration("during"))
        );
      },
      60_000,
    );
    const convergeMs = Date.now() - resumedAt;
    const errors = await op.metric('controller_runtime_reconcile_errors_total{controller="agenttype"}');
    const timedOut = timeouts();
    expect(timedOut.length).toBeGreaterThanOrEqual(2);
    expect(errors).toBeGreaterThanOrEqual(timedOut.length);
    console.log(
      `[leader-deadlines] API server frozen ${(frozenMs / 1000).toFixed(1)} s: ${timedOut.length} reconciles timed out ` +
        `(2 s deadline), reconcile errors ${errors}; converged ${(convergeMs / 1000).toFixed(1)} s after it answered again`,
    );
  });
});
