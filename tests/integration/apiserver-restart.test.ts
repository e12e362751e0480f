// The operator outlives a kube-apiserver restart: its watches reconnect (relisting when their
// resourceVersion is too old) and it acts on changes made right after the restart.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { AppsV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { beforeAll, describe, expect } from "vitest";
import { eventually, kubeconfigPath, simpleAgent, test } from "./cluster.ts";
import { installCrds } from "./crds.ts";
import { startOperator } from "./operator-process.ts";

const run = promisify(execFile);
const CLUSTER_DIR = join(import.meta.dirname, "..", "cluster");

beforeAll(async () => {
  await installCrds(kubeconfigPath());
});

describe("kube-apiserver restart", () => {
  test("watches recover and nothing is missed", async ({ kc, namespace }) => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    const apps = kc.makeApiClient(AppsV1Api);
    const at = { group: "agenttype.dev", version: "v1alpha1", plural: "agenttypes", namespace };
    const operator = await startOperator({
      kubeconfig: kubeconfigPath(),
      namespace,
      identity: "op-restart",
      leaderElection: false,
    });
    try {
      await custom.createNamespacedCustomObject({ ...at, body: simpleAgent("before") });
      await eventually("the first Deployment", () =>
        apps.readNamespacedDeployment({ namespace, name: "before" }),
      );

      // Stop the API server (TERM, as an upgrade would), then bring it back with the harness.
      await run("bash", [
        "-c",
        `source ${CLUSTER_DIR}/lib.sh && kill -TERM "$(cat "$AGENTTYPE_RUN/kube-apiserver.pid")"`,
      ]);
      await eventually("the API server down", () =>
        apps.listNamespacedDeployment({ namespace }).then(
          () => false,
          () => true,
        ),
      );
      await run(join(CLUSTER_DIR, "cluster.sh"), ["up", "control-plane"], { timeout: 180_000 });

      // Changes made straight after the restart, before the watches may have reconnected.
      await custom.createNamespacedCustomObject({ ...at, body: simpleAgent("after") });
      await custom.patchNamespacedCustomObject({
        ...at,
        name: "before",
        body: [{ op: "replace", path: "/spec/image", value: "ghcr.io/acme/summarizer:2.0.0" }],
      });
      // Reconnects back off up to 30 s: allow for that.
      await eventually(
        "the new AgentType reconciled",
        () => apps.readNamespacedDeployment({ namespace, name: "after" }),
        60_000,
      );
      await eventually(
        "the changed AgentType reconciled",
        async () => {
          const d = await apps.readNamespacedDeployment({ namespace, name: "before" });
          return d.spec?.template.spec?.containers[0]?.image === "ghcr.io/acme/summarizer:2.0.0";
        },
        60_000,
      );
      const metrics = await operator.metrics();
      const restarts = metrics
        .split("\n")
        .filter((line) => line.startsWith("agenttype_watch_restarts_total{"))
        .reduce((sum, line) => sum + Number(line.split(" ")[1]), 0);
      expect(restarts).toBeGreaterThan(0);
    } finally {
      await operator.stop("SIGKILL");
    }
  });
});
