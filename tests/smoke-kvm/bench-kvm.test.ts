// `make bench-kvm` at a tiny size, the smoke check of that benchmark (as tests/smoke does for the
// others): it must run to its machine-readable last line with every field present, the
// acceleration probed. Its own project, run by `make test-guests` after the guest tier has taken
// its KVM host down, since the benchmark brings up the same KVM host and control plane itself.
import { describe, expect, test } from "vitest";
import { lastLineFields, make, script, tail } from "../smoke/make.ts";

const T = 900_000;

describe("make bench-kvm at a tiny size", () => {
  test(
    "make bench-kvm BENCH_ROUNDS=1 boots one guest through the operator, ends with its fields, and takes its KVM host down",
    async () => {
      const run = await make("bench-kvm", { BENCH_ROUNDS: "1" }, {}, 2 * T);
      expect(run.code, tail(run)).toBe(0);
      const fields = lastLineFields(run, "bench-kvm", ["accel"]);
      expect(Object.keys(fields)).toEqual(
        expect.arrayContaining([
          "accel",
          "apply_to_ready_s",
          "boot_s",
          "agent_s",
          "suspend_s",
          "resume_s",
          "rounds",
        ]),
      );
      expect(fields.rounds).toBe(1);
      // The acceleration is probed and printed, never assumed: kvm or tcg, nothing else.
      expect(["kvm", "tcg"]).toContain(fields.accel);
      // It found no KVM host running, so it leaves none.
      expect(script("tests/guests/kvm-host.sh", "status").code).not.toBe(0);
    },
    2 * T,
  );
});
