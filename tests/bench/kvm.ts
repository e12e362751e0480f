// `make bench-kvm`: an agent in a KVM guest, timed from the start of its replica (what the
// operator does on apply) to the agent Ready (its sidecar and agent containers running in a
// booted guest), split into the guest's boot (define and start, DHCP address, sshd with the
// pinned key, containerd ready) and the agent's part (volumes, wrapper, sidecar and agent
// started in the guest); then the guest suspended to disk and resumed. The acceleration the
// driver's probe chose is printed: targets differ (KVM: apply to Ready <= 10 s, resume <= 2 s;
// TCG: <= 60 s and <= 10 s). Medians over rounds; the KVM host (tests/guests/kvm-host.sh) is
// brought up when it is not running and taken down again. The last line is machine-readable.
//   node tests/bench/kvm.ts [--rounds 3]
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { within } from "../../operator/drivers/call.ts";
import { managedFilter, ownerLabels } from "../../operator/drivers/labels.ts";
import { removeReplicas, startReplica } from "../../operator/drivers/replica.ts";
import {
  hostConnection,
  kvmDriver,
  kvmHostFrom,
  MemoryKeyStore,
  parseEnv,
  sampleReplica,
  upstreams,
} from "../guests/guest-env.ts";

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
const host = kvmHostFrom(parseEnv(sh("env")));
const ssh = hostConnection(host);
const keys = new MemoryKeyStore();
const driver = kvmDriver(host, ssh, keys);
const servers = await upstreams(host);
const rows: { ready: number; boot: number; agent: number; suspend: number; resume: number }[] = [];
try {
  await removeReplicas(driver, managedFilter(), 1_000, within(300_000));
  const { accel, reason } = await driver.accel(within(60_000));
  console.log(`bench-kvm: guests run under ${accel.toUpperCase()} (${reason}); ${ROUNDS} round(s)`);
  for (let round = 1; round <= ROUNDS; round++) {
    const { owner, plan } = sampleReplica("bench-agent", 0, servers);
    const t0 = Date.now();
    const started = await startReplica(driver, plan, within(600_000));
    const ready = Date.now() - t0;
    const guest = started.groupId.split("/")[0] as string;
    const b = driver.bootTimes.get(guest);
    if (b === undefined) throw new Error(`no boot times for ${guest}`);
    const boot = b.start + b.address + b.ssh + b.containerd;
    const s0 = Date.now();
    await driver.suspend(ownerLabels(owner), within(300_000));
    const suspend = Date.now() - s0;
    const r0 = Date.now();
    await driver.resume(ownerLabels(owner), within(300_000));
    const resume = Date.now() - r0;
    rows.push({ ready, boot, agent: ready - boot, suspend, resume });
    console.log(
      `round ${round}: apply to Ready ${seconds(ready)} s (boot ${seconds(boot)} s: start ${seconds(b.start)}, address ${seconds(b.address)}, sshd ${seconds(b.ssh)}, containerd ${seconds(b.containerd)}; agent ${seconds(ready - boot)} s), suspend ${seconds(suspend)} s, resume ${seconds(resume)} s`,
    );
    await removeReplicas(driver, ownerLabels(owner), 1_000, within(300_000));
  }
} finally {
  await removeReplicas(driver, managedFilter(), 1_000, within(300_000)).catch(() => {});
  await driver.close();
  await servers.close();
  ssh.close();
  if (!wasUp) sh("down");
}
const { accel } = await driver.accel(within(60_000)).catch(() => ({ accel: "unknown" }));
const m = (k: keyof (typeof rows)[number]) => seconds(median(rows.map((r) => r[k])));
console.log(
  `bench-kvm accel=${accel} apply_to_ready_s=${m("ready")} boot_s=${m("boot")} agent_s=${m("agent")} suspend_s=${m("suspend")} resume_s=${m("resume")} rounds=${ROUNDS}`,
);
