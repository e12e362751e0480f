import { describe, expect, it } from "vitest";
import type { GroupInfo } from "../drivers/driver.ts";
import { groupOfReplica } from "./host.ts";
import { GUEST_USAGE_REFRESH_MS, type HostObservation, hostAgentStatus } from "./host-status.ts";

const now = new Date("2026-11-26T05:00:00Z");
const base: HostObservation = {
  generation: 3,
  selector: "agenttype.dev/name=a",
  host: "kvm-1",
  desiredReplicas: 1,
  replicas: [{ replica: 0, state: "running", current: true, restarts: 0 }],
};
const condition = (o: HostObservation, type: string) =>
  hostAgentStatus(undefined, o, now).conditions?.find((c) => c.type === type);

describe("hostAgentStatus with spec.suspend", () => {
  it("says Suspended=True and Ready=False with reason Suspended while the replicas are saved", () => {
    const o: HostObservation = {
      ...base,
      suspend: "suspended",
      replicas: [{ replica: 0, state: "suspended", current: true, restarts: 0 }],
    };
    expect(condition(o, "Suspended")).toMatchObject({
      status: "True",
      reason: "Suspended",
      observedGeneration: 3,
    });
    expect(condition(o, "Ready")).toMatchObject({ status: "False", reason: "Suspended" });
    expect(condition(o, "Ready")?.message).toMatch(/1 replicas saved to disk on host kvm-1/);
    expect(condition(o, "Progressing")).toMatchObject({ status: "False", reason: "Suspended" });
    expect(condition(o, "Degraded")).toMatchObject({ status: "False" });
    expect(hostAgentStatus(undefined, o, now).hostReplicas).toEqual([
      { replica: 0, host: "kvm-1", state: "suspended", restarts: 0 },
    ]);
  });

  it("says Suspended=False once resumed, and nothing of suspension where a host cannot suspend", () => {
    expect(condition({ ...base, suspend: "running" }, "Suspended")).toMatchObject({
      status: "False",
      reason: "Running",
    });
    expect(condition({ ...base, suspend: "running" }, "Ready")).toMatchObject({ status: "True" });
    expect(condition(base, "Suspended")).toBeUndefined();
  });

  it("lets a problem show over a suspension", () => {
    const o: HostObservation = {
      ...base,
      suspend: "suspended",
      problem: { reason: "HostKeyMismatch", message: "x" },
    };
    expect(condition(o, "Ready")).toMatchObject({ status: "False", reason: "HostKeyMismatch" });
  });
});

describe("hostAgentStatus with a replica's guest", () => {
  const machine = {
    name: "ns_a_0_u_h",
    state: "running",
    vcpus: 1,
    memoryMiB: 1280,
    cpuSeconds: 41.6,
    rssMiB: 300,
  };
  const observe = (m: typeof machine): HostObservation => ({
    ...base,
    replicas: [{ replica: 0, state: "running", current: true, restarts: 0, machine: m }],
  });

  it("shows the guest's state, size and use, with when the use was read", () => {
    expect(hostAgentStatus(undefined, observe(machine), now).hostReplicas?.[0]?.guest).toEqual({
      name: "ns_a_0_u_h",
      state: "running",
      vcpus: 1,
      memoryMiB: 1280,
      cpuSeconds: 42,
      rssMiB: 300,
      usageAt: now.toISOString(),
    });
  });

  it("keeps the last reading of CPU and RSS for a minute, so a steady agent writes no status", () => {
    const first = hostAgentStatus(undefined, observe(machine), now);
    const busier = { ...machine, cpuSeconds: 45, rssMiB: 310 };
    const soon = new Date(now.getTime() + GUEST_USAGE_REFRESH_MS - 1);
    expect(hostAgentStatus(first, observe(busier), soon)).toEqual(first);
    const later = new Date(now.getTime() + GUEST_USAGE_REFRESH_MS);
    expect(hostAgentStatus(first, observe(busier), later).hostReplicas?.[0]?.guest).toMatchObject({
      cpuSeconds: 45,
      rssMiB: 310,
      usageAt: later.toISOString(),
    });
    // A state change or a new guest shows at once.
    const stopped = hostAgentStatus(first, observe({ ...busier, state: "shut off" }), soon);
    expect(stopped.hostReplicas?.[0]?.guest).toMatchObject({ state: "shut off", cpuSeconds: 42 });
    const replaced = hostAgentStatus(first, observe({ ...busier, name: "ns_a_0_u_i" }), soon);
    expect(replaced.hostReplicas?.[0]?.guest).toMatchObject({ name: "ns_a_0_u_i", cpuSeconds: 45 });
  });
});

describe("groupOfReplica", () => {
  const group = (id: string, replica: number, hash: string, created: number): GroupInfo => ({
    id,
    name: id,
    attempt: 0,
    state: "ready",
    createdAt: new Date(created),
    labels: { "agenttype.dev/replica": String(replica), "agenttype.dev/spec-hash": hash },
  });

  it("takes the group running the current spec while a roll has two, else the newest", () => {
    const old = group("old/1", 0, "aaa", 1000);
    const fresh = group("new/1", 0, "bbb", 500);
    const other = group("r1/1", 1, "aaa", 1000);
    expect([...groupOfReplica([old, fresh, other], "bbb")]).toEqual([
      [0, fresh],
      [1, other],
    ]);
    expect(groupOfReplica([fresh, old], undefined).get(0)).toBe(old);
    expect(groupOfReplica([old, fresh], "ccc").get(0)).toBe(old);
  });
});
