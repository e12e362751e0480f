// Faults around agents on a containerd host, with the operator process, the tier's control
// plane and the test host: an AgentHost deleted under its AgentTypes, sshd stopped, containerd
// killed with its containers, an agent crashing again and again, the operator SIGKILLed in the
// middle of a rollout, and the operator restarted while an AgentType was deleted. The world
// (control plane, host, LLM, tool, operator) is operator-fixture.ts's.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { within } from "../../operator/drivers/call.ts";
import type { KubeObject } from "../../operator/kube/client.ts";
import { resources } from "../../operator/kube/resources.ts";
import { eventually } from "../fixtures/eventually.ts";
import { hostCommand } from "./host-env.ts";
import { condition, type EventObject, operatorOnHost } from "./operator-fixture.ts";

const run = promisify(execFile);
const world = operatorOnHost({ prefix: "hosts-faults", identity: "operator-faults" });
const { host, namespace, hostName } = world;
const { getAgentType, getHost, events, readyAgentType, agentLogs, agentType } = world;

interface CrictlContainer {
  id: string;
  state: string;
  podSandboxId: string;
  metadata: { name: string };
}

/** The AgentType's containers as the host's containerd lists them, asked on this machine (no SSH). */
async function containersOnHost(name: string): Promise<CrictlContainer[]> {
  const out = await run(
    world.crictl,
    [
      "--runtime-endpoint",
      `unix://${host.containerdSocket}`,
      "ps",
      "-a",
      "--label",
      `agenttype.dev/name=${name}`,
      "-o",
      "json",
    ],
    { timeout: 30_000 },
  );
  return (JSON.parse(out.stdout) as { containers: CrictlContainer[] }).containers;
}

const running = async (name: string) =>
  (await containersOnHost(name))
    .filter((c) => c.state === "CONTAINER_RUNNING")
    .map((c) => c.id)
    .sort();

/** The host pid of the AgentType's agent (replica 0 unless told). */
async function agentPid(name: string, replica = 0): Promise<number> {
  const [agent] = await world.driver.list(
    { "agenttype.dev/name": name, "agenttype.dev/role": "agent", "agenttype.dev/replica": String(replica) },
    within(30_000),
  );
  if (agent === undefined || agent.state !== "running") throw new Error(`no running agent of ${name}`);
  const out = await run(world.crictl, [
    "--runtime-endpoint",
    `unix://${host.containerdSocket}`,
    "inspect",
    "-o",
    "go-template",
    "--template",
    "{{.info.pid}}",
    agent.id,
  ]);
  return Number(out.stdout.trim());
}

const reachable = (status: string) =>
  eventually(
    `AgentHost Reachable=${status}`,
    async () => {
      const h = await getHost(hostName);
      return condition(h, "Reachable")?.status === status ? h : undefined;
    },
    90_000,
    500,
  );

const eventsSince = async (name: string, since: number, reason: string): Promise<EventObject[]> =>
  (await events(name)).filter(
    (e) =>
      e.reason === reason &&
      new Date(
        String((e as { lastTimestamp?: string }).lastTimestamp ?? e.metadata.creationTimestamp),
      ).getTime() >=
        since - 1000,
  );

describe("an AgentHost deleted under its AgentTypes", () => {
  it("lets the AgentType go with a Warning Event saying what could not be removed; the host's next AgentHost removes the leftovers as orphans", async () => {
    await world.client.create(resources.agentHost, undefined, world.agentHost("vanishing-host"));
    const manifest = agentType("stranded");
    manifest.spec.runtime = { type: "containerd", hostRef: { name: "vanishing-host" } };
    await world.client.create(resources.agentType, namespace, manifest);
    const ready = await readyAgentType("stranded");
    expect(ready.metadata.finalizers).toContain("agenttype.dev/host-cleanup");

    await world.client.delete(resources.agentHost, undefined, "vanishing-host");
    await world.client.delete(resources.agentType, namespace, "stranded");
    await world.gone("stranded", 60_000);
    const [event] = (await events("stranded")).filter((e) => e.reason === "HostGone");
    expect(event?.type).toBe("Warning");
    expect(event?.message).toContain("AgentHost vanishing-host no longer exists");
    // Its containers are still on the machine, which test-host also names: once old enough not to
    // be a start in flight, that AgentHost's probe removes them (checked at the end of the file).
    expect((await running("stranded")).length).toBeGreaterThan(0);
  });
});

