import { describe, expect, it } from "vitest";
import {
  appliedFieldSet,
  canonicalJson,
  desiredDigest,
  type FieldSet,
  firstDifference,
  type LiveObject,
  liveDigest,
  type ManagedFieldsEntry,
  project,
} from "./owned-fields.ts";

const MANAGER = "agenttype-operator";

// What we apply: a Deployment in the shape our builders make (trimmed to what the walker meets).
const desired = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: {
    name: "a",
    namespace: "ns",
    labels: { app: "a" },
    ownerReferences: [
      { apiVersion: "agenttype.dev/v1alpha1", kind: "AgentType", name: "a", uid: "u1", controller: true },
    ],
  },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: "a" } },
    template: {
      metadata: { labels: { app: "a" } },
      spec: {
        containers: [
          {
            name: "agent",
            image: "img:1",
            args: ["--x"],
            env: [
              { name: "A", value: "1" },
              { name: "B", value: "2" },
            ],
            ports: [{ name: "metrics", containerPort: 9090, protocol: "TCP" }],
          },
        ],
        volumes: [{ name: "tmp", emptyDir: {} }],
      },
    },
  },
};

// The fieldsV1 trie the API server records for that apply, in its own format.
const ourFields: FieldSet = {
  "f:metadata": {
    "f:labels": { ".": {}, "f:app": {} },
    "f:ownerReferences": {
      ".": {},
      'k:{"uid":"u1"}': {},
    },
  },
  "f:spec": {
    "f:replicas": {},
    "f:selector": {},
    "f:template": {
      "f:metadata": { "f:labels": { ".": {}, "f:app": {} } },
      "f:spec": {
        "f:containers": {
          'k:{"name":"agent"}': {
            ".": {},
            "f:args": {},
            "f:env": {
              'k:{"name":"A"}': { ".": {}, "f:name": {}, "f:value": {} },
              'k:{"name":"B"}': { ".": {}, "f:name": {}, "f:value": {} },
            },
            "f:image": {},
            "f:name": {},
            "f:ports": {
              'k:{"containerPort":9090,"protocol":"TCP"}': {
                ".": {},
                "f:containerPort": {},
                "f:name": {},
                "f:protocol": {},
              },
            },
          },
        },
        "f:volumes": { 'k:{"name":"tmp"}': { ".": {}, "f:emptyDir": {}, "f:name": {} } },
      },
    },
  },
};

/** The object as the API server returns it: keys sorted, defaults and other managers' fields added. */
// biome-ignore lint/suspicious/noExplicitAny: a free-form object as the API server sends it
type Stored = Record<string, any>;

function live(overrides: { fields?: FieldSet; others?: FieldSet; edit?: (o: Stored) => void } = {}) {
  const stored: Stored = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      annotations: { "deployment.kubernetes.io/revision": "1" },
      generation: 1,
      labels: { app: "a", team: "x" },
      managedFields: [
        {
          apiVersion: "apps/v1",
          fieldsType: "FieldsV1",
          fieldsV1: overrides.fields ?? ourFields,
          manager: MANAGER,
          operation: "Apply",
        },
        {
          apiVersion: "apps/v1",
          fieldsType: "FieldsV1",
          fieldsV1: { "f:status": { "f:replicas": {} } },
          manager: "kube-controller-manager",
          operation: "Update",
          subresource: "status",
        },
        ...(overrides.others === undefined
          ? []
          : [
              {
                apiVersion: "apps/v1",
                fieldsType: "FieldsV1",
                fieldsV1: overrides.others,
                manager: "kubectl",
                operation: "Update",
              },
            ]),
      ],
      name: "a",
      namespace: "ns",
      ownerReferences: [
        { apiVersion: "agenttype.dev/v1alpha1", controller: true, kind: "AgentType", name: "a", uid: "u1" },
      ],
      resourceVersion: "42",
      uid: "d1",
    },
    spec: {
      progressDeadlineSeconds: 600,
      replicas: 1,
      selector: { matchLabels: { app: "a" } },
      strategy: { type: "RollingUpdate" },
      template: {
        metadata: { labels: { app: "a" } },
        spec: {
          containers: [
            {
              args: ["--x"],
              env: [
                { name: "A", value: "1" },
                { name: "EXTRA", value: "theirs" },
                { name: "B", value: "2" },
              ],
              image: "img:1",
              imagePullPolicy: "IfNotPresent",
              name: "agent",
              ports: [{ containerPort: 9090, name: "metrics", protocol: "TCP" }],
              terminationMessagePath: "/dev/termination-log",
            },
            { name: "injected", image: "mesh:1" },
          ],
          dnsPolicy: "ClusterFirst",
          volumes: [{ emptyDir: {}, name: "tmp" }],
        },
      },
    },
    status: { replicas: 1 },
  };
  overrides.edit?.(stored);
  return stored as LiveObject;
}

