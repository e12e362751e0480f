import { describe, expect, it } from "vitest";
import type { AgentTypeStatus } from "../../../api/agenttype.ts";
import type { ResolvedTool } from "../../tools/resolve-tools.ts";
import { trimPod } from "./pods-status.ts";
import { computeStatus, type Observation, setCondition, statusChanged, transitions } from "./status.ts";

const t0 = new Date("2026-01-01T00:00:00Z");
const t1 = new Date("2026-01-01T00:01:00Z");
const base: Observation = {
  generation: 3,
  desiredReplicas: 2,
  selector: "agenttype.dev/agent=a",
  resolution: { resolved: [], missing: [] },
};
const rolledOut = { generation: 5, observedGeneration: 5, replicas: 2, readyReplicas: 2, updatedReplicas: 2 };
const byType = (status: AgentTypeStatus) =>
  Object.fromEntries((status.conditions ?? []).map((c) => [c.type, [c.status, c.reason]]));

describe("computeStatus", () => {
  it("is Ready when every desired pod is ready at the latest spec", () => {
    const status = computeStatus(undefined, { ...base, workload: rolledOut }, t0);
    expect(byType(status)).toEqual({
      Ready: ["True", "PodsReady"],
      Progressing: ["False", "Complete"],
      Degraded: ["False", "AsExpected"],
      ToolsResolved: ["True", "Resolved"],
    });
    expect(status).toMatchObject({
      observedGeneration: 3,
      replicas: 2,
      readyReplicas: 2,
      selector: "agenttype.dev/agent=a",
    });
    for (const condition of status.conditions ?? []) expect(condition.observedGeneration).toBe(3);
  });

  it("is Progressing and not Ready during a rollout", () => {
    const status = computeStatus(
      undefined,
      { ...base, workload: { ...rolledOut, updatedReplicas: 1, readyReplicas: 1 } },
      t0,
    );
    expect(byType(status).Ready).toEqual(["False", "RollingOut"]);
    expect(byType(status).Progressing).toEqual(["True", "RollingOut"]);
    expect(status.conditions?.find((c) => c.type === "Progressing")?.message).toBe("1 of 2 pods updated");
  });

  it("is Degraded and not Ready when a required tool is missing, naming it", () => {
    const status = computeStatus(
      undefined,
      {
        ...base,
        resolution: {
          resolved: [],
          missing: [{ name: "search", range: "^2", required: true, reason: "no AgentTool offers it" }],
        },
      },
      t0,
    );
    expect(byType(status)).toMatchObject({
      Ready: ["False", "RequiredToolsMissing"],
      Degraded: ["True", "RequiredToolsMissing"],
      ToolsResolved: ["False", "RequiredToolsMissing"],
    });
    expect(status.conditions?.find((c) => c.type === "ToolsResolved")?.message).toBe(
      "search@^2: no AgentTool offers it",
    );
    expect(status.missingTools).toEqual(["search"]);
  });

  it("makes a new Event of a missing tool's reason changing, not of a repeated one", () => {
    const missing = (reason: string) => ({
      ...base,
      resolution: { resolved: [], missing: [{ name: "search", range: "^2", required: true, reason }] },
    });
    const unknown = computeStatus(undefined, missing("no AgentTool offers it"), t0);
    const offered = computeStatus(unknown, missing("no version matches (offered: 1.3.0)"), t1);
    expect(transitions(unknown, offered).map((c) => [c.type, c.reason, c.message])).toEqual([
      ["ToolsResolved", "RequiredToolsMissing", "search@^2: no version matches (offered: 1.3.0)"],
    ]);
    expect(
      transitions(offered, computeStatus(offered, missing("no version matches (offered: 1.3.0)"), t1)),
    ).toEqual([]);
  });

  it("stays Ready with a missing optional tool, and says so", () => {
    const missing = [{ name: "maps", range: "*", required: false, reason: "no AgentTool offers it" }];
    const status = computeStatus(
      undefined,
      { ...base, workload: rolledOut, resolution: { resolved: [], missing } },
      t0,
    );
    expect(byType(status)).toMatchObject({
      Ready: ["True", "PodsReady"],
      ToolsResolved: ["True", "OptionalToolsMissing"],
    });
  });

  it("is Ready with zero replicas", () => {
    const status = computeStatus(
      undefined,
      {
        ...base,
        desiredReplicas: 0,
        workload: { ...rolledOut, replicas: 0, readyReplicas: 0, updatedReplicas: 0 },
      },
      t0,
    );
    expect(byType(status).Ready).toEqual(["True", "ScaledToZero"]);
  });

  it("keeps lastTransitionTime while a condition keeps its status", () => {
    const first = computeStatus(undefined, { ...base, workload: rolledOut }, t0);
    const again = computeStatus(first, { ...base, workload: rolledOut }, t1);
    expect(again).toEqual(first);
    const notReady = computeStatus(first, { ...base, workload: { ...rolledOut, readyReplicas: 1 } }, t1);
    const ready = notReady.conditions?.find((c) => c.type === "Ready");
    expect(ready?.lastTransitionTime).toBe(t1.toISOString());
    expect(notReady.conditions?.find((c) => c.type === "Degraded")?.lastTransitionTime).toBe(
      t0.toISOString(),
    );
    expect(transitions(first, notReady).map((c) => c.type)).toEqual(["Ready"]);
  });
});