describe("an AgentType on a host that fails", () => {
  it("sshd stopped: the AgentHost is Reachable=False, the agents keep running, and the status recovers when sshd is back", async () => {
    await world.client.create(resources.agentType, namespace, agentType("steady"));
    await readyAgentType("steady");
    await reachable("True");
    const before = await running("steady");
    expect(before).toHaveLength(2); // the sidecar and the agent

    hostCommand("sshd-stop");
    try {
      const down = await reachable("False");
      expect(condition(down, "Reachable")?.message).not.toBe("");
      expect(await running("steady")).toEqual(before);
    } finally {
      hostCommand("sshd-start");
    }
    await reachable("True");
    const after = await readyAgentType("steady", 120_000);
    expect(after.status?.readyReplicas).toBe(1);
    expect(await running("steady")).toEqual(before);
    expect((after.status?.hostReplicas as { restarts: number }[] | undefined)?.[0]?.restarts).toBe(0);
  });

  it("containerd killed with its containers and started again: the agents come back, with an Event", async () => {
    const before = await running("steady");
    const since = Date.now();
    hostCommand("containerd-restart");
    expect((await running("steady")).filter((id) => before.includes(id))).toEqual([]);
    const event = await eventually(
      "ReplicaRecreated",
      async () => (await eventsSince("steady", since, "ReplicaRecreated"))[0],
      120_000,
      500,
    );
    expect(event.message).toMatch(/replica 0 on host test-host was started again: its group was lost/);
    await readyAgentType("steady", 120_000);
    const after = await running("steady");
    expect(after).toHaveLength(2);
    expect(after.some((id) => before.includes(id))).toBe(false);
    await eventually(
      "the agent ran again",
      async () => (await agentLogs("steady")).some((l) => l.includes("agent done (version 1)")),
      120_000,
      500,
    );
    await reachable("True");
  });

  it("an agent that crashes again and again is restarted with a growing delay, and an Event each time", async () => {
    // When each restart was first seen; each crash comes right after the restart before it.
    const restartedAt: number[] = [];
    for (let crash = 1; crash <= 3; crash++) {
      process.kill(await agentPid("steady"), "SIGKILL");
      const event = await eventually(
        `restart ${crash}`,
        async () =>
          (await events("steady")).find(
            (e) => e.reason === "ContainerRestarted" && e.message.includes(`(restart ${crash})`),
          ),
        120_000,
        250,
      );
      restartedAt.push(Date.now());
      expect(event.type).toBe("Warning");
      expect(event.message).toMatch(/agent of replica 0 on host test-host exited with code \d+/);
      await eventually("agent running", () => agentPid("steady").then((pid) => pid > 1), 60_000, 250);
    }
    // kubelet-style doubling from 5 s: at least 5 s between the first and second restarts, 10 s
    // between the second and third (less the 250 ms the polling may be late).
    expect((restartedAt[1] ?? 0) - (restartedAt[0] ?? 0)).toBeGreaterThanOrEqual(4_700);
    expect((restartedAt[2] ?? 0) - (restartedAt[1] ?? 0)).toBeGreaterThanOrEqual(9_700);
    const ready = await readyAgentType("steady");
    expect((ready.status?.hostReplicas as { restarts: number }[] | undefined)?.[0]?.restarts).toBe(3);
  });
});

