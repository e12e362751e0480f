// The libvirt domain of one guest, built from what the driver decided (pure): direct kernel
// boot of the guest image's kernel from a copy-on-write overlay, vCPUs and memory, one NIC on
// the host's libvirt network, a serial console logged to a file, the seed as SMBIOS OEM strings,
// and the guest's labels in the domain's metadata, read back by `parseGuestMetadata`.
import { createHash } from "node:crypto";
import type { Labels } from "../config.ts";

/** The XML namespace of our metadata element in a domain. */
export const METADATA_NS = "https://agenttype.dev/kvm/guest/v1";

export type Acceleration = "kvm" | "tcg";

export interface GuestSeed {
  /** The guest's sshd host key: OpenSSH private key text. */
  hostKey: string;
  /** The operator's authorized_keys line for this guest. */
  authorizedKey: string;
  hostname: string;
}

export interface DomainSpec {
  name: string;
  vcpus: number;
  memoryMiB: number;
  accel: Acceleration;
  /** The guest's overlay disk (qcow2 backed by the base image). */
  disk: string;
  /** The replica's data disk (persistent memory), which outlives its guests: vdb, serial DATA_DISK_SERIAL. */
  dataDisk?: string;
  kernel: string;
  initrd: string;
  /** The libvirt network the NIC attaches to. */
  network: string;
  /** The NIC's MAC address: fixed by the driver, so the guest's DHCP lease is found by it. */
  mac: string;
  /** File the serial console is written to. */
  consoleLog: string;
  seed: GuestSeed;
  labels: Labels;
}

/** A guest's MAC address from its name: QEMU's 52:54:00 prefix and three bytes of a hash. */
export function guestMac(name: string): string {
  const hash = createHash("sha256").update(name).digest();
  return `52:54:00:${[...hash.subarray(0, 3)].map((b) => b.toString(16).padStart(2, "0")).join(":")}`;
}

/**
 * The guest's kernel command line: `quiet` keeps the serial console (slow under TCG) short, and
 * without mitigations an emulated CPU boots much faster; the guest runs one agent's group only.
 * The NIC keeps the kernel's name (eth0, `net.ifnames=0`), the one the image's DHCP client asks
 * on as soon as systemd starts (the image runs no udev to rename it).
 */
export const KERNEL_ARGS =
  "root=/dev/vda rw console=ttyS0 quiet systemd.show_status=false panic=-1 mitigations=off net.ifnames=0";

const SEED_PREFIX = "agenttype:";

/** The data disk's serial: the guest finds it by the serial file of each /sys/block/vd? entry. */
export const DATA_DISK_SERIAL = "agenttype-data";

export function escapeXml(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&apos;");
}

/** The seed's OEM strings, each `agenttype:NAME=BASE64`, as agenttype-seed in the guest reads them. */
export function seedStrings(seed: GuestSeed): string[] {
  const entry = (name: string, value: string) =>
    `${SEED_PREFIX}${name}=${Buffer.from(value).toString("base64")}`;
  return [
    entry("host-key", seed.hostKey),
    entry("authorized-key", seed.authorizedKey),
    entry("hostname", seed.hostname),
  ];
}

export function domainXml(spec: DomainSpec): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(spec.name))
    throw new Error(`domain name ${JSON.stringify(spec.name)} must be letters, digits, '_', '.' or '-'`);
  if (!Number.isInteger(spec.vcpus) || spec.vcpus < 1)
    throw new Error(`vcpus must be at least 1, got ${spec.vcpus}`);
  if (!Number.isInteger(spec.memoryMiB) || spec.memoryMiB < 128)
    throw new Error(`memory must be at least 128 MiB, got ${spec.memoryMiB}`);
  if (!/^52:54:00(:[0-9a-f]{2}){3}$/.test(spec.mac))
    throw new Error(`mac ${JSON.stringify(spec.mac)} must be a 52:54:00:xx:xx:xx address`);
  const x = escapeXml;
  const labels = Object.entries(spec.labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => `      <at:label key="${x(key)}" value="${x(value)}"/>`)
    .join("\n");
  const oem = seedStrings(spec.seed)
    .map((s) => `      <entry>${x(s)}</entry>`)
    .join("\n");
  // TCG is libvirt's domain type "qemu"; it emulates a CPU model, KVM passes the host's through.
  const cpu =
    spec.accel === "kvm"
      ? `<cpu mode="host-passthrough"/>`
      : `<cpu mode="custom"><model>qemu64</model></cpu>`;
  return `<domain type="${spec.accel === "kvm" ? "kvm" : "qemu"}">
  <name>${x(spec.name)}</name>
  <metadata>
    <at:guest xmlns:at="${METADATA_NS}">
${labels}
    </at:guest>
  </metadata>
  <memory unit="MiB">${spec.memoryMiB}</memory>
  <vcpu>${spec.vcpus}</vcpu>
  <sysinfo type="smbios">
    <oemStrings>
${oem}
    </oemStrings>
  </sysinfo>
  <os>
    <type arch="x86_64" machine="pc">hvm</type>
    <kernel>${x(spec.kernel)}</kernel>
    <initrd>${x(spec.initrd)}</initrd>
    <cmdline>${x(KERNEL_ARGS)}</cmdline>
    <smbios mode="sysinfo"/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  ${cpu}
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type="file" device="disk">
      <driver name="qemu" type="qcow2" cache="unsafe" discard="unmap"/>
      <source file="${x(spec.disk)}"/>
      <target dev="vda" bus="virtio"/>
    </disk>
${
  spec.dataDisk === undefined
    ? ""
    : `    <disk type="file" device="disk">
      <driver name="qemu" type="qcow2" discard="unmap"/>
      <source file="${x(spec.dataDisk)}"/>
      <target dev="vdb" bus="virtio"/>
      <serial>${DATA_DISK_SERIAL}</serial>
    </disk>
`
}    <interface type="network">
      <mac address="${x(spec.mac)}"/>
      <source network="${x(spec.network)}"/>
      <model type="virtio"/>
      <rom enabled="no"/>
    </interface>
    <serial type="file">
      <source path="${x(spec.consoleLog)}"/>
      <target port="0"/>
    </serial>
    <memballoon model="none"/>
    <rng model="virtio">
      <backend model="random">/dev/urandom</backend>
    </rng>
  </devices>
</domain>
`;
}

/** The labels in a domain's metadata element (`virsh metadata DOMAIN URI` prints it). */
export function parseGuestMetadata(xml: string): Labels {
  const labels: Labels = {};
  const fromXml = (s: string) =>
    s
      .replaceAll("&lt;", "<")
      .replaceAll("&gt;", ">")
      .replaceAll("&quot;", '"')
      .replaceAll("&apos;", "'")
      .replaceAll("&amp;", "&");
  for (const m of xml.matchAll(/<(?:\w+:)?label\s+key=(["'])(.*?)\1\s+value=(["'])(.*?)\3\s*\/>/g))
    labels[fromXml(m[2] ?? "")] = fromXml(m[4] ?? "");
  return labels;
}
