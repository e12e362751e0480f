// What our field manager set on an owned object, reduced to a digest that the object we
// would apply now can be compared with, so that an unchanged object is never written again,
// not even after a restart. The API server records in metadata.managedFields which fields
// each manager owns; the digest covers exactly the fields our server-side applies own, with
// their live values. Pure.
import { createHash } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import type { Logger } from "pino";
import { FIELD_MANAGER } from "../../build/names.ts";
import type { KubeObject, ObjectMeta } from "../../kube/client.ts";

/**
 * A managedFields `fieldsV1` trie. Each key is one path element: `f:name` a field, `k:{...}`
 * the item of a keyed list with those key values, `v:<json>` an item of a set, `i:<n>` an
 * item by index, and `.` the node itself. A node without children is owned whole.
 */
export interface FieldSet {
  [element: string]: FieldSet;
}

export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
  fieldsType?: string;
  fieldsV1?: FieldSet;
}

/** The fields `manager` set with server-side apply on the object itself (not a subresource). */
export function appliedFieldSet(
  managedFields: readonly ManagedFieldsEntry[] | undefined,
  manager: string,
): FieldSet | undefined {
  return managedFields?.find(
    (entry) =>
      entry.manager === manager &&
      entry.operation === "Apply" &&
      !entry.subresource &&
      entry.fieldsType === "FieldsV1",
  )?.fieldsV1;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Parses a list item element once; `undefined` for elements that select no list item. */
function itemMatcher(element: string): ((item: unknown, index: number) => boolean) | undefined {
  const kind = element.slice(0, 2);
  const rest = element.slice(2);
  if (kind === "k:") {
    const key = JSON.parse(rest) as Record<string, Json>;
    const names = Object.keys(key);
    return (item) => isObject(item) && names.every((name) => isDeepStrictEqual(item[name], key[name]));
  }
  if (kind === "v:") {
    const value = JSON.parse(rest) as Json;
    return (item) => isDeepStrictEqual(item, value);
  }
  if (kind === "i:") {
    const wanted = Number(rest);
    return (_item, index) => index === wanted;
  }
  return undefined;
}

/**
 * The part of `value` that `fields` covers: fields of maps by name, items of lists by key,
 * value or index (in the object's own order), and whole values where the trie ends (atomic
 * values, scalars). What others set and we do not own is left out.
 */
export function project(value: unknown, fields: FieldSet): unknown {
  const elements = Object.keys(fields).filter((element) => element !== ".");
  if (elements.length === 0 || value === null || value === undefined) return value;
  if (Array.isArray(value)) {
    const matchers = elements.flatMap((element) => {
      const matches = itemMatcher(element);
      const child = fields[element];
      return matches === undefined || child === undefined ? [] : [{ matches, child }];
    });
    return value.flatMap((item, index) => {
      const owned = matchers.find((m) => m.matches(item, index));
      return owned === undefined ? [] : [project(item, owned.child)];
    });
  }
  if (isObject(value)) {
    const result: Record<string, unknown> = {};
    for (const element of elements) {
      if (!element.startsWith("f:")) continue;
      const name = element.slice(2);
      const child = fields[element];
      if (child !== undefined && Object.hasOwn(value, name)) result[name] = project(value[name], child);
    }
    return result;
  }
  return value;
}

/**
 * JSON with the keys of every map sorted, and null fields left out as the API server reads
 * them (absent), so that equal objects serialize equally whatever order their keys came in.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item ?? null)).join(",")}]`;
  if (isObject(value)) {
    const fields = Object.keys(value)
      .filter((key) => value[key] !== undefined && value[key] !== null)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`);
    return `{${fields.join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

const hash = (value: unknown) => createHash("sha256").update(canonicalJson(value)).digest("base64url");

/** A live object as the API server sends it, managedFields included. */
export type LiveObject = KubeObject & {
  metadata: ObjectMeta & { managedFields?: readonly ManagedFieldsEntry[] };
};

/** What of a live object `manager` owns through server-side apply, with live values; undefined when nothing. */
export function ownedPart(object: LiveObject, manager: string): unknown {
  const fields = appliedFieldSet(object.metadata.managedFields, manager);
  return fields === undefined ? undefined : project(object, fields);
}

/** Digest of the fields `manager` owns on a live object; undefined when it owns none. */
export function liveDigest(object: LiveObject, manager: string): string | undefined {
  const owned = ownedPart(object, manager);
  return owned === undefined ? undefined : hash(owned);
}

/**
 * An object as it would be applied, without what identifies it (apiVersion, kind, name,
 * namespace): managedFields never lists those, so they are not part of what we own.
 */
export function applyContent(desired: {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string };
}): unknown {
  const { apiVersion: _apiVersion, kind: _kind, metadata, ...rest } = desired;
  const { name: _name, namespace: _namespace, ...meta } = metadata;
  return { ...rest, metadata: meta };
}

/**
 * Digest of an object we would apply. Equal to liveDigest of the live object exactly when an
 * apply would set nothing new: every field we own still has the value we want, nobody took
 * one of them over (an Update that changes our field moves its ownership away), and we
 * want no field we do not own yet.
 */
export function desiredDigest(desired: {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string };
}): string {
  return hash(applyContent(desired));
}

/** The first path where two values differ, for a log line that says what the server changed. */
export function firstDifference(a: unknown, b: unknown, path = ""): string | undefined {
  if (canonicalJson(a) === canonicalJson(b)) return undefined;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${path || "."} (${a.length} items, ${b.length} stored)`;
    for (let i = 0; i < a.length; i++) {
      const inner = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (inner !== undefined) return inner;
    }
  }
  if (isObject(a) && isObject(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const inner = firstDifference(a[key], b[key], `${path}.${key}`);
      if (inner !== undefined) return inner;
    }
  }
  return `${path || "."}: ${canonicalJson(a)} applied, ${canonicalJson(b)} stored`;
}

/**
 * The log line for an object the API server stores otherwise than we built it (normalized
 * values): re-applied only after a restart, but worth fixing in the builders, so it names
 * the first field that differs. `built` is applyContent of what we applied.
 */
export function logStoredOtherwise(log: Logger, object: string, built: unknown, live: LiveObject): void {
  const difference = firstDifference(built, ownedPart(live, FIELD_MANAGER));
  log.info({ object, difference }, "the API server stores this object differently than it was built");
}

/** What the owned-object informers keep of each object: what the reconciler reads, and the digest. */
export interface CachedOwned extends KubeObject {
  /** Of a Deployment or StatefulSet; absent on the other kinds. */
  status?: {
    observedGeneration?: number;
    replicas?: number;
    readyReplicas?: number;
    updatedReplicas?: number;
  };
  /** liveDigest for our field manager; absent when it owns no field of the object. */
  appliedDigest?: string;
}