describe("the operator stopped and started again", () => {
  it("SIGKILLed in the middle of a rollout: converges after the restart, with no duplicate replicas", async () => {
    await world.kubectl("scale", "-n", namespace, "agenttype/steady", "--replicas=2");
    const two = await readyAgentType("steady");
    expect(two.status?.readyReplicas).toBe(2);
    const before = await world.driver.listGroups({ "agenttype.dev/name": "steady" }, within(30_000));
    expect(before).toHaveLength(2);

    const at = await getAgentType("steady");
    const env = ((at.spec?.env ?? []) as { name: string; value: string }[]).map((e) =>
      e.name === "AGENT_VERSION" ? { ...e, value: "2" } : e,
    );
    await world.client.apply(
      resources.agentType,
      {
        apiVersion: "agenttype.dev/v1alpha1",
        kind: "AgentType",
        metadata: { name: "steady", namespace },
        spec: { ...at.spec, env },
      } as KubeObject,
      "tests",
    );
    // The rollout has begun once the first old group is being replaced.
    await eventually(
      "the rollout under way",
      async () => {
        const groups = await world.driver.listGroups({ "agenttype.dev/name": "steady" }, within(30_000));
        return groups.some((g) => !before.some((b) => b.id === g.id)) || groups.length < 2;
      },
      60_000,
      100,
    );
    await world.operator.stop("SIGKILL");
    await world.startOperator();

    const done = await readyAgentType("steady", 240_000);
    expect(done.status?.readyReplicas).toBe(2);
    const groups = await world.driver.listGroups({ "agenttype.dev/name": "steady" }, within(30_000));
    expect(groups.map((g) => g.labels["agenttype.dev/replica"]).sort()).toEqual(["0", "1"]);
    expect(new Set(groups.map((g) => g.labels["agenttype.dev/spec-hash"])).size).toBe(1);
    expect(groups.every((g) => !before.some((b) => b.id === g.id))).toBe(true);
    const containers = await containersOnHost("steady");
    const runningIn = containers.filter((c) => c.state === "CONTAINER_RUNNING").map((c) => c.podSandboxId);
    expect(runningIn).toHaveLength(4); // a sidecar and an agent in each of the two groups
    for (const g of groups) expect(runningIn.filter((id) => id === g.id)).toHaveLength(2);
    await eventually(
      "both replicas run version 2",
      async () =>
        (await agentLogs("steady")).filter((l) => l.includes("agent done (version 2)")).length === 2,
      120_000,
      500,
    );
  });

  it("restarted: adopts what runs without restarting it, removes what belongs to AgentTypes deleted meanwhile, and the orphans of vanished ones", async () => {
    await world.client.create(resources.agentType, namespace, agentType("doomed"));
    await readyAgentType("doomed");
    const steady = await running("steady");
    expect(steady).toHaveLength(4);

    await world.operator.stop("SIGTERM");
    await world.client.delete(resources.agentType, namespace, "doomed");
    const restartedAt = Date.now();
    await world.startOperator();

    await world.gone("doomed", 120_000);
    expect(await running("doomed")).toEqual([]);
    expect((await events("doomed")).map((e) => e.reason)).toContain("HostCleanedUp");
    // The vanished AgentHost's leftovers: removed by test-host's probe once two minutes old, and
    // said so. Waits for both: the containers stop before they are removed and the Event is
    // recorded after, so "none running" alone is seen mid-removal.
    await eventually(
      "the stranded containers removed, with an OrphanRemoved Event on test-host",
      async () =>
        (await containersOnHost("stranded")).length === 0 &&
        (await events(hostName, "default")).some(
          (e) => e.reason === "OrphanRemoved" && e.message.includes("which no longer exists"),
        ),
      180_000,
      1000,
    );
    // Nothing of steady was restarted or replaced.
    const ready = await readyAgentType("steady");
    expect(ready.status?.readyReplicas).toBe(2);
    expect(await running("steady")).toEqual(steady);
    for (const reason of ["ReplicaStarted", "ReplicaUpdated", "ReplicaRecreated", "ContainerRestarted"])
      expect(await eventsSince("steady", restartedAt, reason)).toEqual([]);
  });
});