describe("computeStatus and the pods", () => {
  const pullFailing = trimPod({
    metadata: { name: "a-new", namespace: "ns" },
    status: {
      phase: "Pending",
      containerStatuses: [
        {
          name: "agent",
          ready: false,
          state: { waiting: { reason: "ImagePullBackOff", message: "not found" } },
        },
      ],
    },
  });
  const oldReady = trimPod({
    metadata: { name: "a-old", namespace: "ns" },
    status: { phase: "Running", containerStatuses: [{ name: "agent", ready: true, state: { running: {} } }] },
  });
  // A rollout stuck on an image that cannot be pulled: the old pod still serves, nothing terminates.
  const stuck: Observation = {
    ...base,
    desiredReplicas: 1,
    workload: { generation: 2, observedGeneration: 2, replicas: 2, readyReplicas: 1, updatedReplicas: 1 },
    pods: [oldReady, pullFailing],
  };

  it("is Degraded with the pull failure, and Progressing says what happens", () => {
    const status = computeStatus(undefined, stuck, t0);
    expect(byType(status)).toMatchObject({
      Degraded: ["True", "ImagePullFailed"],
      Progressing: ["True", "RollingOut"],
    });
    const find = (type: string) => status.conditions?.find((c) => c.type === type)?.message;
    expect(find("Degraded")).toBe(
      "pod a-new: container agent cannot pull its image (ImagePullBackOff): not found",
    );
    expect(find("Progressing")).toBe("1 of 1 pods ready, 2 pods in all; 1 pod starting (ImagePullBackOff)");
    expect(find("Progressing")).not.toContain("terminating");
  });

  it("recovers to Degraded=False once the pods are fine, a transition worth an Event", () => {
    const first = computeStatus(undefined, stuck, t0);
    const fixed = computeStatus(
      first,
      { ...stuck, workload: rolledOut, desiredReplicas: 2, pods: [oldReady] },
      t1,
    );
    expect(transitions(first, fixed).map((c) => [c.type, c.status, c.reason])).toContainEqual([
      "Degraded",
      "False",
      "AsExpected",
    ]);
  });

  it("a transient failure being retried shows in Progressing, not as a broken agent", () => {
    const status = computeStatus(
      undefined,
      {
        ...base,
        workload: rolledOut,
        retrying: { reason: "APIServerUnavailable", message: "no answer within 30 s" },
      },
      t0,
    );
    expect(byType(status)).toMatchObject({
      Progressing: ["True", "APIServerUnavailable"],
      Degraded: ["False", "AsExpected"],
    });
  });
});

describe("setCondition", () => {
  it("replaces the condition of the same type only", () => {
    const one = setCondition([], { type: "A", status: "True", reason: "R", message: "m" }, t0);
    const two = setCondition(one, { type: "B", status: "False", reason: "R", message: "m" }, t0);
    expect(
      setCondition(two, { type: "A", status: "False", reason: "S", message: "n" }, t1).map((c) => [
        c.type,
        c.status,
      ]),
    ).toEqual([
      ["B", "False"],
      ["A", "False"],
    ]);
  });
});

