// Whether an AgentType's LLM providers answer, as its sidecars see them (docs/adr/0007): a
// sidecar that is not ready may have every provider failing, and only then is its /status
// read: one pod per AgentType, at most once per 30 s per AgentType, under one process-wide
// rate limit. This file holds the pure parts: which pod to ask, the memo, the rate limit, and
// the ProvidersReady verdict. The read itself is in read-sidecar-status.ts.
import type { ProviderHealth, SidecarStatus } from "../../../api/sidecarstatus.ts";
import { SIDECAR_CONTAINER } from "../../build/names.ts";
import type { PodView } from "./pods-status.ts";

/** How long one read of an AgentType's sidecar stands for it. */
export const READ_INTERVAL_MS = 30_000;
/** A read is a look at a pod on the node network: a sidecar that needs longer is not answering. */
export const READ_TIMEOUT_MS = 2_000;

/** A pod whose sidecar runs but is not ready: the one to ask. */
export interface TroubledSidecar {
  pod: string;
  ip: string;
}

/**
 * The first pod (by name, so the same one every time) whose sidecar container runs without
 * being ready and that has an address; undefined when no sidecar reports trouble. A sidecar
 * that is waiting (crash loop, image pull) has no /status to read: the pods' own conditions
 * say why.
 */
export function troubledSidecar(pods: readonly PodView[]): TroubledSidecar | undefined {
  const troubled = pods
    .filter((pod) => pod.metadata.deletionTimestamp === undefined && pod.view.podIP !== undefined)
    .filter((pod) =>
      pod.view.containers.some(
        (c) => c.name === SIDECAR_CONTAINER && c.runningSince !== undefined && !c.ready,
      ),
    )
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const first = troubled[0];
  return first === undefined ? undefined : { pod: first.metadata.name, ip: first.view.podIP as string };
}

/** What one read found: the sidecar's status, or why it could not be read. */
export type SidecarRead =
  | { pod: string; at: number; status: SidecarStatus }
  | { pod: string; at: number; error: string };

/** What the reconcile knows of the providers for this status write. */
export type ProvidersObservation =
  /** No sidecar reports trouble; nothing was read. */
  | { sidecarsReady: true }
  /** A sidecar reports trouble; this is the latest read of it. */
  | { sidecarsReady: false; read: SidecarRead };

interface Verdict {
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
}

/** The condition reason of a failing provider state. */
const REASONS: Partial<Record<ProviderHealth, string>> = {
  unreachable: "ProviderUnreachable",
  timeout: "ProviderTimeout",
  unauthorized: "ProviderUnauthorized",
  "model-missing": "ModelMissing",
  unavailable: "ProviderUnavailable",
};

type ProviderReport = SidecarStatus["providers"][number];

/** "provider local (ollama http://10.96.0.5:11434, model m): unreachable since …: connect ECONNREFUSED" */
export function describeProvider(p: ProviderReport): string {
  const since = p.since === undefined ? "" : ` since ${p.since}`;
  const error = p.lastError === undefined ? "" : `: ${p.lastError.message}`;
  return `provider ${p.name} (${p.type} ${p.where}, model ${p.model}): ${p.state}${since}${error}`;
}

export function providersVerdict(observation: ProvidersObservation): Verdict {
  if (observation.sidecarsReady) {
    return {
      status: "True",
      reason: "SidecarsReady",
      message: "no sidecar reports every LLM provider failing",
    };
  }
  const { read } = observation;
  if ("error" in read) {
    return {
      status: "Unknown",
      reason: "StatusUnreadable",
      message: `pod ${read.pod}: the sidecar is not ready and its /status could not be read: ${read.error}`,
    };
  }
  const failing = read.status.providers.filter((p) => REASONS[p.state] !== undefined);
  const first = failing[0];
  if (read.status.ready || first === undefined) {
    return {
      status: "True",
      reason: "ProvidersAnswering",
      message: `pod ${read.pod}: the sidecar is not ready, but not every LLM provider is failing`,
    };
  }
  return {
    status: "False",
    reason: REASONS[first.state] as string,
    message: `pod ${read.pod}: every LLM provider is failing: ${failing.map(describeProvider).join("; ")}`,
  };
}

/** "provider local (ollama http://10.96.0.5:11434), model qwen3:8b: pulling …" */
function describeModel(p: ProviderReport): string {
  return `provider ${p.name} (${p.type} ${p.where}), model ${p.model}: ${p.modelLifecycle?.message}`;
}

/**
 * ModelsReady, for an AgentType with ollama providers: a sidecar waits for its models before
 * it reports ready, so ready sidecars mean present models; a sidecar that is not ready says
 * in /status which model it is pulling or failed to get, and why.
 */
export function modelsVerdict(observation: ProvidersObservation): Verdict {
  if (observation.sidecarsReady) {
    return { status: "True", reason: "SidecarsReady", message: "no sidecar reports a model missing" };
  }
  const { read } = observation;
  if ("error" in read) {
    return {
      status: "Unknown",
      reason: "StatusUnreadable",
      message: `pod ${read.pod}: the sidecar is not ready and its /status could not be read: ${read.error}`,
    };
  }
  const withModels = read.status.providers.filter((p) => p.modelLifecycle !== undefined);
  const failed = withModels.filter((p) => p.modelLifecycle?.phase === "failed");
  if (failed.length > 0) {
    return {
      status: "False",
      reason: failed.some((p) => p.modelLifecycle?.pull === "Never") ? "ModelNotPresent" : "ModelPullFailed",
      message: `pod ${read.pod}: ${failed.map(describeModel).join("; ")}`,
    };
  }
  const preparing = withModels.filter(
    (p) => p.modelLifecycle?.phase === "checking" || p.modelLifecycle?.phase === "pulling",
  );
  if (preparing.length > 0) {
    return {
      status: "False",
      reason: "ModelsPulling",
      message: `pod ${read.pod}: ${preparing.map(describeModel).join("; ")}`,
    };
  }
  const unreachable = withModels.filter((p) => p.modelLifecycle?.phase === "unreachable");
  if (unreachable.length > 0) {
    return {
      status: "Unknown",
      reason: "ModelServerUnreachable",
      message: `pod ${read.pod}: ${unreachable.map(describeModel).join("; ")}`,
    };
  }
  return {
    status: "True",
    reason: "ModelsPresent",
    message: `pod ${read.pod}: every model is on its server; the sidecar is not ready for another reason`,
  };
}

/**
 * The last read per AgentType, so that one AgentType costs one read per interval whatever
 * the number of its pods and of its reconciles. Entries exist only while a sidecar reports
 * trouble.
 */
export class ReadMemo {
  readonly #reads = new Map<string, SidecarRead>();

  /** The read still standing for `key` at `now`, if any. */
  fresh(key: string, now: number): SidecarRead | undefined {
    const read = this.#reads.get(key);
    return read !== undefined && now - read.at < READ_INTERVAL_MS ? read : undefined;
  }

  /** The last read whatever its age: shown while the rate limit defers a new one. */
  last(key: string): SidecarRead | undefined {
    return this.#reads.get(key);
  }

  remember(key: string, read: SidecarRead): void {
    this.#reads.set(key, read);
  }

  forget(key: string): void {
    this.#reads.delete(key);
  }

  get size(): number {
    return this.#reads.size;
  }
}
