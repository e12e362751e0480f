import { describe, expect, it } from "vitest";
import { replicaLabels, replicaName } from "../labels.ts";
import { probeCommand, probeVerdict } from "./accel.ts";
import {
  type DomainSpec,
  domainXml,
  guestMac,
  KERNEL_ARGS,
  parseGuestMetadata,
  seedStrings,
} from "./domain-xml.ts";
import {
  dataDiskOf,
  GUEST_OVERHEAD_MIB,
  guestHostname,
  guestMayMatch,
  guestName,
  guestSize,
  splitId,
} from "./driver.ts";
import {
  parseDomainState,
  parseDomifaddr,
  parseGuestList,
  parseLifecycleEvent,
  virshError,
} from "./virsh.ts";

const owner = { namespace: "team-a", name: "coder", uid: "3f1c2b9a-0000-4000-8000-000000000001" };

const spec: DomainSpec = {
  name: "team-a_coder_0_3f1c2b9a",
  vcpus: 2,
  memoryMiB: 1536,
  accel: "tcg",
  disk: "/var/lib/agenttype/kvm/g/disk.qcow2",
  kernel: "/images/vmlinuz",
  initrd: "/images/initrd.img",
  network: "default",
  mac: "52:54:00:0a:0b:0c",
  consoleLog: "/var/lib/agenttype/kvm/g/console.log",
  seed: {
    hostKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n",
    authorizedKey: "ssh-ed25519 AAAA op",
    hostname: "coder-0",
  },
  labels: { ...replicaLabels(owner, 0), "x/odd": "a<b" },
};

describe("domainXml", () => {
  it("boots the image's kernel under TCG from the overlay, with the resources, network and console", () => {
    const xml = domainXml(spec);
    expect(xml).toContain('<domain type="qemu">');
    expect(xml).toContain("<name>team-a_coder_0_3f1c2b9a</name>");
    expect(xml).toContain('<memory unit="MiB">1536</memory>');
    expect(xml).toContain("<vcpu>2</vcpu>");
    expect(xml).toContain("<kernel>/images/vmlinuz</kernel>");
    expect(xml).toContain("<initrd>/images/initrd.img</initrd>");
    expect(xml).toContain(`<cmdline>${KERNEL_ARGS}</cmdline>`);
    expect(xml).toContain('<source file="/var/lib/agenttype/kvm/g/disk.qcow2"/>');
    expect(xml).toContain('<driver name="qemu" type="qcow2"');
    expect(xml).toContain('<source network="default"/>');
    expect(xml).toContain('<mac address="52:54:00:0a:0b:0c"/>');
    expect(xml).toContain('<serial type="file">');
    expect(xml).toContain('<source path="/var/lib/agenttype/kvm/g/console.log"/>');
    expect(xml).toContain("qemu64");
  });

  it("attaches the replica's data disk as vdb with the serial the guest finds it by, only when it has one", () => {
    expect(domainXml(spec)).not.toContain("vdb");
    const xml = domainXml({ ...spec, dataDisk: "/var/lib/agenttype/kvm/data/team-a_coder_0-memory.qcow2" });
    expect(xml).toMatch(
      /<source file="\/var\/lib\/agenttype\/kvm\/data\/team-a_coder_0-memory.qcow2"\/>\s*<target dev="vdb" bus="virtio"\/>\s*<serial>agenttype-data<\/serial>/,
    );
  });

  it("uses KVM and the host's CPU when the host accelerates", () => {
    const xml = domainXml({ ...spec, accel: "kvm" });
    expect(xml).toContain('<domain type="kvm">');
    expect(xml).toContain('<cpu mode="host-passthrough"/>');
  });

  it("carries the seed as SMBIOS OEM strings the guest decodes", () => {
    const xml = domainXml(spec);
    expect(xml).toContain('<smbios mode="sysinfo"/>');
    const strings = seedStrings(spec.seed);
    for (const s of strings) expect(xml).toContain(`<entry>${s}</entry>`);
    const decoded = Object.fromEntries(
      strings.map((s) => {
        const name = s.slice("agenttype:".length, s.indexOf("="));
        return [name, Buffer.from(s.slice(s.indexOf("=") + 1), "base64").toString()] as const;
      }),
    );
    expect(decoded).toEqual({
      "host-key": spec.seed.hostKey,
      "authorized-key": spec.seed.authorizedKey,
      hostname: "coder-0",
    });
  });

  it("writes the labels into the metadata, escaped, and reads them back", () => {
    const xml = domainXml(spec);
    expect(xml).toContain('value="a&lt;b"');
    expect(parseGuestMetadata(xml)).toEqual(spec.labels);
    // libvirt prints the element back with its own quoting.
    expect(parseGuestMetadata(`<at:guest xmlns:at="x"><at:label key='a/b' value='1'/></at:guest>`)).toEqual({
      "a/b": "1",
    });
  });

  it("refuses a bad name, vCPU count or memory size, naming it", () => {
    expect(() => domainXml({ ...spec, name: "a b" })).toThrow(/domain name "a b"/);
    expect(() => domainXml({ ...spec, vcpus: 0 })).toThrow(/vcpus/);
    expect(() => domainXml({ ...spec, memoryMiB: 64 })).toThrow(/memory/);
    expect(() => domainXml({ ...spec, mac: "00:11:22:33:44:55" })).toThrow(/mac/);
  });
});

