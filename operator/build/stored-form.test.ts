import { describe, expect, it } from "vitest";
import { storedClaimTemplate, storedEnv } from "./stored-form.ts";

describe("storedEnv", () => {
  it("fills the defaults of atomic selectors and drops empty values, as the API server stores them", () => {
    expect(
      storedEnv([
        { name: "A", value: "1" },
        { name: "EMPTY", value: "" },
        { name: "POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
        { name: "V1", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.uid" } } },
        { name: "CPU", valueFrom: { resourceFieldRef: { resource: "limits.cpu", divisor: "1000m" } } },
        { name: "KEY", valueFrom: { secretKeyRef: { name: "s", key: "k" } } },
      ]),
    ).toEqual([
      { name: "A", value: "1" },
      { name: "EMPTY" },
      { name: "POD", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.name" } } },
      { name: "V1", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.uid" } } },
      { name: "CPU", valueFrom: { resourceFieldRef: { resource: "limits.cpu", divisor: "1" } } },
      { name: "KEY", valueFrom: { secretKeyRef: { name: "s", key: "k" } } },
    ]);
  });
});

describe("storedClaimTemplate", () => {
  it("adds what the API server defaults in a claim template, keeping what was given", () => {
    expect(
      storedClaimTemplate({
        metadata: { name: "memory" },
        spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
      }),
    ).toEqual({
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: "memory" },
      spec: {
        accessModes: ["ReadWriteOnce"],
        resources: { requests: { storage: "1Gi" } },
        volumeMode: "Filesystem",
      },
      status: { phase: "Pending" },
    });
    expect(storedClaimTemplate({ spec: { volumeMode: "Block" } }).spec?.volumeMode).toBe("Block");
  });
});
