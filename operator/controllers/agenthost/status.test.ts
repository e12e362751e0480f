import { describe, expect, it } from "vitest";
import type { AgentHost } from "../../../api/agenthost.ts";
import { hostStatus, hostStatusChanged, parseHostFacts } from "./status.ts";

const host = {
  metadata: { name: "h", generation: 3 },
  spec: { driver: "containerd" },
  status: { versions: { containerd: "1.6" }, allocation: { agents: 2 } },
} as unknown as AgentHost;
const now = new Date("2026-01-01T00:00:00Z");

describe("AgentHost status", () => {
  it("parses what the probe command prints", () => {
    expect(
      parseHostFacts(
        'kernel=6.1.0-18-amd64\nos="Debian GNU/Linux 12 (bookworm)"\ncpus=2\nmemory_kb=8000000\n',
      ),
    ).toEqual({
      kernel: "6.1.0-18-amd64",
      os: "Debian GNU/Linux 12 (bookworm)",
      cpus: 2,
      memoryBytes: 8_192_000_000,
    });
    expect(parseHostFacts("cpus=x\n")).toEqual({});
  });
  it("is Reachable with versions and allocation from a probe, and says what the host runs", () => {
    const s = hostStatus(
      host,
      {
        reachable: true,
        facts: { versions: { containerd: "2.0.1", kernel: "6.1", os: "Debian" }, cpus: 4, agents: 1 },
      },
      undefined,
      now,
    );
    expect(s.conditions?.[0]).toMatchObject({
      type: "Reachable",
      status: "True",
      reason: "Connected",
      observedGeneration: 3,
    });
    expect(s.conditions?.[0]?.message).toBe(
      "containerd 2.0.1 answers on Debian, kernel 6.1; 4 CPUs; 1 agent replicas placed",
    );
    expect(s.allocation).toEqual({ agents: 1 });
  });
  it("keeps the last versions when unreachable, and publishes a generated public key", () => {
    const s = hostStatus(
      host,
      { reachable: false, reason: "HostKeyMismatch", message: "m" },
      "ssh-ed25519 AAAA x",
      now,
    );
    expect(s.conditions?.[0]).toMatchObject({ status: "False", reason: "HostKeyMismatch" });
    expect(s.versions).toEqual({ containerd: "1.6" });
    expect(s.clientPublicKey).toBe("ssh-ed25519 AAAA x");
    expect(hostStatusChanged(s, JSON.parse(JSON.stringify(s)))).toBe(false);
  });
});