describe("virsh output", () => {
  it("parses domain states and DHCP lease addresses", () => {
    expect(parseDomainState("running\n\n")).toBe("running");
    expect(parseDomainState("shut off\n")).toBe("shut off");
    expect(parseDomainState("weird\n")).toBe("no state");
    const domifaddr = ` vnet0      52:54:00:12:34:56    ipv4         10.243.0.17/24\n`;
    expect(parseDomifaddr(domifaddr)).toBe("10.243.0.17");
    expect(parseDomifaddr("")).toBeUndefined();
    const leases = ` 2026-11-26 04:00:49   52:54:00:38:81:5e   ipv4       10.243.0.17/24    g0   ff:32\n`;
    expect(parseDomifaddr(leases)).toBe("10.243.0.17");
  });

  it("parses the one-round-trip guest listing: state, managed save, sizes and use, labels", () => {
    const dominfo = (state: string, saved: string) =>
      [
        "Id:             1",
        "Name:           g1",
        "OS Type:        hvm",
        `State:          ${state}`,
        "CPU(s):         2",
        "CPU time:       5.6s",
        "Max memory:     1310720 KiB",
        "Used memory:    1310720 KiB",
        `Managed save:   ${saved}`,
      ].join("\n");
    const text = [
      "--agenttype-domain-- g1",
      dominfo("running", "no"),
      "  balloon.rss=266076",
      `<at:guest xmlns:at="https://agenttype.dev/kvm/guest/v1"><at:label key="agenttype.dev/replica" value="0"/></at:guest>`,
      "--agenttype-domain-- other",
      "State:          shut off",
      "CPU(s):         1",
      "Max memory:     524288 KiB",
      "Managed save:   yes",
      "--agenttype-domain-- vanished",
      "",
    ].join("\n");
    expect(parseGuestList(text)).toEqual([
      {
        name: "g1",
        state: "running",
        saved: false,
        labels: { "agenttype.dev/replica": "0" },
        usage: { vcpus: 2, memoryMiB: 1280, cpuSeconds: 5.6, rssMiB: 260 },
      },
      {
        name: "other",
        state: "shut off",
        saved: true,
        labels: {},
        usage: { vcpus: 1, memoryMiB: 512, cpuSeconds: 0 },
      },
      { name: "vanished", state: "no state", saved: false, labels: {} },
    ]);
  });

  it("parses virsh's lifecycle events, with or without a timestamp", () => {
    expect(
      parseLifecycleEvent(
        "2026-11-26 22:19:54.771+0000: event 'lifecycle' for domain 'g_1.x': Stopped Destroyed",
      ),
    ).toEqual({ domain: "g_1.x", change: "Stopped Destroyed", kind: "Stopped" });
    expect(
      parseLifecycleEvent("event 'lifecycle' for domain 'g': Shutdown Finished after host request"),
    ).toEqual({ domain: "g", change: "Shutdown Finished after host request", kind: "Shutdown" });
    expect(parseLifecycleEvent("events received: 4")).toBeUndefined();
    expect(parseLifecycleEvent("error: Disconnected from qemu:///system due to end of file")).toBeUndefined();
  });

  it("turns virsh's failures into driver errors", () => {
    expect(virshError("virsh domstate", "h", "error: failed to get domain 'x'").code).toBe("NotFound");
    const down = virshError("virsh list", "h", "error: failed to connect to the hypervisor");
    expect(down.code).toBe("Network");
    expect(down.retryable).toBe(true);
    const bad = virshError("virsh define", "h", "error: XML error: bad");
    expect(bad.code).toBe("CreationFailed");
    expect(bad.retryable).toBe(false);
  });
});

