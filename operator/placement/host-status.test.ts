import { describe, expect, it } from "vitest";
import type { GroupInfo } from "../drivers/driver.ts";
import { groupOfReplica } from "./host.ts";
import { type HostObservation, hostAgentStatus } from "./host-status.ts";

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