describe("appliedFieldSet", () => {
  it("picks our Apply entry, not our status entry nor other managers'", () => {
    const entries: ManagedFieldsEntry[] = [
      {
        manager: MANAGER,
        operation: "Apply",
        subresource: "status",
        fieldsType: "FieldsV1",
        fieldsV1: { "f:status": {} },
      },
      { manager: "other", operation: "Apply", fieldsType: "FieldsV1", fieldsV1: { "f:spec": {} } },
      { manager: MANAGER, operation: "Update", fieldsType: "FieldsV1", fieldsV1: { "f:data": {} } },
      { manager: MANAGER, operation: "Apply", fieldsType: "FieldsV1", fieldsV1: { "f:metadata": {} } },
    ];
    expect(appliedFieldSet(entries, MANAGER)).toEqual({ "f:metadata": {} });
    expect(appliedFieldSet(entries.slice(0, 3), MANAGER)).toBeUndefined();
    expect(appliedFieldSet(undefined, MANAGER)).toBeUndefined();
  });
});

describe("project", () => {
  it("keeps fields by name, keyed items in the object's order, and whole values where the trie ends", () => {
    const value = {
      a: 1,
      b: { c: 2, d: 3 },
      list: [
        { name: "y", v: 1, w: 0 },
        { name: "x", v: 2 },
        { name: "z", v: 3 },
      ],
      set: ["p", "q", "r"],
      byIndex: ["first", "second"],
      atomic: { k: [1, 2] },
    };
    const fields: FieldSet = {
      "f:b": { "f:c": {} },
      "f:list": { 'k:{"name":"x"}': { ".": {}, "f:v": {} }, 'k:{"name":"y"}': { "f:name": {}, "f:v": {} } },
      "f:set": { 'v:"r"': {}, 'v:"p"': {} },
      "f:byIndex": { "i:1": {} },
      "f:atomic": {},
      "f:missing": {},
    };
    expect(project(value, fields)).toEqual({
      b: { c: 2 },
      list: [{ name: "y", v: 1 }, { v: 2 }],
      set: ["p", "r"],
      byIndex: ["second"],
      atomic: { k: [1, 2] },
    });
  });

  it("matches keys of several fields, numbers included", () => {
    const ports = [
      { containerPort: 80, protocol: "UDP", name: "u" },
      { containerPort: 80, protocol: "TCP", name: "t" },
    ];
    expect(project(ports, { 'k:{"containerPort":80,"protocol":"TCP"}': { "f:name": {} } })).toEqual([
      { name: "t" },
    ]);
  });
});

describe("canonicalJson", () => {
  it("does not depend on key order and reads null fields as absent", () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 1, x: 2 }], c: null } })).toBe(
      canonicalJson({ a: { d: [1, { x: 2, y: 1 }] }, b: 1 }),
    );
    expect(canonicalJson([1, 2])).not.toBe(canonicalJson([2, 1]));
  });
});

describe("liveDigest against desiredDigest", () => {
  it("match for an object as we applied it, whatever others added and however the server ordered it", () => {
    expect(liveDigest(live(), MANAGER)).toBe(desiredDigest(desired));
  });

  it("differ when we want something else", () => {
    const changed: Stored = structuredClone(desired);
    changed.spec.template.spec.containers[0].image = "img:2";
    expect(liveDigest(live(), MANAGER)).not.toBe(desiredDigest(changed as typeof desired));
    const more: Stored = structuredClone(desired);
    more.metadata.labels.extra = "1";
    expect(liveDigest(live(), MANAGER)).not.toBe(desiredDigest(more as typeof desired));
  });

  it("differ when someone else changed a field of ours (an Update moves its ownership to them)", () => {
    const fields: Stored = structuredClone(ourFields);
    delete fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"agent"}']["f:image"];
    const edited = live({
      fields,
      others: {
        "f:spec": {
          "f:template": { "f:spec": { "f:containers": { 'k:{"name":"agent"}': { "f:image": {} } } } },
        },
      },
      edit: (o) => {
        o.spec.template.spec.containers[0].image = "evil:1";
      },
    });
    expect(liveDigest(edited, MANAGER)).not.toBe(desiredDigest(desired));
  });

  it("differ when a field of ours was removed, or holds another value", () => {
    const fields: Stored = structuredClone(ourFields);
    delete fields["f:spec"]["f:replicas"];
    expect(liveDigest(live({ fields }), MANAGER)).not.toBe(desiredDigest(desired));
    const scaled = live({ edit: (o) => (o.spec.replicas = 3) });
    expect(liveDigest(scaled, MANAGER)).not.toBe(desiredDigest(desired));
  });

  it("is undefined when our manager never applied the object", () => {
    const object = live();
    object.metadata.managedFields = [];
    expect(liveDigest(object, MANAGER)).toBeUndefined();
  });
});

describe("firstDifference", () => {
  it("names the path and both values", () => {
    expect(firstDifference({ a: { b: [1, { c: "0.5" }] } }, { a: { b: [1, { c: "500m" }] } })).toBe(
      '.a.b[1].c: "0.5" applied, "500m" stored',
    );
    expect(firstDifference({ a: 1 }, { a: 1 })).toBeUndefined();
  });
});
