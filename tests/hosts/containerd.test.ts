// The containerd driver against the test host's real containerd, reached over its real sshd:
// an agent replica as a pod-shaped group, labels, logs, exec, stop with grace, exit reports,
// removal that leaves nothing, and the errors a caller must tell apart.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { within } from "../../operator/drivers/call.ts";
import { InvalidConfigError } from "../../operator/drivers/config.ts";
import type { ContainerdDriver } from "../../operator/drivers/containerd/driver.ts";
import { drivers } from "../../operator/drivers/drivers.ts";
import {
  AlreadyExistsError,
  CreationFailedError,
  NetworkError,
  NotFoundError,
} from "../../operator/drivers/errors.ts";
import { LABEL_ROLE, managedFilter, ownerLabels, replicaLabels } from "../../operator/drivers/labels.ts";
import {
  buildReplicaPlan,
  exitReport,
  type ReplicaSpec,
  removeReplicas,
  type StartedReplica,
  startReplica,
} from "../../operator/drivers/replica.ts";
import { eventually } from "../fixtures/eventually.ts";
import { connect, hostCommand, testHost } from "./host-env.ts";

const host = testHost();
const ssh = connect(host);
const stateDir = `${host.state}/agenttype`;
const driver = drivers.create(
  "containerd",
  { socket: host.containerdSocket, stateDir, cgroupParent: host.cgroupParent },
  ssh,
) as ContainerdDriver;
const owner = { namespace: "hosts-test", name: "echo", uid: randomUUID() };
const secret = `agenttype-secret-${randomUUID()}`;
const SIDECAR_UID = 65532;

// The sidecar stands in for ours: it answers on 127.0.0.1:4000 only, and holds the credentials.
const sidecarServer = [
  "use IO::Socket::INET; $| = 1;",
  'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 4000, Listen => 8, ReuseAddr => 1) or die "listen: $!";',
  'print "sidecar listening\\n";',
  'while (my $c = $s->accept) { my $l = <$c>; chomp $l; print $c "pong from sidecar: $l\\n"; close $c; }',
].join(" ");

const spec: ReplicaSpec = {
  owner,
  replica: 0,
  wrapper: {
    image: host.testImage,
    command: [
      "sh",
      "-c",
      'mkdir -p /opt/agenttype/node && echo "// preload" > /opt/agenttype/node/register.cjs',
    ],
    uid: SIDECAR_UID,
    gid: SIDECAR_UID,
    mountPath: "/opt/agenttype",
  },
  sidecar: {
    image: host.testImage,
    command: ["perl", "-e", sidecarServer],
    uid: SIDECAR_UID,
    gid: SIDECAR_UID,
    files: [
      { path: "/etc/agenttype/sidecar.json", content: `{"llm":"${secret}-config"}\n` },
      { path: "/etc/agenttype/credentials/llm/api-key", content: secret },
    ],
    writableDirs: ["/tmp"],
  },
  agent: {
    image: host.testImage,
    command: [
      "bash",
      "-c",
      'until exec 3<>/dev/tcp/127.0.0.1/4000; do sleep 0.2; done; echo "hello" >&3; read -r line <&3; echo "agent got: $line"; exec sleep 3600',
    ],
    env: [{ name: "AGENTTYPE_NAME", value: owner.name }],
  },
};

let started: StartedReplica;

beforeAll(async () => {
  // Leftovers of an interrupted earlier run must not be counted below.
  await removeReplicas(driver, managedFilter(), 1_000, within(120_000));
});

afterAll(async () => {
  await removeReplicas(driver, managedFilter(), 1_000, within(120_000)).catch(() => {});
  await driver.close();
  ssh.close();
});

