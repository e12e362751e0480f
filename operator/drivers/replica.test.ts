import { describe, expect, it } from "vitest";
import { within } from "./call.ts";
import { containerConfig, groupConfig, parseConfig, volumeConfig } from "./config.ts";
import type { ContainerDriver } from "./driver.ts";
import { LABEL_PERSISTENT, LABEL_ROLE, replicaLabels } from "./labels.ts";
import {
  buildReplicaPlan,
  describeStartSteps,
  mountRoots,
  type ReplicaSpec,
  removeReplicas,
} from "./replica.ts";

const owner = { namespace: "team-a", name: "researcher", uid: "0b9e1c1e-7f6a-4d7e-9a43-2f0c5f3b1a77" };
const spec: ReplicaSpec = {
  owner,
  replica: 1,
  wrapper: {
    image: "localhost/agenttype/wrapper:dev",
    args: ["/opt/agenttype"],
    uid: 65532,
    gid: 65532,
    mountPath: "/opt/agenttype",
  },
  sidecar: {
    image: "localhost/agenttype/sidecar:dev",
    args: ["--config", "/etc/agenttype/sidecar.json"],
    uid: 65532,
    gid: 65532,
    files: [
      { path: "/etc/agenttype/sidecar.json", content: "{}" },
      { path: "/var/run/agenttype/credentials/cloud/AWS_ACCESS_KEY_ID", content: "AKIA" },
      { path: "/var/run/agenttype/credentials/cloud/AWS_SECRET_ACCESS_KEY", content: "s3cr3t", mode: 0o440 },
    ],
    writableDirs: ["/tmp", "/var/lib/agenttype/memory"],
  },
  agent: {
    image: "ghcr.io/acme/researcher:1.4.2",
    env: [{ name: "OPENAI_BASE_URL", value: "http://127.0.0.1:4000/v1" }],
    resources: { memoryLimitBytes: 512 * 1024 * 1024 },
  },
};

describe("buildReplicaPlan", () => {
  const plan = buildReplicaPlan(spec);
  const name = "team-a_researcher_1_0b9e1c1e";

  it("makes one labelled group whose configs all pass the driver's schemas", () => {
    expect(plan.group).toEqual({ name, hostname: "researcher-1", labels: replicaLabels(owner, 1) });
    parseConfig(groupConfig, "group", plan.group);
    for (const v of plan.volumes) parseConfig(volumeConfig, "volume", v);
    for (const c of [...plan.init, ...plan.containers]) parseConfig(containerConfig, "container", c);
    expect(plan.init.map((c) => c.name)).toEqual(["wrapper"]);
    expect(plan.containers.map((c) => c.name)).toEqual(["sidecar", "agent"]);
    for (const c of [...plan.init, ...plan.containers]) {
      expect(c.labels).toEqual({ ...replicaLabels(owner, 1), [LABEL_ROLE]: c.name });
    }
  });

  it("puts the sidecar's files in a volume only the sidecar mounts, owned by the sidecar's user alone", () => {
    const sidecarVolume = plan.volumes.find((v) => v.name === `${name}-sidecar`);
    expect(sidecarVolume).toMatchObject({
      uid: 65532,
      gid: 65532,
      mode: 0o700,
      directories: ["rw/0", "rw/1"],
    });
    expect(sidecarVolume?.files).toEqual([
      { path: "ro/etc/agenttype/sidecar.json", content: "{}", mode: 0o400 },
      { path: "ro/var/run/agenttype/credentials/cloud/AWS_ACCESS_KEY_ID", content: "AKIA", mode: 0o400 },
      {
        path: "ro/var/run/agenttype/credentials/cloud/AWS_SECRET_ACCESS_KEY",
        content: "s3cr3t",
        mode: 0o440,
      },
    ]);
    const [sidecar, agent] = plan.containers;
    expect(sidecar?.mounts).toEqual([
      {
        volume: `${name}-sidecar`,
        subPath: "ro/etc/agenttype",
        containerPath: "/etc/agenttype",
        readOnly: true,
      },
      {
        volume: `${name}-sidecar`,
        subPath: "ro/var/run/agenttype/credentials/cloud",
        containerPath: "/var/run/agenttype/credentials/cloud",
        readOnly: true,
      },
      { volume: `${name}-sidecar`, subPath: "rw/0", containerPath: "/tmp", readOnly: false },
      {
        volume: `${name}-sidecar`,
        subPath: "rw/1",
        containerPath: "/var/lib/agenttype/memory",
        readOnly: false,
      },
    ]);
    expect(agent?.mounts).toEqual([
      { volume: `${name}-wrapper`, containerPath: "/opt/agenttype", readOnly: true },
    ]);
    expect(JSON.stringify(agent)).not.toContain("s3cr3t");
  });

  it("runs our containers restricted and the agent as its image says, with the given environment", () => {
    const [wrapper] = plan.init;
    const [sidecar, agent] = plan.containers;
    for (const c of [wrapper, sidecar]) {
      expect(c?.security).toEqual({
        runAsUser: 65532,
        runAsGroup: 65532,
        readOnlyRootFilesystem: true,
        noNewPrivileges: true,
        dropCapabilities: ["ALL"],
        seccomp: "runtime-default",
      });
    }
    expect(wrapper?.mounts).toEqual([
      { volume: `${name}-wrapper`, containerPath: "/opt/agenttype", readOnly: false },
    ]);
    expect(agent?.security).toBeUndefined();
    expect(agent?.env).toEqual(spec.agent.env);
    expect(agent?.resources).toEqual({ memoryLimitBytes: 512 * 1024 * 1024 });
    expect(agent).not.toHaveProperty("command");
    expect(sidecar?.args).toEqual(["--config", "/etc/agenttype/sidecar.json"]);
  });

  it("refuses a writable directory inside a read-only one, naming both", () => {
    expect(() =>
      buildReplicaPlan({ ...spec, sidecar: { ...spec.sidecar, writableDirs: ["/etc/agenttype/cache"] } }),
    ).toThrow("sidecar writable directory /etc/agenttype/cache lies in read-only /etc/agenttype");
  });
});

