// The integration harness itself: the control plane that global-setup.ts started is real,
// healthy, of the pinned release, and gives each test its own namespace.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { CoreV1Api, Health, VersionApi } from "@kubernetes/client-node";
import { describe, expect, inject } from "vitest";
import { test } from "./cluster.ts";

const run = promisify(execFile);
const cluster = inject("cluster");

describe("integration harness", () => {
  test("/readyz is ok through the client", async ({ kc }) => {
    expect(await new Health(kc).readyz({})).toBe(true);
  });

  test("the API server reports the pinned release", async ({ kc }) => {
    expect(cluster.kubernetesVersion).toMatch(/^v1\.\d+\.\d+$/);
    const version = await kc.makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toBe(cluster.kubernetesVersion);
    expect(version.gitTreeState).toBe("clean");
  });

  test("kubectl version reports the pinned release for client and server", async () => {
    const { stdout } = await run(
      join(cluster.binDir, "kubectl"),
      ["version", "-o", "json", "--kubeconfig", cluster.kubeconfig],
      { timeout: 30_000 },
    );
    const v = JSON.parse(stdout) as {
      clientVersion: { gitVersion: string; major: string; minor: string };
      serverVersion: { gitVersion: string };
    };
    expect(v.clientVersion.gitVersion).toBe(cluster.kubernetesVersion);
    expect(v.serverVersion.gitVersion).toBe(cluster.kubernetesVersion);
    expect(`v${v.clientVersion.major}.${v.clientVersion.minor}`).toBe(
      cluster.kubernetesVersion.split(".").slice(0, 2).join("."),
    );
  });

  test("each test gets a fresh namespace with a default ServiceAccount", async ({ kc, namespace }) => {
    const core = kc.makeApiClient(CoreV1Api);
    const ns = await core.readNamespace({ name: namespace });
    expect(ns.metadata?.labels?.["agenttype.dev/test-namespace"]).toBe("true");
    // The controller-manager (token and root-CA controllers) is running.
    const cm = await core.readNamespacedConfigMap({ name: "kube-root-ca.crt", namespace });
    expect(cm.data?.["ca.crt"]).toContain("BEGIN CERTIFICATE");
    await core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: "probe" }, data: { ok: "yes" } },
    });
    const list = await core.listNamespacedConfigMap({ namespace });
    expect(list.items.map((c) => c.metadata?.name)).toContain("probe");
  });

  test("namespaces are not shared between tests", async ({ namespace }) => {
    expect(namespace).toMatch(/^it-namespaces-are-not-shared-between-tests-[0-9a-f]{6}$/);
  });
});