describe("statusChanged", () => {
  /** A status as the API server returns it: every map's keys sorted. */
  const sortedKeys = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(sortedKeys)
      : typeof value === "object" && value !== null
        ? Object.fromEntries(
            Object.keys(value)
              .sort()
              .map((k) => [k, sortedKeys((value as Record<string, unknown>)[k])]),
          )
        : value;

  it("sees no change in the status the server echoes back with its keys sorted", () => {
    const written = computeStatus(undefined, { ...base, workload: rolledOut }, t0);
    const stored = sortedKeys(written) as AgentTypeStatus;
    expect(JSON.stringify(stored)).not.toBe(JSON.stringify(written));
    const next = computeStatus(stored, { ...base, workload: rolledOut }, t1);
    expect(statusChanged(stored, next)).toBe(false);
  });

  it("sees a changed value, a condition that moved, and a field that is gone", () => {
    const written = computeStatus(undefined, { ...base, workload: rolledOut }, t0);
    const fewer = computeStatus(written, { ...base, workload: { ...rolledOut, readyReplicas: 1 } }, t1);
    expect(statusChanged(written, fewer)).toBe(true);
    const reordered = { ...written, conditions: [...(written.conditions ?? [])].reverse() };
    expect(statusChanged(written, reordered)).toBe(true);
    const { resolvedTools: _, ...without } = written;
    expect(statusChanged(written, without)).toBe(true);
    expect(statusChanged(undefined, written)).toBe(true);
  });

  it("reads a field set to undefined as absent", () => {
    const written = computeStatus(undefined, base, t0);
    expect(statusChanged(written, { ...written, missingTools: undefined })).toBe(false);
  });
});

describe("ProvidersReady", () => {
  const down = {
    sidecarsReady: false as const,
    read: {
      pod: "a-1",
      at: 0,
      status: {
        agent: { name: "a", namespace: "ns" },
        ready: false,
        providers: [
          {
            name: "local",
            type: "ollama",
            where: "http://10.96.0.5:11434",
            model: "m",
            state: "unreachable" as const,
            consecutiveFailures: 4,
            lastError: { errorClass: "connection", message: "connect ECONNREFUSED", at: "t" },
          },
        ],
      },
    },
  };

  it("is False naming the provider, then True again once the sidecars are ready: both transitions", () => {
    const failing = computeStatus(undefined, { ...base, workload: rolledOut, providers: down }, t0);
    const condition = failing.conditions?.find((c) => c.type === "ProvidersReady");
    expect(condition).toMatchObject({
      status: "False",
      reason: "ProviderUnreachable",
      observedGeneration: 3,
    });
    expect(condition?.message).toContain(
      "provider local (ollama http://10.96.0.5:11434, model m): unreachable",
    );
    expect(failing.conditions?.map((c) => c.type).at(-1)).toBe("ProvidersReady");
    const back = computeStatus(
      failing,
      { ...base, workload: rolledOut, providers: { sidecarsReady: true } },
      t1,
    );
    expect(byType(back).ProvidersReady).toEqual(["True", "SidecarsReady"]);
    expect(transitions(failing, back).map((c) => c.type)).toEqual(["ProvidersReady"]);
  });

  it("stays as it was when nothing was read this time, and goes when the agent has no LLM", () => {
    const failing = computeStatus(undefined, { ...base, workload: rolledOut, providers: down }, t0);
    const unread = computeStatus(failing, { ...base, workload: rolledOut }, t1);
    expect(byType(unread).ProvidersReady).toEqual(["False", "ProviderUnreachable"]);
    const noLlm = computeStatus(failing, { ...base, workload: rolledOut, providers: "none" }, t1);
    expect(byType(noLlm).ProvidersReady).toBeUndefined();
  });
});

