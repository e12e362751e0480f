import { describe, expect, it } from "vitest";
import * as z from "zod";
import { containerConfig, groupConfig, InvalidConfigError, parseConfig, volumeConfig } from "./config.ts";
import {
  LABEL_REPLICA,
  labelValue,
  managedFilter,
  matchesLabels,
  ownerLabels,
  replicaLabels,
  replicaName,
  replicaOf,
} from "./labels.ts";
import { DriverRegistry } from "./registry.ts";
import { shellCommand, shellQuote } from "./transport.ts";

describe("config schemas", () => {
  it("fill defaults", () => {
    const c = parseConfig(containerConfig, "container", { name: "agent", image: "localhost/x:1" });
    expect(c).toMatchObject({ env: [], mounts: [], labels: {}, attempt: 0 });
    expect(c.security).toMatchObject({ noNewPrivileges: true, seccomp: "runtime-default" });
    expect(parseConfig(volumeConfig, "volume", { name: "v" })).toMatchObject({
      mode: 0o700,
      uid: 0,
      files: [],
    });
  });

  it("name every bad field", () => {
    const err = (() => {
      try {
        parseConfig(containerConfig, "container", {
          name: "Agent",
          image: "",
          mounts: [{ volume: "v", containerPath: "relative" }],
          env: [{ name: "A=B", value: "x" }],
          extra: 1,
        });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(InvalidConfigError);
    expect(err?.message).toContain("invalid container:");
    expect(err?.message).toContain("name: must be lower-case");
    expect(err?.message).toContain("image:");
    expect(err?.message).toContain("mounts[0].containerPath: must be an absolute path");
    expect(err?.message).toContain("env[0].name: must not contain '='");
    expect(err?.message).toContain("extra: unknown field");
  });

  it("refuse paths that climb out of a volume and labels Kubernetes would refuse", () => {
    expect(() =>
      parseConfig(volumeConfig, "volume", { name: "v", files: [{ path: "../etc/shadow", content: "" }] }),
    ).toThrow(/files\[0\]\.path: must not contain '\.\.'/);
    expect(() => parseConfig(groupConfig, "group", { name: "g", labels: { "a b": "c" } })).toThrow(/labels/);
    expect(() => parseConfig(groupConfig, "group", { name: "g", labels: { a: "x".repeat(64) } })).toThrow(
      /labels/,
    );
  });
});

describe("labels", () => {
  const owner = { namespace: "team-a", name: "researcher", uid: "0b9e1c1e-7f6a-4d7e-9a43-2f0c5f3b1a77" };

  it("name the owner and the replica, and read back from the labels", () => {
    const l = replicaLabels(owner, 2);
    expect(l).toEqual({
      "app.kubernetes.io/managed-by": "agenttype-operator",
      "agenttype.dev/namespace": "team-a",
      "agenttype.dev/name": "researcher",
      "agenttype.dev/uid": owner.uid,
      "agenttype.dev/replica": "2",
    });
    expect(replicaOf(l)).toEqual({ uid: owner.uid, replica: 2 });
    expect(replicaOf({ ...l, [LABEL_REPLICA]: "x" })).toBeUndefined();
    expect(replicaOf(ownerLabels(owner))).toBeUndefined();
    expect(matchesLabels(l, ownerLabels(owner))).toBe(true);
    expect(matchesLabels(l, managedFilter())).toBe(true);
    expect(matchesLabels(ownerLabels(owner), l)).toBe(false);
    expect(matchesLabels(l, {})).toBe(true);
  });

  it("keep long values within 63 characters and distinct", () => {
    const a = labelValue(`${"a".repeat(70)}-one`);
    const b = labelValue(`${"a".repeat(70)}-two`);
    expect(a.length).toBeLessThanOrEqual(63);
    expect(a).not.toBe(b);
    expect(labelValue("short")).toBe("short");
    expect(() =>
      parseConfig(groupConfig, "group", {
        name: "g",
        labels: ownerLabels({ ...owner, name: "n".repeat(200) }),
      }),
    ).not.toThrow();
  });

  it("give each replica a host name that fits the schema and tells re-created owners apart", () => {
    const name = replicaName(owner, 0);
    expect(name).toBe("team-a_researcher_0_0b9e1c1e");
    expect(replicaName({ ...owner, uid: "ffffffff-0000" }, 0)).not.toBe(name);
    const long = replicaName({ ...owner, name: "n".repeat(253) }, 12);
    expect(long.length).toBeLessThanOrEqual(128);
    expect(() => parseConfig(groupConfig, "group", { name: long })).not.toThrow();
    expect(() => parseConfig(groupConfig, "group", { name })).not.toThrow();
  });
});

describe("shell quoting", () => {
  it("leaves plain words alone and quotes the rest so the shell reads them back unchanged", () => {
    expect(shellQuote("/var/lib/agenttype")).toBe("/var/lib/agenttype");
    expect(shellQuote("")).toBe("''");
    // zsh would expand =tmux to tmux's path.
    expect(shellQuote("=agenttype_ns_a_0")).toBe("'=agenttype_ns_a_0'");
    expect(shellQuote("a=b")).toBe("a=b");
    expect(shellQuote("it's $HOME")).toBe(`'it'\\''s $HOME'`);
    expect(shellCommand(["rm", "-rf", "a b"])).toBe("rm -rf 'a b'");
  });
});

describe("driver registry", () => {
  const settings = z.strictObject({ socket: z.string().default("/run/x.sock") });
  const fake = (s: { socket: string }) => ({ kind: `fake:${s.socket}` }) as never;

  it("creates a registered driver with validated settings", () => {
    const registry = new DriverRegistry().register({ kind: "fake", settings, create: fake });
    expect(registry.kinds()).toEqual(["fake"]);
    expect(registry.create("fake", undefined, {} as never)).toEqual({ kind: "fake:/run/x.sock" });
    expect(() => registry.create("fake", { sock: "x" }, {} as never)).toThrow(/sock: unknown field/);
    expect(() => registry.create("kvm", {}, {} as never)).toThrow('no driver named "kvm"; known: fake');
    expect(() => registry.register({ kind: "fake", settings, create: fake })).toThrow(/twice/);
  });
});
