import { describe, expect, it } from "vitest";
import { containerConfig, groupConfig, parseConfig } from "../config.ts";
import {
  AlreadyExistsError,
  CreationFailedError,
  NetworkError,
  NotFoundError,
  ResourceLimitError,
  TimeoutError,
  UnsupportedBackendVersionError,
} from "../errors.ts";
import { CONSOLE_ANNOTATION } from "./console.ts";
import { criProtoPath } from "./cri-client.ts";
import { criError, GrpcStatus } from "./cri-errors.ts";
import { parseCriLog, selectLogLines } from "./cri-log.ts";
import {
  containerInfo,
  criContainerConfig,
  fromNanos,
  GROUP_ANNOTATION,
  groupInfo,
  isSupportedContainerd,
  linuxResources,
  parseContainerdVersion,
  sandboxConfig,
} from "./cri-spec.ts";
import { volumeDirectories } from "./volumes.ts";

const settings = { stateDir: "/var/lib/agenttype", cgroupParent: "/agenttype" };

describe("CRI messages", () => {
  const group = parseConfig(groupConfig, "group", {
    name: "ns_a_0_1234",
    hostname: "a-0",
    labels: { x: "y" },
  });

  it("make a sandbox with its own network namespace, PIDs apart, its config kept for later", () => {
    const sandbox = sandboxConfig(group, settings);
    expect(sandbox).toMatchObject({
      metadata: { name: "ns_a_0_1234", uid: "ns_a_0_1234", namespace: "agenttype", attempt: 0 },
      hostname: "a-0",
      logDirectory: "/var/lib/agenttype/logs/ns_a_0_1234_0",
      labels: { x: "y" },
      linux: {
        cgroupParent: "/agenttype",
        securityContext: { namespaceOptions: { network: "POD", pid: "CONTAINER", ipc: "POD" } },
      },
    });
    expect(JSON.parse(sandbox.annotations[GROUP_ANNOTATION])).toEqual(group);
  });

  it("map a container's mounts onto volume directories, and its limits and confinement onto Linux settings", () => {
    const container = parseConfig(containerConfig, "container", {
      name: "sidecar",
      image: "localhost/agenttype/sidecar:dev",
      command: ["node"],
      args: ["main.js"],
      env: [{ name: "A", value: "1" }],
      mounts: [
        { volume: "v1", subPath: "ro/etc/agenttype", containerPath: "/etc/agenttype", readOnly: true },
        { volume: "v2", containerPath: "/tmp" },
      ],
      resources: { cpuRequestMillis: 250, cpuLimitMillis: 500, memoryLimitBytes: 128 * 1024 * 1024 },
      security: {
        runAsUser: 65532,
        runAsGroup: 65532,
        readOnlyRootFilesystem: true,
        dropCapabilities: ["ALL"],
      },
      attempt: 2,
    });
    const cri = criContainerConfig(container, settings);
    expect(cri).toMatchObject({
      metadata: { name: "sidecar", attempt: 2 },
      image: { image: "localhost/agenttype/sidecar:dev" },
      command: ["node"],
      args: ["main.js"],
      envs: [{ key: "A", value: "1" }],
      mounts: [
        {
          containerPath: "/etc/agenttype",
          hostPath: "/var/lib/agenttype/volumes/v1/ro/etc/agenttype",
          readonly: true,
        },
        { containerPath: "/tmp", hostPath: "/var/lib/agenttype/volumes/v2", readonly: false },
      ],
      logPath: "sidecar_2.log",
      linux: {
        resources: {
          cpuPeriod: "100000",
          cpuQuota: "50000",
          cpuShares: "256",
          memoryLimitInBytes: "134217728",
        },
        securityContext: {
          runAsUser: { value: "65532" },
          runAsGroup: { value: "65532" },
          readonlyRootfs: true,
          noNewPrivs: true,
          capabilities: { dropCapabilities: ["ALL"] },
          seccomp: { profileType: "RuntimeDefault" },
        },
      },
    });
    // Only a terminal container has a TTY, stdin and a console named after its replica.
    expect(cri).not.toHaveProperty("tty");
    const terminal = criContainerConfig(
      parseConfig(containerConfig, "container", {
        name: "agent",
        image: "agent:1",
        terminal: true,
        labels: {
          "agenttype.dev/namespace": "team-a",
          "agenttype.dev/name": "shell.v2",
          "agenttype.dev/replica": "2",
        },
      }),
      settings,
    );
    expect(terminal).toMatchObject({
      tty: true,
      stdin: true,
      stdinOnce: false,
      annotations: { [CONSOLE_ANNOTATION]: "agenttype_team-a_shell+v2_2" },
    });
    expect(
      containerInfo({ id: "c1", state: "CONTAINER_RUNNING", annotations: terminal.annotations }, "g1")
        .console,
    ).toBe("agenttype_team-a_shell+v2_2");
    // No request is the least weight, as a kubelet gives it; no limit, no cap.
    expect(linuxResources({})).toEqual({ cpuShares: "2" });
    expect(linuxResources({ cpuRequestMillis: 1 }).cpuShares).toBe("2");
    // A request weighs the container and caps nothing; a limit alone caps it at the default weight.
    expect(linuxResources({ cpuRequestMillis: 50 })).toEqual({ cpuShares: "51" });
    expect(linuxResources({ cpuLimitMillis: 1500 })).toEqual({
      cpuShares: "2",
      cpuPeriod: "100000",
      cpuQuota: "150000",
    });
  });

  it("read containers and sandboxes back as plain data", () => {
    const info = containerInfo(
      {
        id: "c1",
        podSandboxId: "s1",
        metadata: { name: "agent", attempt: 1 },
        image: { image: "img" },
        state: "CONTAINER_EXITED",
        createdAt: "1764110000123456789",
        startedAt: "1764110001000000000",
        finishedAt: "1764110002000000000",
        exitCode: 137,
        reason: "Error",
        labels: { a: "b" },
      },
      undefined,
    );
    expect(info).toEqual({
      id: "c1",
      groupId: "s1",
      name: "agent",
      attempt: 1,
      image: "img",
      labels: { a: "b" },
      state: "exited",
      createdAt: new Date(1764110000123),
      startedAt: new Date(1764110001000),
      finishedAt: new Date(1764110002000),
      exitCode: 137,
      reason: "Error",
    });
    // A running container has no exit code, whatever the default field says.
    expect(
      containerInfo({ id: "c", state: "CONTAINER_RUNNING", exitCode: 0, finishedAt: "0" }, "s").exitCode,
    ).toBeUndefined();
    expect(containerInfo({ id: "c", state: "CONTAINER_UNKNOWN" }, "s")).toMatchObject({
      state: "unknown",
      groupId: "s",
    });
    expect(
      groupInfo({
        id: "s",
        metadata: { name: "g", attempt: 0 },
        state: "SANDBOX_NOTREADY",
        network: { ip: "" },
      }),
    ).toEqual({
      id: "s",
      name: "g",
      attempt: 0,
      labels: {},
      state: "not-ready",
    });
    expect(fromNanos("0")).toBeUndefined();
    expect(fromNanos(undefined)).toBeUndefined();
  });

  it("accept containerd 1.6 and later, as its CRI spells versions", () => {
    expect(parseContainerdVersion("1.6.20~ds1")).toEqual([1, 6]);
    expect(parseContainerdVersion("v2.1.4")).toEqual([2, 1]);
    expect(parseContainerdVersion("devel")).toBeUndefined();
    expect(["1.6.20~ds1", "1.7.0", "v2.0.0"].map(isSupportedContainerd)).toEqual([true, true, true]);
    expect(["1.5.9", "0.9", "x"].map(isSupportedContainerd)).toEqual([false, false, false]);
  });

  it("find api.proto where cri-proto.sh puts it, or where the environment says", () => {
    expect(criProtoPath({ AGENTTYPE_CRI_PROTO: "/x/api.proto" })).toBe("/x/api.proto");
    expect(criProtoPath({ AGENTTYPE_CACHE: "/c" })).toBe("/c/proto/cri-api-v0.34.4/api.proto");
    expect(criProtoPath({ XDG_CACHE_HOME: "/x" })).toBe("/x/agenttype/proto/cri-api-v0.34.4/api.proto");
  });
});

