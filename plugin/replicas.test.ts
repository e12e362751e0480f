import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { AgentType } from "../api/agenttype.ts";
import { hostReplicas, pickReplica, podReplicas } from "./replicas.ts";

const pod = (name: string, created: string, extra: Partial<V1Pod> = {}): V1Pod => ({
  metadata: { name, creationTimestamp: new Date(created), ...extra.metadata },
  spec: { nodeName: "node-1", containers: [] },
  status: {
    phase: "Running",
    conditions: [{ type: "Ready", status: "True" }],
    containerStatuses: [{ name: "agent", image: "a", imageID: "", ready: true, restartCount: 2 }],
    ...extra.status,
  },
});

const agent = (replicas: number, hostReplicasStatus?: AgentType["status"]): AgentType =>
  ({
    metadata: { name: "coder", namespace: "team-a" },
    spec: { replicas, runtime: { type: "kubernetes" } },
    ...(hostReplicasStatus === undefined ? {} : { status: hostReplicasStatus }),
  }) as unknown as AgentType;

describe("podReplicas", () => {
  it("numbers a Deployment's pods by age, leaving out pods on their way out", () => {
    const replicas = podReplicas([
      pod("coder-b", "2026-11-26T05:00:02Z"),
      pod("coder-a", "2026-11-26T05:00:01Z"),
      pod("coder-gone", "2026-11-26T05:00:00Z", { metadata: { deletionTimestamp: new Date() } }),
      pod("coder-done", "2026-11-26T05:00:00Z", { status: { phase: "Failed" } }),
    ]);
    expect(replicas.map((r) => [r.index, r.name, r.where, r.state, r.ready, r.restarts])).toEqual([
      [0, "coder-a", "node-1", "Running", true, 2],
      [1, "coder-b", "node-1", "Running", true, 2],
    ]);
  });

  it("numbers a StatefulSet's pods by their ordinal, whatever their age", () => {
    const ordinal = (n: number) => ({ metadata: { labels: { "apps.kubernetes.io/pod-index": String(n) } } });
    const replicas = podReplicas([
      pod("coder-1", "2026-11-26T05:00:00Z", ordinal(1)),
      pod("coder-0", "2026-11-26T05:00:09Z", ordinal(0)),
    ]);
    expect(replicas.map((r) => [r.index, r.name])).toEqual([
      [0, "coder-0"],
      [1, "coder-1"],
    ]);
  });

  it("shows a waiting container's reason as the state, as kubectl get pods does", () => {
    const [replica] = podReplicas([
      pod("coder-a", "2026-11-26T05:00:00Z", {
        status: {
          phase: "Pending",
          conditions: [{ type: "Ready", status: "False" }],
          containerStatuses: [
            {
              name: "agent",
              image: "a",
              imageID: "",
              ready: false,
              restartCount: 0,
              state: { waiting: { reason: "ImagePullBackOff" } },
            },
          ],
        },
      }),
    ]);
    expect([replica?.state, replica?.ready]).toEqual(["ImagePullBackOff", false]);
  });
});

describe("pickReplica", () => {
  const two = podReplicas([pod("coder-a", "2026-11-26T05:00:01Z"), pod("coder-b", "2026-11-26T05:00:02Z")]);

  it("takes replica 0 unless told", () => {
    expect(pickReplica(agent(2), two).name).toBe("coder-a");
    expect(pickReplica(agent(2), two, 1).name).toBe("coder-b");
  });

  it("says which replicas exist when the number is out of range", () => {
    expect(() => pickReplica(agent(2), two, 2)).toThrow(
      'replica 2 out of range: AgentType "coder" has replicas 0, 1',
    );
  });

  it("says the agent has no running replica when it has none", () => {
    expect(() => pickReplica(agent(0), [])).toThrow(
      'AgentType "coder" has no running replica (spec.replicas is 0)',
    );
  });
});

describe("hostReplicas", () => {
  it("reads the replicas the operator recorded for an AgentHost", () => {
    const onHost = agent(2, {
      hostReplicas: [
        { replica: 1, host: "edge-1", state: "restarting", restarts: 3 },
        { replica: 0, host: "edge-1", state: "running" },
      ],
    });
    expect(hostReplicas(onHost).map((r) => [r.index, r.kind, r.where, r.state, r.ready, r.restarts])).toEqual(
      [
        [0, "host", "edge-1", "running", true, 0],
        [1, "host", "edge-1", "restarting", false, 3],
      ],
    );
  });
});
