// Which acceleration the host's QEMU gives a stock guest kernel, found by trying rather than
// assumed: some machines expose /dev/kvm yet hang right after the firmware. A KVM boot of the
// guest image's kernel must print its first line on the serial console within a few seconds;
// otherwise guests run under software emulation (TCG).
import { type Call, subCall } from "../call.ts";
import { type HostTransport, shellCommand } from "../transport.ts";
import type { Acceleration } from "./domain-xml.ts";

const PROBE_SECONDS = 10;

/** The probe's command line: a kernel that cannot find its root, stopped at the time limit. */
export function probeCommand(kernel: string): string {
  const qemu = shellCommand([
    "timeout",
    String(PROBE_SECONDS),
    "qemu-system-x86_64",
    "-accel",
    "kvm",
    "-m",
    "256",
    "-display",
    "none",
    "-no-reboot",
    "-nodefaults",
    "-serial",
    "stdio",
    "-kernel",
    kernel,
    "-append",
    "console=ttyS0 panic=-1 root=/dev/null",
  ]);
  return `test -r /dev/kvm -a -w /dev/kvm || { echo no /dev/kvm; exit 0; }; ${qemu} 2>&1 | head -c 65536`;
}

export interface AccelProbe {
  accel: Acceleration;
  /** Why, for the log and the AgentHost's status. */
  reason: string;
}

export function probeVerdict(output: string): AccelProbe {
  if (/Linux version/.test(output)) return { accel: "kvm", reason: "a KVM guest kernel booted" };
  if (/no \/dev\/kvm/.test(output)) return { accel: "tcg", reason: "the host has no usable /dev/kvm" };
  // QEMU's warnings (CPU features the host lacks) are not why; an error line is.
  const error = output.split("\n").find((l) => /error|failed/i.test(l));
  return {
    accel: "tcg",
    reason: `a KVM guest kernel printed nothing in ${PROBE_SECONDS} s${error ? `: ${error.trim().slice(0, 160)}` : ""}`,
  };
}

export async function probeAccel(transport: HostTransport, kernel: string, call: Call): Promise<AccelProbe> {
  const result = await transport.exec(probeCommand(kernel), {}, subCall(call, (PROBE_SECONDS + 20) * 1000));
  return probeVerdict(result.stdout);
}