describe("ModelsReady", () => {
  const pulling = {
    sidecarsReady: false as const,
    read: {
      pod: "a-1",
      at: 0,
      status: {
        agent: { name: "a", namespace: "ns" },
        ready: false,
        providers: [
          {
            name: "local",
            type: "ollama",
            where: "http://10.96.0.5:11434",
            model: "qwen3:8b",
            state: "unknown" as const,
            consecutiveFailures: 0,
            modelLifecycle: {
              phase: "failed" as const,
              pull: "IfNotPresent" as const,
              message:
                "cannot pull qwen3:8b into http://10.96.0.5:11434: pull model manifest: file does not exist",
              since: "t",
              failures: 2,
            },
          },
        ],
      },
    },
  };

  it("is set from the same read as ProvidersReady for an agent with ollama providers, after it", () => {
    const failed = computeStatus(
      undefined,
      { ...base, workload: rolledOut, providers: pulling, modelLifecycle: true },
      t0,
    );
    expect(failed.conditions?.find((c) => c.type === "ModelsReady")).toMatchObject({
      status: "False",
      reason: "ModelPullFailed",
      observedGeneration: 3,
      message: expect.stringContaining("model qwen3:8b: cannot pull qwen3:8b"),
    });
    expect(failed.conditions?.map((c) => c.type).slice(-2)).toEqual(["ProvidersReady", "ModelsReady"]);
    const back = computeStatus(
      failed,
      { ...base, workload: rolledOut, providers: { sidecarsReady: true }, modelLifecycle: true },
      t1,
    );
    expect(byType(back).ModelsReady).toEqual(["True", "SidecarsReady"]);
  });

  it("keeps a sidecar pulling a model for long from reading as a failing probe", () => {
    const inPull = {
      ...pulling,
      read: {
        ...pulling.read,
        status: {
          ...pulling.read.status,
          providers: pulling.read.status.providers.map((p) => ({
            ...p,
            modelLifecycle: {
              ...p.modelLifecycle,
              phase: "pulling" as const,
              message: "pulling qwen3:8b: 45 %",
            },
          })),
        },
      },
    };
    const slowSidecar = trimPod({
      metadata: { name: "a-1", namespace: "ns" },
      status: {
        phase: "Running",
        initContainerStatuses: [
          {
            name: "agenttype-sidecar",
            ready: false,
            restartCount: 0,
            state: { running: { startedAt: new Date(t0.getTime() - 10 * 60_000).toISOString() } },
          },
        ],
      },
    } as Parameters<typeof trimPod>[0]);
    const observed = { ...base, workload: rolledOut, pods: [slowSidecar] };
    const probing = computeStatus(undefined, { ...observed, providers: pulling, modelLifecycle: true }, t0);
    expect(byType(probing).Degraded).toEqual(["True", "ProbeFailing"]);
    const whilePulling = computeStatus(
      undefined,
      { ...observed, providers: inPull, modelLifecycle: true },
      t0,
    );
    expect(byType(whilePulling).Degraded).toEqual(["False", "AsExpected"]);
    expect(byType(whilePulling).ModelsReady).toEqual(["False", "ModelsPulling"]);
  });

  it("is absent for an agent without ollama providers or without an LLM", () => {
    const failed = computeStatus(
      undefined,
      { ...base, workload: rolledOut, providers: pulling, modelLifecycle: true },
      t0,
    );
    const bedrockOnly = computeStatus(
      failed,
      { ...base, workload: rolledOut, providers: { sidecarsReady: true }, modelLifecycle: false },
      t1,
    );
    expect(byType(bedrockOnly).ModelsReady).toBeUndefined();
    const noLlm = computeStatus(failed, { ...base, workload: rolledOut, providers: "none" }, t1);
    expect(byType(noLlm).ModelsReady).toBeUndefined();
  });
});

describe("ToolsResolved with an unavailable tool", () => {
  it("says the tool the agent got is unavailable, naming it and the probe's message", () => {
    const tool = {
      apiVersion: "agenttype.dev/v1alpha1",
      kind: "AgentTool",
      metadata: { name: "calc-v1", namespace: "ns", generation: 1 },
      spec: { version: "1.0.0", description: "adds", protocol: "http", endpoint: { url: "http://calc" } },
      status: {
        conditions: [
          {
            type: "Available",
            status: "False",
            reason: "Unreachable",
            message: "http://calc: connect ECONNREFUSED",
            observedGeneration: 1,
            lastTransitionTime: t0.toISOString(),
          },
        ],
      },
    } as unknown as ResolvedTool["agentTool"];
    const status = computeStatus(
      undefined,
      {
        ...base,
        workload: rolledOut,
        resolution: { resolved: [{ name: "calculator", version: "1.0.0", agentTool: tool }], missing: [] },
      },
      t0,
    );
    const condition = status.conditions?.find((c) => c.type === "ToolsResolved");
    expect(condition).toMatchObject({ status: "True", reason: "ToolUnavailable" });
    expect(condition?.message).toBe(
      "calculator 1.0.0 (AgentTool calc-v1) is unavailable: http://calc: connect ECONNREFUSED; no available version matches",
    );
  });
});