describe("dataDiskOf", () => {
  it("names a replica's data disk after its namespace, AgentType and replica: the same for every guest and uid", () => {
    const labels = { ...replicaLabels(owner, 2), "agenttype.dev/persistent-bytes": "1073741824" };
    const disk = {
      path: "/srv/kvm/data/team-a_coder_2-memory.qcow2",
      record: "/srv/kvm/data/team-a_coder_2-memory.json",
      sizeBytes: 2 ** 30,
    };
    expect(dataDiskOf(labels, "/srv/kvm")).toEqual(disk);
    const recreated = { ...owner, uid: "9e9e9e9e-0000-4000-8000-000000000002" };
    expect(
      dataDiskOf(
        { ...replicaLabels(recreated, 2), "agenttype.dev/persistent-bytes": "1073741824" },
        "/srv/kvm",
      ),
    ).toEqual(disk);
    expect(dataDiskOf(replicaLabels(owner, 2), "/srv/kvm")).toBeUndefined();
  });
});

describe("acceleration probe", () => {
  it("says kvm only when a guest kernel printed its banner", () => {
    expect(probeVerdict("Linux version 6.1.0-40-cloud-amd64 ...").accel).toBe("kvm");
    expect(probeVerdict("no /dev/kvm\n")).toEqual({
      accel: "tcg",
      reason: "the host has no usable /dev/kvm",
    });
    expect(probeVerdict("qemu: warning: host doesn't support requested feature\n").reason).toBe(
      "a KVM guest kernel printed nothing in 10 s",
    );
    expect(probeVerdict("qemu: failed to initialize kvm: Permission denied\n").reason).toMatch(
      /printed nothing in 10 s: qemu: failed to initialize kvm/,
    );
    expect(probeCommand("/img/vmlinuz")).toContain("-accel kvm");
    expect(probeCommand("/img/vmlinuz")).toContain("-kernel /img/vmlinuz");
  });
});

describe("guests and ids", () => {
  it("gives each guest a fixed MAC address of QEMU's prefix", () => {
    expect(guestMac("g1")).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(guestMac("g1")).toBe(guestMac("g1"));
    expect(guestMac("g1")).not.toBe(guestMac("g2"));
  });

  it("names a replica's guest as its group", () => {
    expect(guestName(replicaLabels(owner, 2))).toBe(replicaName(owner, 2));
    expect(() => guestName({ "agenttype.dev/replica": "0" })).toThrow(/labels must name its AgentType/);
    expect(guestHostname("team-a_coder_0_3f1c2b9a")).toBe("team-a-coder-0-3f1c2b9a");
  });

  it("names the guest after what it runs too, so a roll's new guest runs beside the old", () => {
    const labels = { ...replicaLabels(owner, 0), "agenttype.dev/spec-hash": "0123456789abcdef" };
    expect(guestName(labels)).toBe(`${replicaName(owner, 0)}_01234567`);
    expect(guestName({ ...labels, "agenttype.dev/spec-hash": "fedcba9876543210" })).not.toBe(
      guestName(labels),
    );
  });

  it("sizes a guest from its replica's limits plus its own system, never below the settings", () => {
    const settings = { vcpus: 1, memoryMiB: 1024 };
    expect(guestSize(replicaLabels(owner, 0), settings)).toEqual(settings);
    expect(
      guestSize(
        { "agenttype.dev/cpu-millis": "2500", "agenttype.dev/memory-bytes": String(1536 * 2 ** 20) },
        settings,
      ),
    ).toEqual({ vcpus: 3, memoryMiB: 1536 + GUEST_OVERHEAD_MIB });
    expect(
      guestSize(
        { "agenttype.dev/cpu-millis": "100", "agenttype.dev/memory-bytes": String(64 * 2 ** 20) },
        settings,
      ),
    ).toEqual(settings);
  });

  it("splits ids into the guest and the id inside it", () => {
    expect(splitId("g1/abc")).toEqual({ guest: "g1", inner: "abc" });
    expect(splitId("g1/")).toEqual({ guest: "g1", inner: "" });
    expect(() => splitId("abc")).toThrow(/not found/);
  });

  it("matches a guest on the filter labels it has", () => {
    const labels = replicaLabels(owner, 0);
    expect(guestMayMatch(labels, { ...labels, "agenttype.dev/role": "agent" })).toBe(true);
    expect(guestMayMatch(labels, { "agenttype.dev/replica": "1" })).toBe(false);
  });
});
