// The operator process, the tier's control plane and the KVM host together: an AgentHost with
// driver kvm is probed; an AgentType with runtime kvm gets one guest per replica, sized from its
// resources, and becomes Ready with the unmodified sample agent reaching the LLM and a tool
// through the sidecar in its guest; the guests' keys live in a Secret the AgentType owns and
// outlast an operator restart, which adopts the guest without booting it again; a guest
// presenting another host key is refused; the guest outlives a libvirtd restart; a spec change
// boots the new guest beside the old one before removing it; spec.suspend saves the guest and
// clearing it resumes it where it was (a counter in the agent's memory counts on), and is
// refused by name on other runtimes; delete leaves no guest, overlay or key. Persistent memory
// lives on a data disk that outlasts a guest destroyed from outside (told at once by libvirt's
// event channel, and replaced), scaling (a guest per replica) and, with retainPolicy Retain,
// the AgentType itself. A guest whose boot hangs is removed past the host's boot timeout and
// booted anew.
// The tests share one AgentType, each a step of its life, so that TCG boots (tens of seconds
// each) are paid only where a check needs a new guest.

import { execFile } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import type { AgentTypeStatus } from "../../api/agenttype.ts";
import { within } from "../../operator/drivers/call.ts";
import { isDriverError } from "../../operator/drivers/errors.ts";
import { guestSize } from "../../operator/drivers/kvm/driver.ts";
import { LABEL_ROLE, managedFilter, ownerLabels } from "../../operator/drivers/labels.ts";
import { ROLE_AGENT, ROLE_SIDECAR } from "../../operator/drivers/replica.ts";
import { generateClientKeypair } from "../../operator/drivers/ssh/keypair.ts";
import { guestKeysSecretName } from "../../operator/hosts/guest-key-secrets.ts";
import type { KubeObject } from "../../operator/kube/client.ts";
import { resources } from "../../operator/kube/resources.ts";
import { eventually } from "../fixtures/eventually.ts";
import { pluginAs } from "../fixtures/kubectl-agenttype.ts";
import { condition, type Obj } from "../hosts/operator-fixture.ts";
import { KVM_BOOT_TIMEOUT_SECONDS, operatorOnKvmHost } from "./operator-fixture.ts";

const kvmHostSh = resolve(dirname(fileURLToPath(import.meta.url)), "kvm-host.sh");
const world = operatorOnKvmHost({ prefix: "guests", identity: "operator-guests", subresources: true });
const { namespace, virsh } = world;
const NAME = "kvm-agent";

interface SecretObject extends KubeObject {
  data?: Record<string, string>;
}

const owner = (at: Obj) => ({ namespace, name: at.metadata.name, uid: String(at.metadata.uid) });

/** The names of the AgentType's guests, as libvirt lists them. */
async function guestNames(at: Obj): Promise<string[]> {
  return (await world.driver.guests(ownerLabels(owner(at)), within(60_000))).map((g) => g.name).sort();
}

