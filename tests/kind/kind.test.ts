// The README's laptop path on a machine without a registry: kind (built from the Go module proxy)
// creates the cluster of config/kind/cluster.yaml from the node image made here
// (tests/kind/node-image.sh), as the README says for offline machines, and it works as a cluster.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { eventually } from "../fixtures/eventually.ts";
import { exec, execOk } from "../fixtures/exec.ts";
import { repo } from "./docker-env.ts";

let kind: string;
let kubectlBin: string;
let nodeImage: string;
let dir: string;
/** kind and kubectl get a kubeconfig of their own: never the user's ~/.kube/config. */
let env: NodeJS.ProcessEnv;
const lastLine = (text: string) => text.trim().split("\n").at(-1) ?? "";

beforeAll(async () => {
  kind = lastLine(await execOk(join(import.meta.dirname, "build-kind.sh"), [], { timeoutMs: 900_000 }));
  nodeImage = lastLine(
    await execOk(join(import.meta.dirname, "node-image.sh"), [], { timeoutMs: 1_500_000 }),
  );
  kubectlBin = join(
    lastLine(await execOk(join(repo, "tests/cluster/build-components.sh"), [], { timeoutMs: 3_600_000 })),
    "kubectl",
  );
  dir = mkdtempSync(join(tmpdir(), "agenttype-kind-"));
  // Debian's docker client first: kind runs `docker` from PATH.
  env = { ...process.env, KUBECONFIG: join(dir, "kubeconfig"), PATH: `/usr/bin:${process.env.PATH}` };
  await exec(kind, ["delete", "cluster", "--name", "agenttype"], { env });
  const created = await exec(
    kind,
    ["create", "cluster", "--config", "config/kind/cluster.yaml", "--image", nodeImage, "--wait", "5m"],
    { env, cwd: repo, timeoutMs: 900_000 },
  );
  expect(created.code, created.stderr + created.stdout).toBe(0);
}, 3_600_000);

afterAll(async () => {
  if (kind && process.env.AGENTTYPE_KEEP_KIND !== "1")
    await exec(kind, ["delete", "cluster", "--name", "agenttype"], { env });
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 300_000);

const kubectl = (...args: string[]) =>
  execOk(kubectlBin, ["--context", "kind-agenttype", ...args], { env, timeoutMs: 300_000 });

describe("kind create cluster --config config/kind/cluster.yaml, offline", () => {
  test("the node runs the pinned Kubernetes and is Ready", async () => {
    const node = JSON.parse(await kubectl("get", "node", "agenttype-control-plane", "-o", "json"));
    expect(node.status.nodeInfo.kubeletVersion).toBe(nodeImage.split(":").at(-1));
    expect(node.status.conditions.find((c: { type: string }) => c.type === "Ready").status).toBe("True");
  });

  test("CoreDNS answers and a pod reaches a Service by name", async () => {
    await kubectl("-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=180s");
    await kubectl(
      "run",
      "dns-check",
      "--image=localhost/agenttype/debian-base:bookworm",
      "--image-pull-policy=Never",
      "--restart=Never",
      "--command",
      "--",
      "sh",
      "-c",
      // CoreDNS rolled out is not yet CoreDNS reachable through its Service on a node that has
      // just come up (a fresh clone's run failed the first lookup): ask for up to 60 s.
      "for i in $(seq 60); do getent hosts kubernetes.default.svc.cluster.local && exit 0; sleep 1; done; exit 1",
    );
    const phase = await eventually(
      "the DNS check pod to finish",
      async () => {
        const p = (await kubectl("get", "pod", "dns-check", "-o", "jsonpath={.status.phase}")).trim();
        return (p === "Succeeded" || p === "Failed") && p;
      },
      180_000,
      1000,
    );
    expect(phase, await kubectl("logs", "dns-check")).toBe("Succeeded");
    expect(await kubectl("logs", "dns-check")).toContain("10.96.0.1");
  });
});
