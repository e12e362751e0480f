// `make bench-kvm`: an agent in a KVM guest along the user's path: an AgentType with runtime kvm
// created on the API server, timed until the operator says Ready (its sidecar and agent running
// in a booted guest), split into the guest's boot (define and start, DHCP lease, sshd with the
// pinned key, containerd ready: the operator's ReplicaStarted Event reports the stages its
// driver measured) and the rest (the operator's work and the agent's containers); then
// `spec.suspend: true` until Suspended=True, and cleared until Ready again. The acceleration the
// operator's probe of the AgentHost chose is printed: targets differ (KVM: apply to Ready
// <= 10 s, resume <= 2 s; TCG: <= 60 s and <= 10 s). Medians over rounds. The KVM host
// (tests/guests/kvm-host.sh) and the guest tier's control plane are brought up when they are not
// running and taken down again. The last line is machine-readable.
//   node tests/bench/kvm.ts [--rounds 3]
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { KubeObject } from "../../operator/kube/client.ts";
import { resources } from "../../operator/kube/resources.ts";
import { controlPlaneUp } from "../fixtures/control-plane.ts";
import { eventually } from "../fixtures/eventually.ts";
import { guestsControlPlane } from "../guests/global-setup.ts";
import { kvmHostFrom, parseEnv } from "../guests/guest-env.ts";
import { kvmWorld } from "../guests/operator-fixture.ts";
import { condition, type Obj } from "../hosts/operator-fixture.ts";

const { values: args } = parseArgs({ options: { rounds: { type: "string", default: "3" } } });
const ROUNDS = Number(args.rounds);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1)
  throw new Error(`--rounds: expected a whole number >= 1, got ${args.rounds}`);

const kvmHostSh = join(import.meta.dirname, "..", "guests", "kvm-host.sh");
const sh = (...a: string[]) =>
  execFileSync(kvmHostSh, a, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 1_800_000 });
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const seconds = (ms: number) => (ms / 1000).toFixed(1);

let wasUp = true;
try {
  sh("status");
} catch {
  wasUp = false;
}
sh("up");
// The containerd driver in the guests speaks the CRI from its protocol definition, fetched once.
process.env.AGENTTYPE_CRI_PROTO = execFileSync(
  join(import.meta.dirname, "..", "..", "operator", "drivers", "containerd", "cri-proto.sh"),
  { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 300_000 },
).trim();
const controlPlaneDown = await controlPlaneUp(guestsControlPlane);
const world = kvmWorld(kvmHostFrom(parseEnv(sh("env"))), { prefix: "bench-kvm", identity: "bench-kvm" });
const rows: { ready: number; boot: number; agent: number; suspend: number; resume: number }[] = [];
let accel = "unknown";
try {
  await world.start();
  const host = await eventually(
    "AgentHost Reachable",
    async () => {
      const h = await world.client.get<Obj>(resources.agentHost, undefined, world.hostName);
      return condition(h, "Reachable")?.status === "True" ? h : undefined;
    },
    300_000,
    500,
  );
  accel = (host.status?.versions as Record<string, string> | undefined)?.accel ?? "unknown";
  console.log(
    `bench-kvm: guests run under ${accel.toUpperCase()} (${condition(host, "Reachable")?.message}); ${ROUNDS} round(s)`,
  );
  const whenCondition = (name: string, type: string, status: string) =>
    eventually(
      `${name} ${type}=${status}`,
      async () => {
        const a = await world.getAgentType(name);
        const c = condition(a, type);
        return c?.status === status && c.observedGeneration === a.metadata.generation ? a : undefined;
      },
      900_000,
      250,
    );
  const setSuspend = async (name: string, value: boolean) => {
    const a = await world.getAgentType(name);
    await world.client.replace(resources.agentType, {
      ...a,
      spec: { ...(a.spec as Record<string, unknown>), suspend: value },
    } as KubeObject);
  };
  for (let round = 1; round <= ROUNDS; round++) {
    const name = `bench-agent-${round}`;
    const t0 = Date.now();
    await world.client.create(resources.agentType, world.namespace, world.agentType(name));
    await whenCondition(name, "Ready", "True");
    const ready = Date.now() - t0;
    const started = (await world.events(name)).find((e) => e.reason === "ReplicaStarted")?.message ?? "";
    const booted = /guest booted in ([\d.]+) s \(([^)]*)\)/.exec(started);
    if (booted === null) throw new Error(`no boot stages in the ReplicaStarted Event: ${started}`);
    const boot = Number(booted[1]) * 1000;
    const steps =
      /started in ([\d.]+) s \(volumes ([\d.]+) s, group ([\d.]+) s, init containers ([\d.]+) s, containers ([\d.]+) s\)/.exec(
        started,
      );
    if (steps === null) throw new Error(`no start steps in the ReplicaStarted Event: ${started}`);
    const [startTotal, volumesStep, groupStep, initStep, containersStep] = steps
      .slice(1)
      .map((x) => Number(x) * 1000) as [number, number, number, number, number];
    const s0 = Date.now();
    await setSuspend(name, true);
    await whenCondition(name, "Suspended", "True");
    const suspend = Date.now() - s0;
    const r0 = Date.now();
    await setSuspend(name, false);
    await whenCondition(name, "Ready", "True");
    const resume = Date.now() - r0;
    rows.push({ ready, boot, agent: ready - boot, suspend, resume });
    // The agent part: the start's steps in the guest (the volumes' step holds the boot), and the
    // rest: the operator before and after the start, and the status reaching the API server.
    const inGuest = {
      volumes: volumesStep - boot,
      group: groupStep,
      init: initStep,
      containers: containersStep,
    };
    const operator = ready - startTotal;
    console.log(
      `round ${round}: apply to Ready ${seconds(ready)} s (boot ${seconds(boot)} s: ${booted[2]}; the rest ${seconds(ready - boot)} s: volumes ${seconds(inGuest.volumes)} s, sandbox ${seconds(inGuest.group)} s, init container run (sidecar and agent created beside it) ${seconds(inGuest.init)} s, sidecar and agent started ${seconds(inGuest.containers)} s, the operator before and after ${seconds(operator)} s), suspend to Suspended ${seconds(suspend)} s, resume to Ready ${seconds(resume)} s`,
    );
    await world.client.delete(resources.agentType, world.namespace, name);
    await world.gone(name, 300_000);
  }
} finally {
  await world.stop().catch((error: unknown) => console.error(`bench-kvm: cleaning up: ${String(error)}`));
  await controlPlaneDown();
  if (!wasUp) sh("down");
}
const m = (k: keyof (typeof rows)[number]) => seconds(median(rows.map((r) => r[k])));
console.log(
  `bench-kvm accel=${accel} apply_to_ready_s=${m("ready")} boot_s=${m("boot")} agent_s=${m("agent")} suspend_s=${m("suspend")} resume_s=${m("resume")} rounds=${ROUNDS}`,
);
