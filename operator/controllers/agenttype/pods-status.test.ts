import { describe, expect, it } from "vitest";
import {
  NOT_READY_AFTER_MS,
  podsActivity,
  podsProblem,
  podViewChanged,
  RECENT_OOM_MS,
  trimPod,
} from "./pods-status.ts";

const now = new Date("2026-01-01T12:00:00Z");
const ago = (ms: number) => new Date(now.getTime() - ms).toISOString();
const wrapperDone = {
  name: "agenttype-wrapper",
  ready: false,
  restartCount: 0,
  state: { terminated: { exitCode: 0, reason: "Completed" } },
};
const sidecarUp = {
  name: "agenttype-sidecar",
  ready: true,
  restartCount: 0,
  state: { running: { startedAt: ago(60_000) } },
};

function pod(name: string, agent: object, extra: { deletionTimestamp?: string; conditions?: object[] } = {}) {
  return trimPod({
    metadata: {
      name,
      namespace: "ns",
      labels: { "agenttype.dev/agent": "a" },
      ...(extra.deletionTimestamp ? { deletionTimestamp: extra.deletionTimestamp } : {}),
    },
    status: {
      phase: "Pending",
      ...(extra.conditions ? { conditions: extra.conditions } : {}),
      initContainerStatuses: [wrapperDone, sidecarUp],
      containerStatuses: [{ name: "agent", ...agent }],
    },
  } as Parameters<typeof trimPod>[0]);
}

const pullFailing = pod("a-1", {
  ready: false,
  restartCount: 0,
  state: {
    waiting: {
      reason: "ImagePullBackOff",
      message: 'Back-off pulling image "registry.invalid/nope:1": ErrImagePull: failed to resolve reference',
    },
  },
});
const crashing = (name: string, reason = "Error", finishedAt = ago(5_000)) =>
  pod(name, {
    ready: false,
    restartCount: 4,
    state: { waiting: { reason: "CrashLoopBackOff", message: "back-off 40s restarting failed container" } },
    lastState: {
      terminated: {
        exitCode: reason === "OOMKilled" ? 137 : 3,
        reason,
        message: "boom: no config\n",
        finishedAt,
      },
    },
  });

describe("trimPod", () => {
  it("keeps only what the status needs and drops init containers that finished", () => {
    expect(pullFailing.view.containers.map((c) => c.name)).toEqual(["agenttype-sidecar", "agent"]);
    expect(pullFailing.view.containers[1]?.waiting?.reason).toBe("ImagePullBackOff");
    expect(Object.keys(pullFailing.metadata).sort()).toEqual(["labels", "name", "namespace"]);
  });

  it("notes the scheduler's reason only when the pod is unschedulable", () => {
    const waiting = pod(
      "a-2",
      { ready: false, restartCount: 0 },
      {
        conditions: [
          {
            type: "PodScheduled",
            status: "False",
            reason: "Unschedulable",
            message: "0/1 nodes are available: 1 Insufficient memory.",
          },
        ],
      },
    );
    expect(waiting.view.unschedulable).toBe("0/1 nodes are available: 1 Insufficient memory.");
  });
});

describe("podsProblem", () => {
  it("names the container and the registry's message for an image that cannot be pulled", () => {
    expect(podsProblem([pullFailing], now)).toEqual({
      reason: "ImagePullFailed",
      message:
        'pod a-1: container agent cannot pull its image (ImagePullBackOff): Back-off pulling image "registry.invalid/nope:1": ErrImagePull: failed to resolve reference',
    });
  });

  it("names the exit code and last termination message of a crash loop", () => {
    expect(podsProblem([crashing("a-1"), crashing("a-2")], now)).toEqual({
      reason: "CrashLoopBackOff",
      message:
        "pod a-1 (and 1 more pods): container agent keeps crashing (4 restarts); last run exited with code 3 (Error): boom: no config",
    });
  });

  it("reports an OOM kill while crash looping or recently, not forever", () => {
    expect(podsProblem([crashing("a-1", "OOMKilled")], now)?.reason).toBe("OOMKilled");
    const runningAgain = (finishedAt: string) =>
      pod("a-1", {
        ready: true,
        restartCount: 1,
        state: { running: { startedAt: finishedAt } },
        lastState: { terminated: { exitCode: 137, reason: "OOMKilled", finishedAt } },
      });
    expect(podsProblem([runningAgain(ago(60_000))], now)?.reason).toBe("OOMKilled");
    expect(podsProblem([runningAgain(ago(RECENT_OOM_MS + 1_000))], now)).toBeUndefined();
  });

  it("reports an unschedulable pod with the scheduler's words", () => {
    const waiting = pod(
      "a-3",
      { ready: false, restartCount: 0 },
      {
        conditions: [
          {
            type: "PodScheduled",
            status: "False",
            reason: "Unschedulable",
            message: "0/1 nodes are available",
          },
        ],
      },
    );
    expect(podsProblem([waiting], now)).toEqual({
      reason: "Unschedulable",
      message: "pod a-3: no node can run the pod: 0/1 nodes are available",
    });
  });

  it("reports a container that runs but never becomes ready, only after a grace period", () => {
    const notReady = (since: number) =>
      pod("a-4", { ready: false, restartCount: 0, state: { running: { startedAt: ago(since) } } });
    expect(podsProblem([notReady(10_000)], now)).toBeUndefined();
    expect(podsProblem([notReady(NOT_READY_AFTER_MS + 1_000)], now)?.reason).toBe("ProbeFailing");
  });

  it("ignores pods being deleted, and names the most severe problem first", () => {
    const leaving = pod(
      "a-5",
      { ready: false, restartCount: 0, state: { waiting: { reason: "ErrImagePull" } } },
      {
        deletionTimestamp: ago(1_000),
      },
    );
    expect(podsProblem([leaving], now)).toBeUndefined();
    expect(podsProblem([crashing("a-1"), pullFailing], now)?.reason).toBe("ImagePullFailed");
  });
});

describe("podsActivity", () => {
  it("counts pods starting (with why they wait) and terminating, never guesses", () => {
    const creating = pod("a-6", {
      ready: false,
      restartCount: 0,
      state: { waiting: { reason: "ContainerCreating" } },
    });
    const leaving = pod("a-7", { ready: true, restartCount: 0 }, { deletionTimestamp: ago(1_000) });
    expect(podsActivity([creating, pullFailing, leaving])).toEqual({
      starting: 2,
      terminating: 1,
      waiting: ["ContainerCreating", "ImagePullBackOff"],
    });
    expect(podsActivity([])).toEqual({ starting: 0, terminating: 0, waiting: [] });
  });
});

describe("podViewChanged", () => {
  it("ignores a new resourceVersion with the same view", () => {
    const again = { ...pullFailing, metadata: { ...pullFailing.metadata, resourceVersion: "99" } };
    expect(podViewChanged(pullFailing, again)).toBe(false);
    expect(podViewChanged(pullFailing, crashing("a-1"))).toBe(true);
  });
});
