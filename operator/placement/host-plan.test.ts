import { describe, expect, it } from "vitest";
import { MEMORY_PATH } from "../../api/sidecarconfig.ts";
import { BUILD_SETTINGS, SAMPLE_NAMESPACE, SAMPLE_UID, sampleAgentType } from "../../tests/fixtures/build.ts";
import { buildObjects } from "../build/objects.ts";
import { LABEL_PERSISTENT } from "../drivers/labels.ts";
import type { ResolvedTool } from "../tools/resolve-tools.ts";
import {
  groupDamage,
  hostReplicaPlan,
  LABEL_CPU_MILLIS,
  LABEL_MEMORY_BYTES,
  LABEL_PERSISTENT_BYTES,
  replicaSize,
  replicaSpec,
  replicasThatFit,
  resourcesOf,
  startsNewFirst,
  toolsUnreachableFromHost,
  usageOf,
} from "./host-plan.ts";
import { hostAgentStatus } from "./host-status.ts";

const tool = (name: string, endpoint: object) =>
  ({
    name,
    version: "1.0.0",
    agentTool: { metadata: { name }, spec: { endpoint, protocol: "http" } },
  }) as unknown as ResolvedTool;

describe("resourcesOf", () => {
  it("weighs CPU by the request and caps it at the limit only: a request alone is no quota", () => {
    // A sidecar that asks for 50m must not be throttled to 5% of a core on a host.
    const sidecar = resourcesOf({ name: "sidecar", resources: { requests: { cpu: "50m", memory: "64Mi" } } });
    expect(sidecar).toEqual({ cpuRequestMillis: 50, memoryLimitBytes: 64 * 1024 * 1024 });
    const agent = resourcesOf({
      name: "agent",
      resources: { requests: { cpu: "100m" }, limits: { cpu: "300m", memory: "1Gi" } },
    });
    expect(agent).toEqual({
      cpuRequestMillis: 100,
      cpuLimitMillis: 300,
      memoryLimitBytes: 1024 * 1024 * 1024,
    });
    // A limit alone is the request too, as the API server defaults a pod's.
    expect(resourcesOf({ name: "capped", resources: { limits: { cpu: "1500m" } } })).toEqual({
      cpuRequestMillis: 1500,
      cpuLimitMillis: 1500,
    });
    expect(resourcesOf({ name: "bare" })).toEqual({});
  });

  it("sizes a replica by its requests of CPU and its limits of memory", () => {
    const spec = {
      agent: { resources: { cpuRequestMillis: 100, cpuLimitMillis: 300, memoryLimitBytes: 2 ** 30 } },
      sidecar: { resources: { cpuRequestMillis: 50, memoryLimitBytes: 2 ** 26 } },
    } as Parameters<typeof replicaSize>[0];
    expect(replicaSize(spec)).toEqual({ cpuMillis: 150, memoryBytes: 2 ** 30 + 2 ** 26 });
  });
});

describe("replicasThatFit", () => {
  it("places every replica when the host declares no capacity", () => {
    expect(
      replicasThatFit(
        undefined,
        { agents: 9, cpuMillis: 0, memoryBytes: 0 },
        { cpuMillis: 100, memoryBytes: 1 },
        3,
      ),
    ).toEqual({ fit: 3 });
  });
  it("stops at the tightest of agents, cpu and memory beside what others use, and names it", () => {
    const others = usageOf([
      { labels: { [LABEL_CPU_MILLIS]: "500", [LABEL_MEMORY_BYTES]: String(2 ** 30) } },
    ]);
    expect(others).toEqual({ agents: 1, cpuMillis: 500, memoryBytes: 2 ** 30 });
    expect(replicasThatFit({ agents: 3 }, others, { cpuMillis: 0, memoryBytes: 0 }, 5)).toEqual({
      fit: 2,
      limit: "3 agents",
    });
    expect(replicasThatFit({ cpu: "2" }, others, { cpuMillis: 600, memoryBytes: 0 }, 5)).toEqual({
      fit: 2,
      limit: "cpu 2",
    });
    expect(
      replicasThatFit({ agents: 10, memory: "2Gi" }, others, { cpuMillis: 0, memoryBytes: 2 ** 29 }, 5),
    ).toEqual({
      fit: 2,
      limit: "memory 2Gi",
    });
    expect(replicasThatFit({ agents: 1 }, others, { cpuMillis: 0, memoryBytes: 0 }, 2)).toEqual({
      fit: 0,
      limit: "1 agents",
    });
  });
});