describe("CRI failures", () => {
  const grpc = (code: number, details: string) =>
    Object.assign(new Error(`${code} ${details}`), { code, details });
  it("become the driver error a caller acts on", () => {
    expect(criError(grpc(GrpcStatus.NOT_FOUND, "no such"), "container x", 1)).toBeInstanceOf(NotFoundError);
    expect(criError(grpc(GrpcStatus.ALREADY_EXISTS, "taken"), "group g", 1)).toBeInstanceOf(
      AlreadyExistsError,
    );
    expect(criError(grpc(GrpcStatus.DEADLINE_EXCEEDED, "late"), "Version", 1)).toBeInstanceOf(TimeoutError);
    const unavailable = criError(grpc(GrpcStatus.UNAVAILABLE, "No connection established"), "Version", 1);
    expect(unavailable).toBeInstanceOf(NetworkError);
    expect(unavailable.retryable).toBe(true);
    expect(criError(grpc(GrpcStatus.RESOURCE_EXHAUSTED, "quota"), "x", 1)).toBeInstanceOf(ResourceLimitError);
    expect(
      criError(grpc(GrpcStatus.UNIMPLEMENTED, "unknown service runtime.v1.RuntimeService"), "Version", 1),
    ).toBeInstanceOf(UnsupportedBackendVersionError);
    // containerd's UNKNOWN answers that carry a known condition.
    expect(
      criError(
        grpc(GrpcStatus.UNKNOWN, 'failed to reserve sandbox name "g": name "g" is reserved for "abc"'),
        "RunPodSandbox g",
        1,
      ),
    ).toBeInstanceOf(AlreadyExistsError);
    expect(
      criError(
        grpc(GrpcStatus.UNKNOWN, 'an error occurred when try to find container "x": not found'),
        "container x",
        1,
      ),
    ).toBeInstanceOf(NotFoundError);
    const other = criError(grpc(GrpcStatus.UNKNOWN, "runc create failed"), "start container c", 1);
    expect(other).toBeInstanceOf(CreationFailedError);
    expect(other.message).toBe("start container c: runc create failed");
  });
});