describe("mountRoots", () => {
  it("keeps the outermost directories only", () => {
    expect(
      mountRoots(["/etc/agenttype", "/etc/agenttype/credentials/llm", "/var/run/x", "/etc/agenttypes"]),
    ).toEqual(["/etc/agenttype", "/etc/agenttypes", "/var/run/x"]);
    expect(mountRoots([])).toEqual([]);
  });
});

describe("describeStartSteps", () => {
  it("gives the total and each step in seconds, in the order they ran", () => {
    expect(describeStartSteps({ volumes: 31_250, group: 4_000, init: 2_560, containers: 1_049 })).toBe(
      "started in 38.9 s (volumes 31.3 s, group 4.0 s, init containers 2.6 s, containers 1.0 s)",
    );
  });
});

describe("removeReplicas", () => {
  /** A driver that records what it was asked; removeGroups only when `whole` is given. */
  function recordingDriver(whole?: string[]) {
    const asked: string[] = [];
    const driver = {
      listGroups: async () => {
        asked.push("listGroups");
        return [{ id: "g1" }, { id: "g2" }];
      },
      removeGroup: async (id: string) => void asked.push(`removeGroup ${id}`),
      ...(whole === undefined
        ? {}
        : {
            removeGroups: async () => {
              asked.push("removeGroups");
              return whole;
            },
          }),
      volumes: {
        list: async () => [
          { name: "scratch", labels: {} },
          { name: "memory", labels: { [LABEL_PERSISTENT]: "true" } },
        ],
        remove: async (name: string) => void asked.push(`remove volume ${name}`),
      },
    } as unknown as ContainerDriver;
    return { driver, asked };
  }

  it("lists the groups and removes each where the driver cannot remove them by labels", async () => {
    const { driver, asked } = recordingDriver();
    expect(await removeReplicas(driver, replicaLabels(owner, 0), 1000, within(5000))).toEqual([]);
    expect(asked).toEqual(["listGroups", "removeGroup g1", "removeGroup g2", "remove volume scratch"]);
  });

  it("removes by labels where the driver can (groups it cannot reach included) and says which went whole", async () => {
    const sentence = "guest g could not be reached (host key mismatch): libvirt shut it down and removed it";
    const { driver, asked } = recordingDriver([sentence]);
    expect(await removeReplicas(driver, replicaLabels(owner, 0), 1000, within(5000), true)).toEqual([
      sentence,
    ]);
    expect(asked).toEqual(["removeGroups", "remove volume scratch", "remove volume memory"]);
  });
});