describe("toolsUnreachableFromHost", () => {
  it("names tools behind a Service or a cluster DNS name, and passes other URLs", () => {
    expect(
      toolsUnreachableFromHost([
        tool("a", { service: { name: "search", port: 80 } }),
        tool("b", { url: "http://calc.tools.svc:8000/x" }),
        tool("c", { url: "http://calc.tools.svc.cluster.local/x" }),
        tool("d", { url: "http://10.0.0.5:8000/x" }),
        tool("e", { url: "https://tools.example.com/x" }),
      ]),
    ).toEqual([
      "a (AgentTool a: Service search is a cluster address)",
      "b (AgentTool b: calc.tools.svc resolves only in the cluster)",
      "c (AgentTool c: calc.tools.svc.cluster.local resolves only in the cluster)",
    ]);
  });
});

describe("hostAgentStatus", () => {
  const now = new Date("2026-01-01T00:00:00Z");
  const base = { generation: 2, selector: "a=b", host: "h", desiredReplicas: 2 };
  const cond = (s: ReturnType<typeof hostAgentStatus>, type: string) =>
    s.conditions?.find((c) => c.type === type);
  it("is Ready when every replica runs the current spec, with the host of each", () => {
    const s = hostAgentStatus(
      undefined,
      {
        ...base,
        replicas: [
          { replica: 1, state: "running", current: true, restarts: 0 },
          { replica: 0, state: "running", current: true, restarts: 2 },
        ],
      },
      now,
    );
    expect(cond(s, "Ready")).toMatchObject({
      status: "True",
      reason: "AllReplicasReady",
      observedGeneration: 2,
    });
    expect(s.readyReplicas).toBe(2);
    expect(s.hostReplicas).toEqual([
      { replica: 0, host: "h", state: "running", restarts: 2 },
      { replica: 1, host: "h", state: "running", restarts: 0 },
    ]);
  });
  it("says HostFull when capacity leaves replicas out, and RollingUpdate while one is outdated", () => {
    const full = hostAgentStatus(
      undefined,
      {
        ...base,
        replicas: [{ replica: 0, state: "running", current: true, restarts: 0 }],
        hostFull: { placed: 1, limit: "1 agents" },
      },
      now,
    );
    expect(cond(full, "Ready")).toMatchObject({ status: "False", reason: "HostFull" });
    expect(cond(full, "Progressing")).toMatchObject({ status: "False" });
    const rolling = hostAgentStatus(
      undefined,
      {
        ...base,
        replicas: [
          { replica: 0, state: "running", current: false, restarts: 0 },
          { replica: 1, state: "running", current: true, restarts: 0 },
        ],
      },
      now,
    );
    expect(cond(rolling, "Progressing")).toMatchObject({ status: "True", reason: "RollingUpdate" });
    expect(cond(rolling, "Ready")).toMatchObject({ status: "False", reason: "ReplicasNotReady" });
  });
  it("reports a tool problem in ToolsResolved and Degraded", () => {
    const s = hostAgentStatus(
      undefined,
      {
        ...base,
        replicas: [],
        toolProblem: { reason: "ToolNotReachableFromHost", message: "m" },
      },
      now,
    );
    expect(cond(s, "ToolsResolved")).toMatchObject({ status: "False", reason: "ToolNotReachableFromHost" });
    expect(cond(s, "Degraded")).toMatchObject({ status: "True" });
  });
});