describe("containerd driver on a real containerd over SSH", () => {
  it("reports containerd's version and readiness", async () => {
    const health = await driver.health(within(30_000));
    expect(health).toMatchObject({
      ready: true,
      versions: { containerd: host.containerdVersion, cri: "v1" },
    });
    if (health.message) console.log(`containerd warns: ${health.message}`);
  });

  it("runs a replica as a pod-shaped group: the agent reaches the sidecar on 127.0.0.1", async () => {
    const t0 = Date.now();
    started = await startReplica(driver, buildReplicaPlan(spec), within(120_000));
    console.log(`replica started in ${Date.now() - t0} ms`);
    const lines = await eventually(
      "the agent's answer from the sidecar",
      async () => {
        const logs = await driver.logs(started.containers.agent as string, {}, within(10_000));
        return logs.some((l) => l.text.startsWith("agent got:")) && logs;
      },
      30_000,
    );
    expect(lines.map((l) => l.text)).toContain("agent got: pong from sidecar: hello");
    const sidecarLogs = await driver.logs(started.containers.sidecar as string, { tail: 1 }, within(10_000));
    expect(sidecarLogs).toEqual([expect.objectContaining({ stream: "stdout", text: "sidecar listening" })]);
  });

  it("labels everything with the owner and the replica, and lists by label", async () => {
    const containers = await driver.list(replicaLabels(owner, 0), within(10_000));
    expect(containers.map((c) => [c.name, c.labels[LABEL_ROLE], c.state]).sort()).toEqual([
      ["agent", "agent", "running"],
      ["sidecar", "sidecar", "running"],
      ["wrapper", "wrapper", "exited"],
    ]);
    for (const c of containers) {
      expect(c.groupId).toBe(started.groupId);
      expect(c.labels).toMatchObject(replicaLabels(owner, 0));
    }
    const groups = await driver.listGroups(ownerLabels(owner), within(10_000));
    expect(groups).toHaveLength(1);
    expect(groups[0]).toMatchObject({ id: started.groupId, state: "ready", labels: replicaLabels(owner, 0) });
    expect(
      await driver.list({ ...ownerLabels(owner), "agenttype.dev/replica": "1" }, within(10_000)),
    ).toEqual([]);
    const volumes = await driver.volumes.list(ownerLabels(owner), within(10_000));
    expect(volumes.map((v) => v.name)).toEqual([
      `${started.groupId ? buildReplicaPlan(spec).group.name : ""}-sidecar`,
      `${buildReplicaPlan(spec).group.name}-wrapper`,
    ]);
    const wrapper = await exitReport(driver, started.containers.wrapper as string, 5, within(10_000));
    expect(wrapper.exitCode).toBe(0);
  });

  it("gives the agent the wrapper read-only and never the sidecar's config or credentials (checked from inside the agent)", async () => {
    const agent = started.containers.agent as string;
    const inAgent = (script: string) => driver.exec(agent, ["bash", "-c", script], within(30_000));
    expect((await inAgent("cat /opt/agenttype/node/register.cjs")).stdout).toBe("// preload\n");
    expect((await inAgent("touch /opt/agenttype/x")).exitCode).not.toBe(0);
    expect(
      (await inAgent("ls -A /etc/agenttype 2>&1; test -e /etc/agenttype/sidecar.json")).exitCode,
    ).not.toBe(0);
    // Nowhere in the agent's file system, and no sidecar process to reach through /proc.
    const search = await driver.exec(
      agent,
      [
        "bash",
        "-c",
        `grep -rlsF -D skip --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev -- '${secret}' /; echo "grep exit $?"`,
      ],
      within(90_000),
    );
    expect(search.stdout).toBe("grep exit 1\n");
    expect((await inAgent("cat /proc/[0-9]*/comm")).stdout).not.toContain("perl");
    // The sidecar, and only it, reads them, as its own non-root user.
    const inSidecar = await driver.exec(
      started.containers.sidecar as string,
      ["sh", "-c", "id -u; cat /etc/agenttype/credentials/llm/api-key; touch /tmp/ok && echo writable"],
      within(30_000),
    );
    expect(inSidecar.stdout).toBe(`${SIDECAR_UID}\n${secret}writable\n`);
    // On the host: the state directory is root's alone, the volume the sidecar user's alone.
    const volume = `${stateDir}/volumes/${buildReplicaPlan(spec).group.name}-sidecar`;
    const perms = await ssh.exec(
      `stat -c '%a %u' ${stateDir} ${volume} ${volume}/ro/etc/agenttype/credentials/llm/api-key`,
      {},
      within(10_000),
    );
    expect(perms.stdout).toBe(`700 0\n700 ${SIDECAR_UID}\n400 ${SIDECAR_UID}\n`);
  });

  it("stops a container with its grace period and reports exit code and last lines", async () => {
    const graceful = await driver.create(
      started.groupId,
      {
        name: "graceful",
        image: host.testImage,
        command: ["bash", "-c", 'trap "echo got TERM; exit 0" TERM; echo ready; while :; do sleep 0.1; done'],
        labels: { ...replicaLabels(owner, 0), [LABEL_ROLE]: "test" },
      },
      within(60_000),
    );
    const stubborn = await driver.create(
      started.groupId,
      {
        name: "stubborn",
        image: host.testImage,
        command: ["bash", "-c", "trap '' TERM; echo stay; exec sleep 3600"],
      },
      within(60_000),
    );
    const crasher = await driver.create(
      started.groupId,
      {
        name: "crasher",
        image: host.testImage,
        command: ["bash", "-c", "for i in 1 2 3 4 5; do echo line $i; done; sleep 0.2; echo bad >&2; exit 3"],
      },
      within(60_000),
    );
    for (const c of [graceful, stubborn, crasher]) await driver.start(c.id, within(30_000));
    await eventually("both to be up", async () => {
      const a = await driver.logs(graceful.id, {}, within(10_000));
      const b = await driver.logs(stubborn.id, {}, within(10_000));
      return a.length > 0 && b.length > 0;
    });

    let t0 = Date.now();
    await driver.stop(graceful.id, 10_000, within(30_000));
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(await driver.get(graceful.id, within(10_000))).toMatchObject({ state: "exited", exitCode: 0 });
    expect((await driver.logs(graceful.id, { tail: 1 }, within(10_000)))[0]?.text).toBe("got TERM");

    t0 = Date.now();
    await driver.stop(stubborn.id, 1_500, within(30_000));
    const waited = Date.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(1_000);
    expect(await driver.get(stubborn.id, within(10_000))).toMatchObject({ state: "exited", exitCode: 137 });
    await driver.stop(stubborn.id, 1_000, within(30_000)); // stopping a stopped container succeeds

    // The log file may lag the exit status by a moment: wait for the last line too.
    const report = await eventually("the crasher's exit and last lines", async () => {
      const r = await exitReport(driver, crasher.id, 3, within(10_000));
      return r.exitCode !== undefined && r.lastLines.at(-1)?.text === "bad" && r;
    });
    expect(report.exitCode).toBe(3);
    expect(report.reason).toBe("Error");
    expect(report.lastLines.map((l) => `${l.stream} ${l.text}`)).toEqual([
      "stdout line 4",
      "stdout line 5",
      "stderr bad",
    ]);
    const health = await driver.containerHealth(crasher.id, within(10_000));
    expect(health).toEqual({ healthy: false, state: "exited", message: "exited with code 3 (Error)" });
    expect((await driver.containerHealth(started.containers.agent as string, within(10_000))).healthy).toBe(
      true,
    );
    expect(await driver.logs(crasher.id, { since: new Date(Date.now() + 60_000) }, within(10_000))).toEqual(
      [],
    );
    expect(await driver.logs(crasher.id, { since: new Date(0) }, within(10_000))).toHaveLength(6);

    for (const c of [graceful, stubborn, crasher]) await driver.remove(c.id, within(30_000));
    await driver.remove(crasher.id, within(30_000)); // removing twice succeeds
    await expect(driver.get(crasher.id, within(10_000))).rejects.toBeInstanceOf(NotFoundError);
  });

  it("names what went wrong: unknown ids, taken names, images it cannot get, bad input", async () => {
    await expect(driver.get("0".repeat(64), within(10_000))).rejects.toBeInstanceOf(NotFoundError);
    await expect(
      driver.createGroup({ name: buildReplicaPlan(spec).group.name }, within(30_000)),
    ).rejects.toBeInstanceOf(AlreadyExistsError);
    const missing = "localhost/agenttype/does-not-exist:1";
    const err = await driver
      .create(started.groupId, { name: "missing", image: missing }, within(60_000))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CreationFailedError);
    expect((err as CreationFailedError).retryable).toBe(true);
    expect((err as Error).message).toContain(missing);
    await expect(
      driver.create(started.groupId, { name: "Bad Name", image: "x" }, within(10_000)),
    ).rejects.toThrow(InvalidConfigError);
  });

  it("removes the replica and leaves nothing on the host", async () => {
    const t0 = Date.now();
    await removeReplicas(driver, ownerLabels(owner), 2_000, within(120_000));
    console.log(`replica removed in ${Date.now() - t0} ms`);
    expect(await driver.listGroups(managedFilter(), within(10_000))).toEqual([]);
    expect(await driver.list(ownerLabels(owner), within(10_000))).toEqual([]);
    expect(await driver.volumes.list(managedFilter(), within(10_000))).toEqual([]);
    await removeReplicas(driver, ownerLabels(owner), 2_000, within(60_000)); // idempotent
    const left = await ssh.exec(
      `ls -A ${stateDir}/volumes ${stateDir}/logs; find /sys/fs/cgroup/*${host.cgroupParent} -mindepth 1 -type d 2>/dev/null | wc -l`,
      {},
      within(10_000),
    );
    expect(left.stdout).toBe(`${stateDir}/logs:\n\n${stateDir}/volumes:\n0\n`);
  });

  it("fails a start whose init container fails, naming it with its exit code and last lines; removal leaves nothing", async () => {
    const failing: ReplicaSpec = {
      ...spec,
      owner: { ...owner, name: "init-fails", uid: randomUUID() },
      wrapper: { ...spec.wrapper, command: ["sh", "-c", "echo cannot copy the wrapper >&2; exit 7"] },
    };
    const err = await startReplica(driver, buildReplicaPlan(failing), within(120_000)).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CreationFailedError);
    expect((err as Error).message).toMatch(
      /^init container wrapper of \S+ exited with 7 \(Error\); last lines:\n/,
    );
    expect((err as Error).message).toContain("cannot copy the wrapper");
    // The sidecar and agent were created beside the init container, never started.
    const created = await driver.list(ownerLabels(failing.owner), within(10_000));
    expect(created.filter((c) => c.state !== "created" && c.labels[LABEL_ROLE] !== "wrapper")).toEqual([]);
    await removeReplicas(driver, ownerLabels(failing.owner), 2_000, within(120_000));
    expect(await driver.list(ownerLabels(failing.owner), within(10_000))).toEqual([]);
    expect(await driver.volumes.list(ownerLabels(failing.owner), within(10_000))).toEqual([]);
  });

  it("fails with a retryable network error while sshd is down, and talks to containerd again when it is back", async () => {
    await driver.health(within(30_000));
    hostCommand("sshd-stop");
    try {
      const err = await eventually(
        "a failing call",
        () =>
          driver.health(within(5_000)).then(
            () => false,
            (e: unknown) => e,
          ),
        30_000,
      );
      expect(err).toBeInstanceOf(NetworkError);
      expect((err as NetworkError).retryable).toBe(true);
    } finally {
      hostCommand("sshd-start");
    }
    const back = await eventually(
      "containerd through the new connection",
      () => driver.health(within(5_000)),
      60_000,
    );
    expect(back.ready).toBe(true);
  });
});
