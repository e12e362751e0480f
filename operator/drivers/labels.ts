// The labels a driver puts on everything it creates for an agent replica, so that listing,
// adoption after a restart and orphan clean-up read the host alone, with no local state. Pure.
import { createHash } from "node:crypto";
import type { LabelFilter, Labels } from "./config.ts";

export const LABEL_NAMESPACE = "agenttype.dev/namespace";
export const LABEL_NAME = "agenttype.dev/name";
export const LABEL_UID = "agenttype.dev/uid";
export const LABEL_REPLICA = "agenttype.dev/replica";
/** Which container of the group: wrapper, sidecar or agent. */
export const LABEL_ROLE = "agenttype.dev/role";
/** A hash of what a replica runs (placement/host-plan.ts specHash): a change means a roll. */
export const LABEL_SPEC_HASH = "agenttype.dev/spec-hash";
/** What a replica takes of its host (placement/host-plan.ts sets them; the KVM driver sizes a guest by them). */
export const LABEL_CPU_MILLIS = "agenttype.dev/cpu-millis";
export const LABEL_MEMORY_BYTES = "agenttype.dev/memory-bytes";
/** The size of a replica's persistent volume, on all its objects: a KVM guest boots with its data disk. */
export const LABEL_PERSISTENT_BYTES = "agenttype.dev/persistent-bytes";
/** On a volume that outlives its replica's groups ("true"): removed only with its AgentType, per its retain policy. */
export const LABEL_PERSISTENT = "agenttype.dev/persistent";
export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "agenttype-operator";

/** The AgentType a replica belongs to. */
export interface Owner {
  namespace: string;
  name: string;
  uid: string;
}

const MAX_LABEL_VALUE = 63;

/**
 * A value that fits a label: itself when short enough, else a prefix and a hash of the whole,
 * so two long names never share a label value.
 */
export function labelValue(value: string): string {
  if (value.length <= MAX_LABEL_VALUE) return value;
  const hash = createHash("sha256").update(value).digest("hex").slice(0, 10);
  return `${value.slice(0, MAX_LABEL_VALUE - 11).replace(/[^A-Za-z0-9]+$/, "")}-${hash}`;
}

/** Labels naming every object of one AgentType (the filter for its clean-up). */
export function ownerLabels(owner: Owner): Labels {
  return {
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_NAMESPACE]: labelValue(owner.namespace),
    [LABEL_NAME]: labelValue(owner.name),
    [LABEL_UID]: labelValue(owner.uid),
  };
}

export function replicaLabels(owner: Owner, replica: number): Labels {
  return { ...ownerLabels(owner), [LABEL_REPLICA]: String(replica) };
}

/** Everything the operator manages on a host, whoever owns it. */
export function managedFilter(): LabelFilter {
  return { [LABEL_MANAGED_BY]: MANAGED_BY };
}

/** True when every label of the filter is present with the same value. */
export function matchesLabels(labels: Labels, filter: LabelFilter): boolean {
  return Object.entries(filter).every(([key, value]) => labels[key] === value);
}

/** The owner's uid and the replica an object belongs to, read back from its labels. */
export function replicaOf(labels: Labels): { uid: string; replica: number } | undefined {
  const uid = labels[LABEL_UID];
  const replica = Number(labels[LABEL_REPLICA]);
  if (
    labels[LABEL_MANAGED_BY] !== MANAGED_BY ||
    uid === undefined ||
    !Number.isInteger(replica) ||
    replica < 0
  )
    return undefined;
  return { uid, replica };
}

/**
 * The name of a replica's group and volumes on the host: readable, unique per AgentType and
 * replica (the uid tells a re-created AgentType of the same name apart), within 128 characters.
 */
export function replicaName(owner: Owner, replica: number): string {
  const uid = owner.uid
    .toLowerCase()
    .replace(/[^a-z0-9]/g, "")
    .slice(0, 8);
  return `${replicaPlace(owner, replica)}_${uid}`;
}

/** `<namespace>_<name>_<replica>`, hashed past 110 characters: the same for a re-created AgentType. */
function replicaPlace(owner: Pick<Owner, "namespace" | "name">, replica: number): string {
  const readable = `${owner.namespace}_${owner.name}_${replica}`;
  if (readable.length <= 110) return readable;
  const hash = createHash("sha256").update(readable).digest("hex").slice(0, 12);
  return `${readable.slice(0, 96)}_${hash}`;
}

/**
 * The name of a replica's persistent memory volume: without the uid, so that an AgentType
 * deleted with retainPolicy Retain and created again under its name finds its memory, as a
 * StatefulSet finds its retained claims.
 */
export function persistentVolumeName(owner: Pick<Owner, "namespace" | "name">, replica: number): string {
  return `${replicaPlace(owner, replica)}-memory`;
}