describe("groupDamage", () => {
  const group = { id: "g", state: "ready" as const };
  const c = (role: string, state: "created" | "running" | "exited", groupId = "g") => ({
    groupId,
    labels: { "agenttype.dev/role": role },
    state,
  });
  it("leaves a group whose sidecar and agent were started, whatever became of them since", () => {
    expect(groupDamage(group, [c("wrapper", "exited"), c("sidecar", "running"), c("agent", "exited")])).toBe(
      undefined,
    );
  });
  it("names a lost sandbox", () => {
    expect(
      groupDamage({ id: "g", state: "not-ready" }, [c("sidecar", "running"), c("agent", "running")]),
    ).toMatch(/group was lost/);
    expect(groupDamage({ id: "g/", state: "not-ready", message: "its guest g is shut off" }, [])).toBe(
      "its guest g is shut off",
    );
  });
  it("names the containers a start interrupted left missing or never started", () => {
    expect(groupDamage(group, [c("sidecar", "running"), c("agent", "created")])).toMatch(
      /its agent never started/,
    );
    expect(groupDamage(group, [c("wrapper", "exited")])).toMatch(/its sidecar and agent never started/);
    // Another group's containers do not count.
    expect(groupDamage(group, [c("sidecar", "running", "h"), c("agent", "running", "h")])).toMatch(
      /sidecar and agent/,
    );
  });
});

describe("persistent memory on a host (runtime kvm)", () => {
  const agentFrom = (edit: Parameters<typeof sampleAgentType>[1]) =>
    sampleAgentType("agenttype_sandboxed-coder.yaml", edit);
  const owner = { namespace: SAMPLE_NAMESPACE, name: "sandboxed-coder", uid: SAMPLE_UID };
  const specOf = (agent: ReturnType<typeof agentFrom>) =>
    replicaSpec(owner, 0, buildObjects(agent, [], BUILD_SETTINGS), []);

  it("gives the sidecar's memory a volume of the asked size that outlives the replica, and labels its size on every object", () => {
    const spec = specOf(agentFrom(() => {}));
    expect(spec.sidecar.persistentDir).toEqual({ path: MEMORY_PATH, sizeBytes: 5 * 2 ** 30 });
    expect(spec.sidecar.writableDirs).toEqual(["/tmp"]);
    const plan = hostReplicaPlan(spec, "kvm-1");
    const memory = plan.volumes.find((v) => v.labels?.[LABEL_PERSISTENT] === "true");
    expect(memory?.name).toBe("team-a_sandboxed-coder_0-memory");
    const sidecar = plan.containers.find((c) => c.name === "sidecar");
    expect(sidecar?.mounts).toContainEqual({
      volume: memory?.name,
      containerPath: MEMORY_PATH,
      readOnly: false,
    });
    for (const labels of [plan.group.labels, ...plan.volumes.map((v) => v.labels)])
      expect(labels?.[LABEL_PERSISTENT_BYTES]).toBe(String(5 * 2 ** 30));
  });

  it("rolls a replica with a data disk old-first, where others start the new guest beside the old", () => {
    const persistent = hostReplicaPlan(specOf(agentFrom(() => {})), "kvm-1");
    const ephemeral = hostReplicaPlan(
      specOf(agentFrom((m) => (m.spec.memory = { type: "ephemeral" }))),
      "kvm-1",
    );
    expect(startsNewFirst(true, ephemeral)).toBe(true);
    expect(startsNewFirst(true, persistent)).toBe(false);
    expect(startsNewFirst(false, ephemeral)).toBe(false);
  });

  it("keeps ephemeral memory in the replica's own volume, with no persistent label", () => {
    const spec = specOf(agentFrom((m) => (m.spec.memory = { type: "ephemeral" })));
    expect(spec.sidecar.persistentDir).toBeUndefined();
    expect(spec.sidecar.writableDirs).toEqual(["/tmp", MEMORY_PATH]);
    const plan = hostReplicaPlan(spec, "kvm-1");
    expect(plan.volumes.some((v) => v.labels?.[LABEL_PERSISTENT] !== undefined)).toBe(false);
    expect(plan.group.labels?.[LABEL_PERSISTENT_BYTES]).toBeUndefined();
  });
});
