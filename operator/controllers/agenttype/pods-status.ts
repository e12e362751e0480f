// What an AgentType's pods say about it: the few fields of a pod's status that tell why an
// agent does not run (an image that cannot be pulled, a crash loop, an OOM kill, no node to
// run on, a probe that fails), kept per pod by the pod informer, and the one problem worth
// reporting on the AgentType. Pure.
import type { KubeObject } from "../../kube/client.ts";

export interface ContainerView {
  name: string;
  ready: boolean;
  restartCount: number;
  /** Since when the container runs, when it does. */
  runningSince?: string;
  waiting?: { reason: string; message?: string };
  lastTerminated?: { reason?: string; exitCode: number; message?: string; finishedAt?: string };
}

/** The trimmed pod the informer keeps: 10,000 agents' pods must fit in the operator. */
export interface PodView extends KubeObject {
  view: {
    phase: string;
    /** Where the pod's sidecar serves /status, once the pod has an address. */
    podIP?: string;
    /** The scheduler's reason for not placing the pod. */
    unschedulable?: string;
    containers: ContainerView[];
  };
}

interface RawContainerStatus {
  name: string;
  ready?: boolean;
  restartCount?: number;
  state?: {
    running?: { startedAt?: string };
    waiting?: { reason?: string; message?: string };
    terminated?: { exitCode?: number };
  };
  lastState?: {
    terminated?: { reason?: string; exitCode?: number; message?: string; finishedAt?: string };
  };
}

interface RawPod extends KubeObject {
  status?: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    initContainerStatuses?: RawContainerStatus[];
    containerStatuses?: RawContainerStatus[];
  };
}

// A message a user should read whole, but not a whole stack trace on every status write.
const MAX_MESSAGE = 300;
const clip = (text: string) => (text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text);

function viewOf(status: RawContainerStatus): ContainerView {
  const view: ContainerView = {
    name: status.name,
    ready: status.ready ?? false,
    restartCount: status.restartCount ?? 0,
  };
  const running = status.state?.running;
  if (running !== undefined && running.startedAt !== undefined) view.runningSince = running.startedAt;
  const waiting = status.state?.waiting;
  if (waiting?.reason !== undefined) {
    view.waiting = {
      reason: waiting.reason,
      ...(waiting.message === undefined ? {} : { message: clip(waiting.message) }),
    };
  }
  const last = status.lastState?.terminated;
  if (last !== undefined) {
    view.lastTerminated = {
      exitCode: last.exitCode ?? 0,
      ...(last.reason === undefined ? {} : { reason: last.reason }),
      ...(last.message === undefined ? {} : { message: clip(last.message.trim()) }),
      ...(last.finishedAt === undefined ? {} : { finishedAt: last.finishedAt }),
    };
  }
  return view;
}

/** The pod informer's transform: identity, labels and the status fields above. */
export function trimPod(pod: RawPod): PodView {
  const { name, namespace, uid, resourceVersion, labels, deletionTimestamp, creationTimestamp } =
    pod.metadata;
  const scheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
  const unschedulable =
    scheduled?.status === "False" && scheduled.reason === "Unschedulable" ? scheduled.message : undefined;
  return {
    metadata: {
      name,
      ...(namespace === undefined ? {} : { namespace }),
      ...(uid === undefined ? {} : { uid }),
      ...(resourceVersion === undefined ? {} : { resourceVersion }),
      ...(labels === undefined ? {} : { labels }),
      ...(deletionTimestamp === undefined ? {} : { deletionTimestamp }),
      ...(creationTimestamp === undefined ? {} : { creationTimestamp }),
    },
    view: {
      phase: pod.status?.phase ?? "Pending",
      ...(pod.status?.podIP === undefined ? {} : { podIP: pod.status.podIP }),
      ...(unschedulable === undefined ? {} : { unschedulable: clip(unschedulable) }),
      // An init container that finished its job is no longer part of the story.
      containers: [
        ...(pod.status?.initContainerStatuses ?? []).filter((c) => c.state?.terminated?.exitCode !== 0),
        ...(pod.status?.containerStatuses ?? []),
      ].map(viewOf),
    },
  };
}

/** Whether two views differ in anything the status is computed from (resourceVersion aside). */
export function podViewChanged(a: PodView | undefined, b: PodView | undefined): boolean {
  return (
    JSON.stringify(a?.view) !== JSON.stringify(b?.view) ||
    a?.metadata.deletionTimestamp !== b?.metadata.deletionTimestamp
  );
}

export interface PodProblem {
  reason: string;
  message: string;
}

