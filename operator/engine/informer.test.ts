import { describe, expect, it } from "vitest";
import type { KubeObject } from "../kube/client.ts";
import { LAST_APPLIED_ANNOTATION, objectKey, relistChanges, trimForCache, upsertChange } from "./informer.ts";

/** An object in `namespace`; cluster-scoped when it is null. */
const obj = (name: string, resourceVersion: string, namespace: string | null = "ns"): KubeObject => ({
  metadata: { name, resourceVersion, ...(namespace === null ? {} : { namespace }) },
});
const byKey = (...objects: KubeObject[]) => new Map(objects.map((o) => [objectKey(o), o]));
/** A change as "event key@resourceVersion", for compact expectations. */
const brief = (change: ReturnType<typeof relistChanges>[number]) =>
  `${change.event} ${objectKey(change.object)}@${change.object.metadata.resourceVersion}`;

describe("objectKey", () => {
  it("is namespace/name, or the name of a cluster-scoped object", () => {
    expect(objectKey(obj("a", "1"))).toBe("ns/a");
    expect(objectKey(obj("host", "1", null))).toBe("host");
  });
});

describe("upsertChange", () => {
  it("adds what is not cached", () => {
    expect(upsertChange(undefined, obj("a", "1"))).toEqual([{ event: "add", object: obj("a", "1") }]);
  });

  it("updates on a new resourceVersion, naming the previous object", () => {
    const [change] = upsertChange(obj("a", "1"), obj("a", "2"));
    expect(change).toEqual({ event: "update", object: obj("a", "2"), previous: obj("a", "1") });
  });

  it("changes nothing for the version already cached", () => {
    expect(upsertChange(obj("a", "1"), obj("a", "1"))).toEqual([]);
  });
});

describe("relistChanges", () => {
  it("reports what the watch missed: deletions first, then additions and updates in list order", () => {
    const cached = byKey(obj("kept", "1"), obj("gone", "2"), obj("changed", "3"), obj("also-gone", "4"));
    const listed = byKey(obj("new", "9"), obj("changed", "8"), obj("kept", "1"));
    expect(relistChanges(cached, listed).map(brief)).toEqual([
      "delete ns/gone@2",
      "delete ns/also-gone@4",
      "add ns/new@9",
      "update ns/changed@8",
    ]);
  });

  it("reports a deletion with the cached object and its key", () => {
    const [change] = relistChanges(byKey(obj("gone", "2")), new Map());
    expect(change).toEqual({ event: "delete", key: "ns/gone", object: obj("gone", "2") });
  });

  it("changes nothing when the list equals the cache", () => {
    const objects = [obj("a", "1"), obj("b", "2")];
    expect(relistChanges(byKey(...objects), byKey(...objects))).toEqual([]);
  });

  it("fills an empty cache with additions", () => {
    expect(relistChanges(new Map(), byKey(obj("a", "1"), obj("b", "2"))).map(brief)).toEqual([
      "add ns/a@1",
      "add ns/b@2",
    ]);
  });

  it("tells objects of one name in two namespaces apart", () => {
    const cached = byKey(obj("a", "1", "x"));
    const listed = byKey(obj("a", "1", "x"), obj("a", "5", "y"));
    expect(relistChanges(cached, listed).map(brief)).toEqual(["add y/a@5"]);
  });
});

describe("trimForCache", () => {
  it("drops metadata.managedFields and keeps everything else", () => {
    const object = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "a", namespace: "ns", resourceVersion: "1", managedFields: [{ manager: "x" }] },
      data: { k: "v" },
    };
    expect(trimForCache(object)).toEqual({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "a", namespace: "ns", resourceVersion: "1" },
      data: { k: "v" },
    });
    expect(object.metadata.managedFields).toHaveLength(1);
  });

  it("drops kubectl's last-applied copy of the object, and keeps the other annotations", () => {
    const applied = (annotations: Record<string, string>) => ({
      metadata: { name: "a", namespace: "ns", annotations },
      spec: { image: "x" },
    });
    const copy = JSON.stringify(applied({}));
    const object = applied({ [LAST_APPLIED_ANNOTATION]: copy, "agenttype.dev/abandon": "true" });
    expect(trimForCache(object)).toEqual(applied({ "agenttype.dev/abandon": "true" }));
    expect(trimForCache(applied({ [LAST_APPLIED_ANNOTATION]: copy })).metadata).toEqual({
      name: "a",
      namespace: "ns",
    });
    // The informer's input (the decoded watch event) is left as it was.
    expect(object.metadata.annotations[LAST_APPLIED_ANNOTATION]).toBe(copy);
  });
});
