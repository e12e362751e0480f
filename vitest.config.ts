import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: [
            "api/**/*.test.ts",
            "operator/**/*.test.ts",
            "sidecar/**/*.test.ts",
            "wrapper/**/*.test.ts",
            "plugin/**/*.test.ts",
            "tests/bench/**/*.test.ts",
          ],
        },
      },
      {
        // A real etcd + kube-apiserver + kube-controller-manager, started once per run.
        test: {
          name: "integration",
          include: ["tests/integration/**/*.test.ts"],
          globalSetup: ["tests/integration/global-setup.ts"],
          // One file at a time: one of them restarts the shared API server.
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 120_000,
        },
      },
      {
        // The full local cluster: control plane, containerd, kubelet, kube-proxy, CNI.
        test: {
          name: "e2e",
          include: ["tests/e2e/**/*.test.ts"],
          globalSetup: ["tests/e2e/global-setup.ts"],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
      {
        // A test host made by tests/hosts/host.sh: its own sshd and containerd in a network namespace.
        test: {
          name: "hosts",
          include: ["tests/hosts/**/*.test.ts"],
          globalSetup: ["tests/hosts/global-setup.ts"],
          // One file at a time: one of them stops and starts the host's sshd.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 900_000,
        },
      },
      {
        // A KVM host made by tests/guests/kvm-host.sh: libvirtd and QEMU in the host tier's netns host.
        test: {
          name: "guests",
          include: ["tests/guests/**/*.test.ts"],
          globalSetup: ["tests/guests/global-setup.ts"],
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 1_800_000,
        },
      },
      {
        // `make bench-kvm` at a tiny size, after the guest tier (make test-guests), on the KVM host
        // and control plane the benchmark brings up itself.
        test: {
          name: "smoke-kvm",
          include: ["tests/smoke-kvm/**/*.test.ts"],
          fileParallelism: false,
          testTimeout: 1_800_000,
        },
      },
      {
        // Docker, kind and Tilt as a user runs them (tests/kind): a Docker engine of the harness's
        // own (tests/kind/global-setup.ts), apart from the project's own cluster.
        test: {
          name: "kind",
          include: ["tests/kind/**/*.test.ts"],
          globalSetup: ["tests/kind/global-setup.ts"],
          // One file at a time: one of them stops and starts the engine.
          fileParallelism: false,
          testTimeout: 900_000,
          hookTimeout: 1_800_000,
        },
      },
      {
        // The README's commands as a user runs them (make up/down, cluster-up/down, images, every
        // bench-* at a tiny size but bench-kvm), on the default cluster state: after the e2e and kind tiers,
        // with the guest tier beside them (make test-beside-guests).
        test: {
          name: "smoke",
          include: ["tests/smoke/**/*.test.ts"],
          fileParallelism: false,
          testTimeout: 1_200_000,
          hookTimeout: 900_000,
        },
      },
    ],
  },
});