describe("CRI logs", () => {
  const text = [
    "2026-11-25T22:52:55.209000000Z stdout F hello",
    "2026-11-25T22:52:55.210000000Z stderr P par",
    "2026-11-25T22:52:55.211000000Z stdout F between",
    "2026-11-25T22:52:55.212000000Z stderr F tial",
    "not a record",
    "2026-11-25T22:52:56.000000000Z stdout F",
    "2026-11-25T22:52:57.000000000Z stdout F last",
    "",
  ].join("\n");

  it("joins partial records per stream and keeps the first record's time", () => {
    expect(
      parseCriLog("2026-11-25T22:00:02Z stderr F late\n2026-11-25T22:00:01Z stdout F early\n").map(
        (l) => l.text,
      ),
    ).toEqual(["early", "late"]);
    const lines = parseCriLog(text);
    expect(lines.map((l) => `${l.stream}:${l.text}`)).toEqual([
      "stdout:hello",
      "stderr:partial",
      "stdout:between",
      "stdout:",
      "stdout:last",
    ]);
    expect(lines[1]?.time).toEqual(new Date("2026-11-25T22:52:55.210Z"));
  });

  it("selects by time, then the tail", () => {
    const lines = parseCriLog(text);
    expect(selectLogLines(lines, { tail: 2 }).map((l) => l.text)).toEqual(["", "last"]);
    expect(selectLogLines(lines, { since: new Date("2026-11-25T22:52:55.211Z") }).map((l) => l.text)).toEqual(
      ["between", "", "last"],
    );
    expect(selectLogLines(lines, { since: new Date("2030-01-01T00:00:00Z"), tail: 5 })).toEqual([]);
    expect(selectLogLines(lines, {})).toHaveLength(5);
  });
});

describe("host volumes", () => {
  it("make every directory, parents first", () => {
    expect(
      volumeDirectories([{ path: "ro/etc/agenttype/sidecar.json" }, { path: "top.txt" }], ["rw/0", "rw/1"]),
    ).toEqual(["ro", "rw", "ro/etc", "rw/0", "rw/1", "ro/etc/agenttype"]);
  });
});
