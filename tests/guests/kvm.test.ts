// The KVM driver against a real libvirtd and QEMU on the KVM host (tests/guests/kvm-host.sh),
// reached over its real sshd: a guest booted through libvirt from the project's image (KVM
// where a probe shows it works, TCG otherwise, printed), the unmodified sample agent in it
// reaching the LLM and a tool through the sidecar in the guest, a guest presenting another host
// key refused, suspend and resume keeping the agent's in-memory state, libvirtd restarted with
// the guest surviving and adopted by a new driver, a guest destroyed from outside seen and
// replaced, and removal leaving no guest, overlay or key.
import { execFileSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { within } from "../../operator/drivers/call.ts";
import type { ContainerInfo } from "../../operator/drivers/driver.ts";
import { HostKeyMismatchError } from "../../operator/drivers/errors.ts";
import { guestMac } from "../../operator/drivers/kvm/domain-xml.ts";
import { GUEST_SSH_PORT, openThroughHost } from "../../operator/drivers/kvm/guest-link.ts";
import { parseDomifaddr } from "../../operator/drivers/kvm/virsh.ts";
import { managedFilter, type Owner, ownerLabels } from "../../operator/drivers/labels.ts";
import { removeReplicas, startReplica } from "../../operator/drivers/replica.ts";
import { SshConnection } from "../../operator/drivers/ssh/connection.ts";
import { generateClientKeypair } from "../../operator/drivers/ssh/keypair.ts";
import { eventually } from "../fixtures/eventually.ts";
import {
  hostConnection,
  kvmDriver,
  kvmHostFrom,
  MemoryKeyStore,
  sampleReplica,
  upstreams,
} from "./guest-env.ts";

const kvmHostSh = resolve(dirname(fileURLToPath(import.meta.url)), "kvm-host.sh");
const host = kvmHostFrom(inject("kvmHostEnv"));
const ssh = hostConnection(host);
const keys = new MemoryKeyStore();
let driver = kvmDriver(host, ssh, keys);
let servers: Awaited<ReturnType<typeof upstreams>>;
let owner: Owner;
let guest = "";

const virsh = async (...args: string[]) => {
  const r = await ssh.exec(["virsh", "-q", "-c", host.uri, ...args].join(" "), {}, within(60_000));
  return r.stdout;
};

async function agentContainer(): Promise<ContainerInfo> {
  const [agent] = await driver.list({ ...ownerLabels(owner), "agenttype.dev/role": "agent" }, within(60_000));
  if (agent === undefined) throw new Error("no agent container");
  return agent;
}

async function agentLogs(): Promise<string[]> {
  return (await driver.logs((await agentContainer()).id, {}, within(30_000))).map((l) => l.text);
}

/** Reads the agent's counter file (written every 200 ms by a loop in the agent container). */
async function counter(): Promise<number> {
  const r = await driver.exec((await agentContainer()).id, ["cat", "/tmp/counter"], within(30_000));
  return Number(r.stdout.trim());
}

beforeAll(async () => {
  // Leftovers of an interrupted earlier run: guests whose keys this process never had.
  for (const g of await driver.guests(managedFilter(), within(60_000)))
    await virsh("destroy", g.name).catch(() => "");
  for (const g of await driver.guests(managedFilter(), within(60_000)))
    await virsh("undefine", "--managed-save", g.name);
  await ssh.exec(`rm -rf ${host.state}/kvm`, {}, within(30_000));
  servers = await upstreams(host);
}, 120_000);

afterAll(async () => {
  await removeReplicas(driver, managedFilter(), 1_000, within(180_000)).catch(() => {});
  await driver.close();
  await servers?.close();
  ssh.close();
}, 240_000);

describe("KVM driver on a real libvirtd and QEMU", () => {
  it("reports libvirt and QEMU versions and the acceleration a probe chose", async () => {
    const health = await driver.health(within(60_000));
    const accel = await driver.accel(within(60_000));
    console.log(`guests run under ${accel.accel.toUpperCase()}: ${accel.reason}`);
    expect(health.ready).toBe(true);
    expect(health.versions).toMatchObject({
      libvirt: expect.stringMatching(/^\d+\.\d+/),
      accel: accel.accel,
    });
    expect(["kvm", "tcg"]).toContain(accel.accel);
  });

  it("boots a guest and runs the unmodified sample agent in it: LLM and tool through the sidecar in the guest", async () => {
    const replica = sampleReplica("node-agent", 0, servers);
    owner = replica.owner;
    const t0 = Date.now();
    const started = await startReplica(driver, replica.plan, within(600_000));
    const startedMs = Date.now() - t0;
    guest = started.groupId.split("/")[0] as string;
    const boot = driver.bootTimes.get(guest);
    console.log(
      `guest ${guest}: replica started in ${(startedMs / 1000).toFixed(1)} s; boot stages (ms) ${JSON.stringify(boot)}`,
    );
    expect(boot).toBeDefined();
    const logs = await eventually(
      "agent done",
      async () => {
        const lines = await agentLogs();
        return lines.some((l) => l.includes("agent done") || l.includes("agent failed")) ? lines : undefined;
      },
      300_000,
      1000,
    );
    const text = logs.join("\n");
    expect(text).not.toContain("agent failed");
    expect(text).toMatch(/llm: .* \[model llama3\.2/);
    expect(text).toContain("tools: calculator@2.1.0");
    expect(text).toContain("tool calculator: 6 * 7 = 42");
    expect(text).toMatch(/memory: runs\/\S+ = \{"question":"6 \* 7","answer":"42","version":"1"\}/);
    expect(servers.ollama.requests.length).toBeGreaterThan(0);
    // The agent runs in the guest, not on the host: the host's containerd has no such container.
    const onHost = await ssh.exec(
      `ctr -a ${host.state}/containerd/containerd.sock -n k8s.io c ls -q`,
      {},
      within(30_000),
    );
    const agent = await agentContainer();
    expect(onHost.stdout).not.toContain(agent.id.split("/")[1] as string);
  }, 660_000);

  it("refuses a guest that presents another host key than the pinned one", async () => {
    const stored = keys.keys.get(guest);
    expect(stored).toBeDefined();
    const address = parseDomifaddr(
      await virsh("net-dhcp-leases", host.network, "--mac", guestMac(guest)),
    ) as string;
    const wrongPin = new SshConnection({
      host: address,
      port: GUEST_SSH_PORT,
      username: "root",
      privateKey: stored?.clientPrivateKey as string,
      hostKey: generateClientKeypair("not-the-guest").publicKey,
      connectStream: (c) => openThroughHost(ssh, address, GUEST_SSH_PORT, c),
    });
    await expect(wrongPin.exec("true", {}, within(30_000))).rejects.toBeInstanceOf(HostKeyMismatchError);
    wrongPin.close();
  });

  it("suspends the guest to disk and resumes it where it was, in-memory state included", async () => {
    const agent = await agentContainer();
    // A counter that lives only in a process's memory: a reboot would restart it at 1.
    await driver.exec(
      agent.id,
      ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.2; done >/dev/null 2>&1 &"],
      within(30_000),
    );
    await eventually("the counter counts", async () => (await counter()) > 3, 30_000, 500);
    const t0 = Date.now();
    expect(await driver.suspend(ownerLabels(owner), within(300_000))).toEqual([guest]);
    const suspendMs = Date.now() - t0;
    expect((await virsh("domstate", guest)).trim()).toBe("shut off");
    expect(await virsh("dominfo", guest)).toMatch(/Managed save:\s+yes/);
    expect((await driver.listGroups(ownerLabels(owner), within(60_000))).map((g) => g.state)).toEqual([
      "not-ready",
    ]);
    const t1 = Date.now();
    expect(await driver.resume(ownerLabels(owner), within(300_000))).toEqual([guest]);
    const resumeMs = Date.now() - t1;
    console.log(`suspend ${(suspendMs / 1000).toFixed(1)} s, resume ${(resumeMs / 1000).toFixed(1)} s`);
    const after = await agentContainer();
    expect(after.id).toBe(agent.id);
    expect(after.state).toBe("running");
    const resumedAt = await counter();
    // The loop went on from where it was: far above 1, and it keeps counting.
    expect(resumedAt).toBeGreaterThan(3);
    await eventually("the counter counts on", async () => (await counter()) > resumedAt, 30_000, 500);
    expect(await agentLogs()).toContain("agent done (version 1)");
  }, 660_000);

  it("keeps the guest when libvirtd restarts, and a new driver adopts it", async () => {
    const agent = await agentContainer();
    execFileSync(kvmHostSh, ["libvirtd-restart"], {
      stdio: ["ignore", "ignore", "inherit"],
      timeout: 120_000,
    });
    await driver.close();
    driver = kvmDriver(host, ssh, keys);
    const groups = await driver.listGroups(ownerLabels(owner), within(120_000));
    expect(groups.map((g) => g.state)).toEqual(["ready"]);
    const adopted = await agentContainer();
    expect(adopted.id).toBe(agent.id);
    expect(adopted.state).toBe("running");
  }, 300_000);

  it("sees a guest destroyed from outside as a group that is not ready, and replaces it", async () => {
    await virsh("destroy", guest);
    const groups = await driver.listGroups(ownerLabels(owner), within(60_000));
    expect(groups).toEqual([expect.objectContaining({ id: `${guest}/`, state: "not-ready" })]);
    // What the placement does with a replica that is not ready: remove it and start it anew.
    const oldKey = keys.keys.get(guest)?.hostPublicKey;
    await removeReplicas(driver, ownerLabels(owner), 1_000, within(120_000));
    expect(keys.keys.has(guest)).toBe(false);
    const replica = sampleReplica("node-agent", 0, servers, owner.uid);
    await startReplica(driver, replica.plan, within(600_000));
    // The same replica's guest, with keys of its own again.
    expect(keys.keys.get(guest)?.hostPublicKey).toBeDefined();
    expect(keys.keys.get(guest)?.hostPublicKey).not.toBe(oldKey);
    expect((await driver.listGroups(ownerLabels(owner), within(60_000))).map((g) => g.state)).toEqual([
      "ready",
    ]);
  }, 660_000);

  it("removal shuts the guest down and leaves no domain, overlay or key behind", async () => {
    await removeReplicas(driver, managedFilter(), 10_000, within(180_000));
    expect(await driver.guests(managedFilter(), within(60_000))).toEqual([]);
    expect((await virsh("list", "--all", "--name")).trim()).toBe("");
    const left = await ssh.exec(`ls -A ${host.state}/kvm`, {}, within(30_000));
    expect(left.stdout.trim()).toBe("");
    expect(keys.keys.size).toBe(0);
  }, 240_000);
});