/** `GET` or `PUT` of a key of the agent's memory, from inside the agent's container, as the agent does it. */
async function agentMemory(at: Obj, key: string, value?: unknown): Promise<string> {
  const [agent] = await world.driver.list(
    { ...ownerLabels(owner(at)), [LABEL_ROLE]: ROLE_AGENT },
    within(120_000),
  );
  // The request has a deadline of its own, shorter than the exec's: a sidecar that does not
  // answer shows as the request's TimeoutError on stderr, apart from a slow exec (a guest under
  // TCG beside the other tiers, Node starting in it).
  const init =
    value === undefined
      ? "{ signal: AbortSignal.timeout(30000) }"
      : '{ method: "PUT", headers: { "content-type": "application/json" }, body: process.argv[2], signal: AbortSignal.timeout(30000) }';
  const script = `fetch(process.env.AGENTTYPE_MEMORY_URL + "/" + process.argv[1], ${init}).then(async (r) => console.log(r.status, await r.text()))`;
  const started = Date.now();
  const result = await world.driver.exec(
    agent?.id as string,
    ["node", "-e", script, key, JSON.stringify(value ?? null)],
    within(120_000),
  );
  console.log(
    `memory ${value === undefined ? "GET" : "PUT"} ${key} from the agent's container: ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  expect(result.stderr).toBe("");
  return result.stdout.trim();
}

/** The log lines of one role's containers (agent, sidecar) in the AgentType's guests. */
async function containerLogs(at: Obj, role: typeof ROLE_AGENT | typeof ROLE_SIDECAR): Promise<string[]> {
  const containers = await world.driver.list(
    { ...ownerLabels(owner(at)), [LABEL_ROLE]: role },
    within(120_000),
  );
  const lines: string[] = [];
  for (const c of containers)
    lines.push(...(await world.driver.logs(c.id, {}, within(30_000))).map((l) => l.text));
  return lines;
}

async function agentSays(at: Obj, text: string): Promise<string[]> {
  return eventually(
    `agent says ${text}`,
    async () => {
      const lines = await containerLogs(at, ROLE_AGENT);
      if (lines.some((l) => l.includes(text))) return lines;
      // A failed agent's lines come with the sidecar's, which say why.
      if (lines.some((l) => l.includes("agent failed")))
        return [...lines, ...(await containerLogs(at, ROLE_SIDECAR)).map((l) => `sidecar: ${l}`)];
      return undefined;
    },
    300_000,
    2000,
  );
}

async function keysSecret(name = NAME): Promise<SecretObject> {
  return world.client.get<SecretObject>(resources.secret, namespace, guestKeysSecretName(name));
}

/** Pins `publicKey` (base64) as the host key of `guest` in the keys Secret of AgentType `name`. */
async function pinHostKey(name: string, guest: string, publicKey: string): Promise<void> {
  const s = await keysSecret(name);
  await world.client.replace(resources.secret, {
    ...s,
    data: { ...s.data, [`${guest}.hostPublicKey`]: publicKey },
  } as KubeObject);
}

/** `kubectl patch --type merge` of the KVM host's AgentHost spec, as its admin does it. */
async function patchHostSpec(spec: Record<string, unknown>): Promise<void> {
  await world.kubectl(
    "patch",
    "agenthost",
    world.hostName,
    "--type",
    "merge",
    "-p",
    JSON.stringify({ spec }),
  );
}

describe("runtime kvm through the operator", () => {
  let accel = "";

  it("probes an AgentHost with driver kvm: Reachable, libvirt and QEMU versions, the acceleration", async () => {
    const probed = await eventually(
      "AgentHost Reachable",
      async () => {
        const h = await world.getAgentHost();
        return condition(h, "Reachable")?.status === "True" ? h : undefined;
      },
      180_000,
      1000,
    );
    const versions = probed.status?.versions as Record<string, string>;
    expect(versions.libvirt).toMatch(/^\d+\.\d+/);
    expect(versions.qemu).toMatch(/^\d+\.\d+/);
    expect(["kvm", "tcg"]).toContain(versions.accel);
    accel = versions.accel ?? "";
    console.log(`guests run under ${accel.toUpperCase()} (probed by the operator's KVM driver)`);
    expect(probed.status?.allocation).toEqual({ agents: 0 });
  });

  it("gives each replica a guest of its own, sized from resources, and becomes Ready: the agent reaches the LLM and a tool", async () => {
    const t0 = Date.now();
    await world.client.create(
      resources.agentType,
      namespace,
      // One vCPU (the agent's and sidecar's limits round up to it): TCG guests with more are
      // slower on a busy 2-core machine, not faster. The memory makes the guest larger than 1 GiB.
      world.agentType(NAME, { resources: { limits: { cpu: "300m", memory: "768Mi" } } }),
    );
    const ready = await world.readyAgentType(NAME);
    const started = (await world.events(NAME)).find((e) => e.reason === "ReplicaStarted");
    expect(started?.message).toMatch(
      /^started replica 0 on host kvm-host; started in [\d.]+ s \(volumes [\d.]+ s, group [\d.]+ s, init containers [\d.]+ s, containers [\d.]+ s\); guest booted in [\d.]+ s \(define and start/,
    );
    console.log(
      `apply to Ready through the operator: ${((Date.now() - t0) / 1000).toFixed(1)} s (${started?.message})`,
    );
    expect(ready.status?.readyReplicas).toBe(1);
    const [guest, ...more] = await guestNames(ready);
    expect(more).toEqual([]);
    expect(guest).toMatch(new RegExp(`^${namespace}_${NAME}_0_[0-9a-f]{8}_[0-9a-f]{8}$`));
    // Sized from the agent's and the sidecar's limits (host-plan.ts labels), the guest's own
    // system beside them; the labels on the guest say what placement asked for.
    const [listing] = await world.driver.guests(ownerLabels(owner(ready)), within(60_000));
    const size = guestSize(listing?.labels ?? {}, { vcpus: 1, memoryMiB: 1024 });
    expect(size.vcpus).toBe(1);
    expect(size.memoryMiB).toBeGreaterThan(768 + 256);
    const info = await virsh("dominfo", guest as string);
    expect(info).toMatch(new RegExp(`CPU\\(s\\):\\s+${size.vcpus}\\b`));
    expect(info).toMatch(new RegExp(`Max memory:\\s+${size.memoryMiB * 1024} KiB`));
    // Status shows the guest as libvirt reports it: state, size, CPU time and the QEMU process's RSS.
    const shown = await eventually(
      "the guest in status",
      async () => ((await world.getAgentType(NAME)).status as AgentTypeStatus).hostReplicas?.[0]?.guest,
      60_000,
      1000,
    );
    expect(shown).toMatchObject({
      name: guest,
      state: "running",
      vcpus: size.vcpus,
      memoryMiB: size.memoryMiB,
    });
    expect(shown.cpuSeconds).toBeGreaterThan(0);
    expect(shown.rssMiB).toBeGreaterThan(64);
    expect(Date.parse(shown.usageAt as string)).toBeGreaterThan(t0);

    const text = (await agentSays(ready, "agent done")).join("\n");
    expect(text).not.toContain("agent failed");
    expect(text).toMatch(/llm: .* \[model llama3\.2/);
    expect(text).toContain("tool calculator: 6 * 7 = 42");
    expect(text).toMatch(/memory: runs\/\S+ = \{"question":"6 \* 7","answer":"42","version":"1"\}/);
    // The agent runs in the guest, not on the host: the host's own containerd has no such container.
    const [agent] = await world.driver.list(
      { ...ownerLabels(owner(ready)), "agenttype.dev/role": "agent" },
      within(60_000),
    );
    const onHost = await world.hostConnection.exec(
      `ctr -a ${world.host.state}/containerd/containerd.sock -n k8s.io c ls -q`,
      {},
      within(30_000),
    );
    expect(agent?.id).toMatch(new RegExp(`^${guest}/`));
    expect(onHost.stdout).not.toContain(agent?.id.split("/")[1] as string);
  }, 900_000);

  it("kubectl agenttype logs and exec reach the agent in the guest through the operator's aggregated API", async () => {
    const { plugin } = pluginAs(world);
    const logs = await plugin(["logs", NAME, "--tail", "1"]);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toContain("agent done");
    const started = Date.now();
    const exec = await plugin(
      ["exec", NAME, "--", "node", "-e", "console.log(require('os').hostname()); process.exit(4)"],
      world.kubeconfig,
      240_000,
    );
    console.log(`kubectl agenttype exec in the guest: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(exec.code, exec.stderr).toBe(4);
    // The agent's hostname is its replica's (the pod contract), whatever the guest's is.
    expect(exec.stdout).toMatch(/^\S+\n$/);
    const audit = world.operator.auditLines();
    expect(audit.at(-1)).toMatchObject({ agentType: NAME, replica: 0, exitCode: 4, host: world.hostName });
  }, 600_000);

  it("attach: an interactive agent's console is held by tmux in its guest; keys typed, echo read back, detach, a re-attach replays the scrollback; exec -i -t; its log rotated in the guest", async () => {
    const SHELL = "kvm-shell";
    await world.client.create(
      resources.agentType,
      namespace,
      world.agentType(SHELL, { command: ["/bin/sh"], interactive: true }),
    );
    try {
      await world.readyAgentType(SHELL, 360_000);
      const { pluginOnTerminal } = pluginAs(world);
      const first = pluginOnTerminal(["attach", SHELL], { rows: 24, cols: 80, timeoutMs: 300_000 });
      await first.waitFor(/attached to replica 0 \(AgentHost \S+\) of AgentType kvm-shell/, 120_000);
      // Under software emulation the guest answers slowly: type once the shell is there.
      first.type("echo in-guest-$((6*7))\r");
      await first.waitFor(/(?<!echo )in-guest-42/, 120_000);
      first.type("\x10\x11");
      await first.waitFor(/detached: the agent keeps running/, 60_000);
      expect(await first.exit(120_000)).toBe(0);
      console.log(`$ kubectl agenttype attach ${SHELL}\n${first.output}`);

      const again = pluginOnTerminal(["attach", SHELL], { rows: 24, cols: 80, timeoutMs: 300_000 });
      await again.waitFor(/attached to replica 0/, 120_000);
      await again.waitFor(/in-guest-42[\s\S]*in-guest-42/, 120_000);
      again.type("\x10\x11");
      expect(await again.exit(120_000)).toBe(0);

      const tty = pluginOnTerminal(
        ["exec", "-i", "-t", SHELL, "--", "sh", "-c", "sleep 2; stty size; exit 6"],
        {
          rows: 30,
          cols: 100,
          timeoutMs: 300_000,
        },
      );
      expect(await tty.exit(120_000)).toBe(6);
      expect(tty.output).toContain("30 100");

      // The AgentHost's log rotation reaches into the guest: the shell's output past 16Ki is
      // rotated at a probe, and logs reads the rotated file.
      await patchHostSpec({ containerLogs: { maxSize: "16Ki", maxFiles: 2 } });
      try {
        const { plugin } = pluginAs(world);
        const wrote = await plugin(
          [
            "exec",
            SHELL,
            "--",
            "sh",
            "-c",
            `i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo "line $i ${"x".repeat(80)}"; done > /proc/1/fd/1`,
          ],
          world.kubeconfig,
          300_000,
        );
        expect(wrote.code, wrote.stderr).toBe(0);
        const rotated = await eventually(
          "the operator rotated the shell's log in its guest",
          async () =>
            world.operator
              .logs()
              .split("\n")
              .find((l) => l.includes("rotated agents' log files") && l.includes(`_${SHELL}_0_`)),
          120_000,
          1000,
        );
        console.log(rotated);
        const logs = await plugin(["logs", SHELL], world.kubeconfig, 300_000);
        expect(logs.code, logs.stderr).toBe(0);
        const numbers = logs.stdout
          .split("\n")
          // The first line follows the shell's prompt on its line.
          .flatMap((l) => /\bline (\d+) x{80}/.exec(l)?.[1] ?? [])
          .map(Number);
        expect(numbers).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
      } finally {
        await world.kubectl(
          "patch",
          "agenthost",
          world.hostName,
          "--type",
          "json",
          "-p",
          '[{"op":"remove","path":"/spec/containerLogs"}]',
        );
      }
      const audit = world.operator.auditLines("attach");
      expect(audit).toHaveLength(2);
      expect(audit[0]).toMatchObject({ agentType: SHELL, replica: 0, host: world.hostName });
    } finally {
      await world.client.delete(resources.agentType, namespace, SHELL);
      await world.gone(SHELL);
    }
  }, 900_000);

  it("keeps the guest's keys in a Secret the AgentType owns, and an operator restart adopts the guest with them", async () => {
    const at = await world.getAgentType(NAME);
    const [guest] = await guestNames(at);
    const secret = await keysSecret();
    expect(secret.metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: "AgentType", name: NAME, uid: at.metadata.uid }),
    ]);
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(
      ["clientPrivateKey", "clientPublicKey", "hostPrivateKey", "hostPublicKey"]
        .map((k) => `${guest}.${k}`)
        .sort(),
    );
    const [agentBefore] = await world.driver.list(
      { ...ownerLabels(owner(at)), "agenttype.dev/role": "agent" },
      within(60_000),
    );
    await world.operator.stop();
    await world.startOperator();
    // Ready again without a boot: the same guest and the same agent container.
    await world.readyAgentType(NAME, 120_000);
    expect(await guestNames(at)).toEqual([guest]);
    const [agentAfter] = await world.driver.list(
      { ...ownerLabels(owner(at)), "agenttype.dev/role": "agent" },
      within(60_000),
    );
    expect(agentAfter?.id).toBe(agentBefore?.id);
  }, 300_000);

  it("refuses a guest that presents another host key than the one pinned in the Secret", async () => {
    const at = await world.getAgentType(NAME);
    const [guest] = await guestNames(at);
    const field = `${guest}.hostPublicKey`;
    const secret = await keysSecret();
    const pinned = secret.data?.[field] as string;
    const other = Buffer.from(generateClientKeypair("not-the-guest").publicKey).toString("base64");
    const pin = (value: string) => pinHostKey(NAME, guest as string, value);
    // The host Reachable before the pin changes, so that what the window below sees is the new
    // operator's doing, not a probe of the process before it. A probe that failed here is
    // printed: it is not this test's subject, but a reader of the run wants to know.
    const otherwise = new Set<string>();
    await world.waitFor(
      NAME,
      "AgentHost Reachable True Connected before the pin changes",
      async () => {
        const c = condition(await world.getAgentHost(), "Reachable");
        if (c?.reason !== "Connected") otherwise.add(`Reachable ${c?.status} ${c?.reason}: ${c?.message}`);
        return c?.reason === "Connected" ? c : undefined;
      },
      120_000,
    );
    if (otherwise.size > 0)
      console.log(`before the pin changed, the AgentHost was ${[...otherwise].join("; ")}`);
    // A new operator process holds no connection to the guest: it reads the pin from the Secret.
    await world.operator.stop();
    await pin(other);
    try {
      await world.startOperator();
      const refused = await world.waitFor(
        NAME,
        "Ready=False HostKeyMismatch",
        async () => {
          const a = await world.getAgentType(NAME);
          return condition(a, "Ready")?.reason === "HostKeyMismatch" ? a : undefined;
        },
        180_000,
      );
      expect(condition(refused, "Ready")?.status).toBe("False");
      const events = await world.events(NAME);
      expect(events.some((e) => e.reason === "HostKeyMismatch" && e.type === "Warning")).toBe(true);
      // The guest was refused, not replaced.
      expect(await guestNames(at)).toEqual([guest]);
      // One guest's refused key is its AgentType's problem, not its host's: through more than a
      // probe interval the AgentHost stays Reachable, and its probe still counts the agent.
      const reachable = new Map<string, string>();
      let host: Obj | undefined;
      for (const until = Date.now() + 25_000; Date.now() < until; ) {
        host = await world.getAgentHost();
        const c = condition(host, "Reachable");
        reachable.set(`${c?.status} ${c?.reason}`, `${c?.message}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
      // Another reason says what the probe met: its message, and what the operator saw.
      if ([...reachable.keys()].join() !== "True Connected")
        console.log(
          [...reachable].map(([reason, message]) => `Reachable ${reason}: ${message}`).join("\n"),
          await world.report(NAME, "Reachable True Connected throughout"),
        );
      expect([...reachable.keys()]).toEqual(["True Connected"]);
      expect(host?.status?.allocation).toEqual({ agents: 1 });
    } finally {
      // The right pin back, whatever happened above: the tests after this one use the guest.
      await world.operator.stop();
      await pin(pinned);
      await world.startOperator();
    }
    await world.readyAgentType(NAME, 180_000);
    expect(await guestNames(at)).toEqual([guest]);
  }, 600_000);

  it("keeps the guest through a libvirtd restart: the operator adopts it and replaces nothing", async () => {
    const at = await world.getAgentType(NAME);
    const [guest] = await guestNames(at);
    // The test's own reading of the host. A dropped SSH connection (CI, a loaded machine: "closed
    // the channel without an exit status") is a NetworkError, retryable as the operator retries
    // it; anything else fails the test.
    const agentIds = async (): Promise<string[]> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return (
            await world.driver.list(
              { ...ownerLabels(owner(at)), "agenttype.dev/role": "agent" },
              within(120_000),
            )
          ).map((c) => c.id);
        } catch (err) {
          if (!(isDriverError(err) && err.code === "Network") || attempt === 5) throw err;
          console.log(`listing the agent containers again (attempt ${attempt + 1}): ${err.message}`);
          await new Promise((r) => setTimeout(r, 2_000));
        }
      }
    };
    const before = await agentIds();
    const recreated = async () =>
      (await world.events(NAME)).filter((e) => e.reason === "ReplicaRecreated").length;
    const recreatedBefore = await recreated();
    await promisify(execFile)(kvmHostSh, ["libvirtd-restart"], { timeout: 120_000 });
    await world.driver.close();
    // Two placement rounds at least (every 10 s while steady), both after the restart.
    await new Promise((r) => setTimeout(r, 25_000));
    const ready = await world.readyAgentType(NAME, 120_000);
    const after = await agentIds();
    // A replaced agent container is a failure: say what the operator saw before the teardown.
    if (JSON.stringify(after) !== JSON.stringify(before))
      console.log(await world.report(NAME, "the same agent container after libvirtd's restart"));
    expect(await guestNames(ready)).toEqual([guest]);
    expect(after).toEqual(before);
    expect(await recreated()).toBe(recreatedBefore);
  }, 300_000);

  it("rolls a spec change new-first: the new guest boots beside the old one, then the old one goes", async () => {
    const at = await world.getAgentType(NAME);
    const [oldGuest] = await guestNames(at);
    const spec = at.spec as Record<string, unknown>;
    await world.client.replace(resources.agentType, {
      ...at,
      spec: {
        ...spec,
        env: [
          { name: "OPENAI_API_KEY", value: "not-needed" },
          { name: "AGENT_VERSION", value: "2" },
        ],
      },
    } as KubeObject);
    // Both guests at once, for a while: the old one still runs while the new one boots.
    const both = await world.waitFor(
      NAME,
      "two guests at once",
      async () => {
        const names = await guestNames(at);
        return names.length === 2 ? names : undefined;
      },
      300_000,
    );
    expect(both).toContain(oldGuest);
    const rolled = await world.readyAgentType(NAME, 600_000);
    const after = await world.waitFor(
      NAME,
      "the old guest gone",
      async () => {
        const names = await guestNames(rolled);
        return names.length === 1 && !names.includes(oldGuest as string) ? names : undefined;
      },
      120_000,
    );
    expect(both).toContain(after[0]);
    expect(await agentSays(rolled, "agent done (version 2)")).toContain("agent done (version 2)");
    const events = await world.events(NAME);
    expect(events.some((e) => e.reason === "ReplicaUpdated")).toBe(true);
    // The old guest's keys went with it.
    expect(Object.keys((await keysSecret()).data ?? {}).filter((k) => k.startsWith(`${oldGuest}.`))).toEqual(
      [],
    );
  }, 900_000);

  it("suspends with spec.suspend (Suspended=True, Ready=False Suspended) and resumes where it was, the agent's memory included", async () => {
    const at = await world.getAgentType(NAME);
    const [guest] = await guestNames(at);
    const agentId = async () =>
      (
        await world.driver.list({ ...ownerLabels(owner(at)), "agenttype.dev/role": "agent" }, within(120_000))
      )[0]?.id as string;
    const counter = async () => {
      const read = await world.driver.exec(await agentId(), ["cat", "/tmp/counter"], within(60_000));
      if (read.exitCode !== 0 || read.stdout.trim() === "")
        throw new Error(
          `cat /tmp/counter: exit ${read.exitCode}, stdout "${read.stdout}", stderr "${read.stderr}"`,
        );
      return Number(read.stdout.trim());
    };
    // A counter that lives only in a process's memory: a reboot would start it again at 1.
    await world.driver.exec(
      await agentId(),
      // Written aside and renamed: a read never sees the file between truncation and write
      // (seen once, right after a resume: an empty read).
      [
        "sh",
        "-c",
        "i=0; while :; do i=$((i+1)); echo $i > /tmp/counter.next; mv /tmp/counter.next /tmp/counter; sleep 0.2; done >/dev/null 2>&1 &",
      ],
      within(60_000),
    );
    await eventually("the counter counts", async () => (await counter()) > 3, 60_000, 500);
    const setSuspend = async (value: boolean) => {
      const a = await world.getAgentType(NAME);
      await world.client.replace(resources.agentType, {
        ...a,
        spec: { ...(a.spec as Record<string, unknown>), suspend: value },
      } as KubeObject);
    };
    const t0 = Date.now();
    await setSuspend(true);
    const suspended = await world.waitFor(
      NAME,
      "Suspended=True",
      async () => {
        const a = await world.getAgentType(NAME);
        const c = condition(a, "Suspended");
        return c?.status === "True" && c.observedGeneration === a.metadata.generation ? a : undefined;
      },
      300_000,
    );
    const suspendS = (Date.now() - t0) / 1000;
    expect(condition(suspended, "Ready")).toMatchObject({ status: "False", reason: "Suspended" });
    expect(suspended.status?.hostReplicas).toEqual([
      expect.objectContaining({
        replica: 0,
        state: "suspended",
        guest: expect.objectContaining({ name: guest, state: "saved" }),
      }),
    ]);
    expect((await virsh("domstate", guest as string)).trim()).toBe("shut off");
    expect(await virsh("dominfo", guest as string)).toMatch(/Managed save:\s+yes/);
    await world.driver.close();
    const t1 = Date.now();
    await setSuspend(false);
    const resumed = await world.readyAgentType(NAME, 300_000);
    const resumeS = (Date.now() - t1) / 1000;
    console.log(
      `through the operator: suspend ${suspendS.toFixed(1)} s, resume to Ready ${resumeS.toFixed(1)} s`,
    );
    expect(condition(resumed, "Suspended")).toMatchObject({ status: "False" });
    expect(await guestNames(resumed)).toEqual([guest]);
    const resumedAt = await counter();
    // The loop went on from where it was: far above 1, and it keeps counting.
    expect(resumedAt).toBeGreaterThan(3);
    await eventually("the counter counts on", async () => (await counter()) > resumedAt, 60_000, 500);
    const events = await world.events(NAME);
    expect(events.map((e) => e.reason)).toEqual(expect.arrayContaining(["Suspended", "Resumed"]));
    // Boots, a roll's removal, libvirtd's restart, saving and starting the guest: all the
    // operator's doing, none told as a guest's Warning.
    expect(events.filter((e) => /^Guest/.test(e.reason)).map((e) => e.reason)).toEqual([]);
  }, 900_000);

  it("refuses spec.suspend on a runtime that cannot resume where it was, naming the field", async () => {
    const refused = world.client.create(
      resources.agentType,
      namespace,
      world.agentType("not-suspendable", {
        runtime: { type: "containerd", hostRef: { name: world.hostName } },
        suspend: true,
      }),
    );
    await expect(refused).rejects.toThrow(/spec\.suspend.*suspend applies only to runtime kvm/s);
  });

  it("deletes through the finalizer: no guest, overlay or key is left", async () => {
    const at = await world.getAgentType(NAME);
    await world.client.delete(resources.agentType, namespace, NAME);
    await world.gone(NAME, 300_000);
    expect(await guestNames(at)).toEqual([]);
    expect(await world.driver.guests(managedFilter(), within(60_000))).toEqual([]);
    const left = await world.hostConnection.exec(`ls -A ${world.stateDir}`, {}, within(30_000));
    expect(left.stdout.trim()).toBe("");
    const secret = await keysSecret().catch(() => undefined);
    expect(Object.keys(secret?.data ?? {})).toEqual([]);
    const events = await world.events(NAME);
    expect(events.some((e) => e.reason === "HostCleanedUp")).toBe(true);
  }, 600_000);

  it("keeps persistent memory on a data disk: through a guest destroyed from outside (GuestStopped, replaced), kubectl scale 1 → 2 → 1 and, with Retain, the AgentType made again; Delete removes it, its guest refusing the operator's connection", async () => {
    const MEMO = "kvm-memo";
    const disk = `${world.stateDir}/data/${namespace}_${MEMO}_0-memory.qcow2`;
    const memo = (retainPolicy: "Retain" | "Delete") =>
      world.agentType(MEMO, { memory: { type: "persistent", size: "64Mi", retainPolicy } });
    const onHost = async (command: string) =>
      (await world.hostConnection.exec(command, {}, within(30_000))).stdout.trim();
    await world.client.create(resources.agentType, namespace, memo("Retain"));
    const first = await world.readyAgentType(MEMO);
    expect(await onHost(`ls ${world.stateDir}/data`)).toContain(`${namespace}_${MEMO}_0-memory.qcow2`);
    expect(await agentMemory(first, "notes/first", { written: "before" })).toMatch(/^20[01] /);
    expect(await agentMemory(first, "notes/first")).toContain('"written":"before"');

    // Destroyed from outside: libvirt's event channel (reopened after the libvirtd restart above)
    // tells the operator at once, which says so; the replica boots again with the same disk.
    const [guest] = await guestNames(first);
    const guestWarnings = async () => (await world.events(MEMO)).filter((e) => /^Guest/.test(e.reason));
    expect(await guestWarnings()).toEqual([]);
    const destroyedAt = Date.now();
    await virsh("destroy", guest as string);
    const told = await eventually("GuestStopped", async () => (await guestWarnings())[0], 30_000, 250);
    console.log(
      `virsh destroy to the GuestStopped Event: ${((Date.now() - destroyedAt) / 1000).toFixed(1)} s`,
    );
    expect(told).toMatchObject({ type: "Warning", reason: "GuestStopped" });
    expect(told.message).toBe(
      `guest ${guest} of replica 0 on host kvm-host: Stopped Destroyed, not done by the operator`,
    );
    const recreated = await world.waitFor(
      MEMO,
      "ReplicaRecreated",
      async () => (await world.events(MEMO)).find((e) => e.reason === "ReplicaRecreated"),
      600_000,
    );
    expect(recreated.type).toBe("Warning");
    expect(recreated.message).toMatch(
      new RegExp(
        `its guest ${guest} is shut off; started in [\\d.]+ s \\(volumes [\\d.]+ s, group [\\d.]+ s, init containers [\\d.]+ s, containers [\\d.]+ s\\); guest booted in [\\d.]+ s`,
      ),
    );
    const replaced = await world.readyAgentType(MEMO, 600_000);
    expect(await guestNames(replaced)).toEqual([guest]);
    // The test's own driver still holds a connection pinned to the old guest's key: drop it.
    await world.driver.close();
    expect(await agentMemory(replaced, "notes/first")).toContain('"written":"before"');

    // kubectl scale 1 → 2 → 1: a guest per replica, each with its disk; scaling down keeps
    // replica 1's disk, as a StatefulSet keeps its claims.
    await world.kubectl("-n", namespace, "scale", "agenttype", MEMO, "--replicas=2");
    const two = await world.waitFor(
      MEMO,
      "two replicas ready",
      async () => {
        const a = await world.getAgentType(MEMO);
        return a.status?.readyReplicas === 2 && condition(a, "Ready")?.status === "True" ? a : undefined;
      },
      600_000,
    );
    const names = await guestNames(two);
    expect(names).toHaveLength(2);
    expect(names.filter((n) => n.includes(`_${MEMO}_1_`))).toHaveLength(1);
    await world.kubectl("-n", namespace, "scale", "agenttype", MEMO, "--replicas=1");
    await world.waitFor(
      MEMO,
      "one guest",
      async () => {
        const left = await guestNames(two);
        return left.length === 1 && left[0]?.includes(`_${MEMO}_0_`) ? left : undefined;
      },
      300_000,
    );
    expect((await world.readyAgentType(MEMO, 300_000)).status?.replicas).toBe(1);
    expect(
      (await onHost(`ls ${world.stateDir}/data`)).split("\n").filter((f) => f.endsWith(".qcow2")),
    ).toEqual([`${namespace}_${MEMO}_0-memory.qcow2`, `${namespace}_${MEMO}_1-memory.qcow2`]);

    // Deleted with Retain: the disk stays; the AgentType made again under its name finds it.
    await world.client.delete(resources.agentType, namespace, MEMO);
    await world.gone(MEMO, 300_000);
    expect(await guestNames(replaced)).toEqual([]);
    expect(await onHost(`ls ${disk}`)).toBe(disk);
    const cleaned = (await world.events(MEMO)).find((e) => e.reason === "HostCleanedUp");
    expect(cleaned?.message).toMatch(/its persistent memory stays there \(retainPolicy Retain\)/);
    await world.client.create(resources.agentType, namespace, memo("Delete"));
    const again = await world.readyAgentType(MEMO);
    expect(again.metadata.uid).not.toBe(first.metadata.uid);
    expect(await agentMemory(again, "notes/first")).toContain('"written":"before"');

    // Deleted with Delete while its guest refuses the operator (another host key pinned, and an
    // operator process that holds no connection to it): libvirt removes the guest all the same,
    // the Event says so, and nothing of it is left on the host, replica 1's disk (kept by the
    // AgentType deleted before, and never run by this one) included.
    const [refusing] = await guestNames(again);
    await world.operator.stop();
    await pinHostKey(
      MEMO,
      refusing as string,
      Buffer.from(generateClientKeypair("not-the-guest").publicKey).toString("base64"),
    );
    await world.startOperator();
    await world.client.delete(resources.agentType, namespace, MEMO);
    await world.gone(MEMO, 300_000);
    expect(await onHost(`ls -A ${world.stateDir}/data`)).toBe("");
    expect(await world.driver.guests(managedFilter(), within(60_000))).toEqual([]);
    const cleanedUp = (await world.events(MEMO)).filter((e) => e.reason === "HostCleanedUp");
    expect(cleanedUp.map((e) => e.message)).toContainEqual(
      expect.stringMatching(
        new RegExp(`; guest ${refusing} could not be reached \\(.+\\): libvirt shut it down and removed it$`),
      ),
    );
  }, 1_500_000);

  it("replaces a guest whose boot hangs: past the AgentHost's spec.kvm.bootTimeoutSeconds it is removed, a Warning says at which stage, and a new guest boots", async () => {
    const STALL = "kvm-stall";
    const bootTimeout = async (seconds: number) => {
      await patchHostSpec({ kvm: { bootTimeoutSeconds: seconds } });
      // The operator reads the host's settings from the same informer as its probe.
      await eventually(
        "the AgentHost probed with its new settings",
        async () => {
          const host = await world.getAgentHost();
          return host.status?.observedGeneration === host.metadata.generation;
        },
        120_000,
        500,
      );
    };
    await bootTimeout(60);
    try {
      const created = await world.client.create<Obj>(resources.agentType, namespace, world.agentType(STALL));
      // Paused as soon as it runs, the guest makes no progress, as a boot that hangs.
      const hung = await eventually(
        "kvm-stall's guest running",
        async () => (await world.driver.guests(ownerLabels(owner(created)), within(30_000)))[0],
        120_000,
        200,
      );
      const hungUuid = (await virsh("domuuid", hung.name)).trim();
      await virsh("suspend", hung.name);
      const warned = await world.waitFor(
        STALL,
        "a Warning that its guest did not come up",
        async () => (await world.events(STALL)).find((e) => /did not come up/.test(e.message)),
        240_000,
      );
      console.log(`${warned.type} ${warned.reason}: ${warned.message}`);
      expect(warned).toMatchObject({ type: "Warning", reason: "CreationFailed" });
      expect(warned.message).toContain(
        `guest ${hung.name} did not come up within its boot timeout of 60 s (still waiting for its `,
      );
      expect(warned.message).toContain("it was removed and boots anew");
      const ready = await world.readyAgentType(STALL, 300_000);
      const [replaced] = await world.driver.guests(ownerLabels(owner(ready)), within(30_000));
      expect(replaced?.state).toBe("running");
      expect((await virsh("domuuid", replaced?.name as string)).trim()).not.toBe(hungUuid);
    } finally {
      await bootTimeout(KVM_BOOT_TIMEOUT_SECONDS);
      await world.client.delete(resources.agentType, namespace, STALL);
      await world.gone(STALL);
    }
  }, 900_000);
});