const PULL_FAILURES = new Set(["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"]);
const CONFIG_FAILURES = new Set(["CreateContainerConfigError", "CreateContainerError", "RunContainerError"]);
/** An OOM kill this recent is reported even if the container runs again since. */
export const RECENT_OOM_MS = 10 * 60_000;
/** A container running this long without becoming ready has a readiness probe that fails. */
export const NOT_READY_AFTER_MS = 2 * 60_000;

function exited(last: NonNullable<ContainerView["lastTerminated"]>): string {
  const how = `exited with code ${last.exitCode}${last.reason ? ` (${last.reason})` : ""}`;
  return last.message ? `${how}: ${last.message}` : how;
}

/** The problem of one container, or undefined when it runs or starts as it should. */
function containerProblem(container: ContainerView, now: Date): PodProblem | undefined {
  const { name, waiting, lastTerminated: last } = container;
  if (waiting !== undefined && PULL_FAILURES.has(waiting.reason)) {
    return {
      reason: "ImagePullFailed",
      message: `container ${name} cannot pull its image (${waiting.reason})${waiting.message ? `: ${waiting.message}` : ""}`,
    };
  }
  if (waiting !== undefined && CONFIG_FAILURES.has(waiting.reason)) {
    return {
      reason: "ContainerCannotStart",
      message: `container ${name} cannot start (${waiting.reason})${waiting.message ? `: ${waiting.message}` : ""}`,
    };
  }
  const recent =
    last?.finishedAt !== undefined && now.getTime() - Date.parse(last.finishedAt) < RECENT_OOM_MS;
  if (last?.reason === "OOMKilled" && (waiting?.reason === "CrashLoopBackOff" || recent)) {
    return {
      reason: "OOMKilled",
      message: `container ${name} was killed for exceeding its memory limit (${container.restartCount} restarts); raise spec.resources.limits.memory`,
    };
  }
  if (waiting?.reason === "CrashLoopBackOff") {
    return {
      reason: "CrashLoopBackOff",
      message: `container ${name} keeps crashing (${container.restartCount} restarts); last run ${last ? exited(last) : "ended"}`,
    };
  }
  if (
    !container.ready &&
    container.runningSince !== undefined &&
    now.getTime() - Date.parse(container.runningSince) > NOT_READY_AFTER_MS
  ) {
    return {
      reason: "ProbeFailing",
      message: `container ${name} has been running since ${container.runningSince} but is not ready: its readiness probe fails`,
    };
  }
  return undefined;
}

// Which problem to name when pods have several: the one a user must act on first.
const SEVERITY = [
  "ImagePullFailed",
  "ContainerCannotStart",
  "OOMKilled",
  "CrashLoopBackOff",
  "Unschedulable",
  "ProbeFailing",
];

/**
 * The most severe problem among the pods that are not being deleted, naming one pod and how
 * many share the problem; undefined when every pod runs or starts as it should.
 */
export function podsProblem(pods: readonly PodView[], now: Date): PodProblem | undefined {
  const found: { pod: string; problem: PodProblem }[] = [];
  for (const pod of pods) {
    if (pod.metadata.deletionTimestamp !== undefined) continue;
    if (pod.view.unschedulable !== undefined) {
      found.push({
        pod: pod.metadata.name,
        problem: { reason: "Unschedulable", message: `no node can run the pod: ${pod.view.unschedulable}` },
      });
      continue;
    }
    for (const container of pod.view.containers) {
      const problem = containerProblem(container, now);
      if (problem !== undefined) {
        found.push({ pod: pod.metadata.name, problem });
        break;
      }
    }
  }
  if (found.length === 0) return undefined;
  found.sort((a, b) => SEVERITY.indexOf(a.problem.reason) - SEVERITY.indexOf(b.problem.reason));
  const [first] = found as [(typeof found)[number]];
  const sharing = found.filter((f) => f.problem.reason === first.problem.reason).length;
  const others = sharing > 1 ? ` (and ${sharing - 1} more pods)` : "";
  return { reason: first.problem.reason, message: `pod ${first.pod}${others}: ${first.problem.message}` };
}

/** What the pods are doing, for Progressing: starting, terminating, and why they wait. */
export function podsActivity(pods: readonly PodView[]): {
  starting: number;
  terminating: number;
  waiting: string[];
} {
  let starting = 0;
  let terminating = 0;
  const waiting = new Set<string>();
  for (const pod of pods) {
    if (pod.metadata.deletionTimestamp !== undefined) {
      terminating++;
      continue;
    }
    const notReady = pod.view.containers.filter((c) => !c.ready);
    if (pod.view.phase === "Pending" || notReady.length > 0 || pod.view.containers.length === 0) {
      starting++;
      for (const c of notReady) if (c.waiting !== undefined) waiting.add(c.waiting.reason);
    }
  }
  return { starting, terminating, waiting: [...waiting].sort() };
}
