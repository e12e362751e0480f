// The upstream Pod Security admission, for real: a namespace of the real API server labelled to
// enforce the restricted standard, every sample AgentType that runs in the cluster applied
// there as a user writes it, and kube-controller-manager creating their pods. Every pod must be
// admitted: each workload has its pod and no controller reports FailedCreate. The
// same agent with `security.profile: none` is refused, so the namespace does enforce.
// (The samples on AgentHosts run outside the cluster, where Pod Security does not apply; the
// e2e tier runs the sample agents Ready in such a namespace.)
import { AppsV1Api, CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { afterEach, beforeAll, describe, expect } from "vitest";
import { loadSample, sampleFiles } from "../fixtures/manifests.ts";
import { eventually, kubeconfigPath, test } from "./cluster.ts";
import { installCrds } from "./crds.ts";
import { type OperatorProcess, startOperator } from "./operator-process.ts";

const AT = { group: "agenttype.dev", version: "v1alpha1" };
const running: OperatorProcess[] = [];

beforeAll(async () => {
  await installCrds(kubeconfigPath());
});

afterEach(async () => {
  for (const operator of running.splice(0)) await operator.stop("SIGKILL");
});

const samples = (prefix: string) => sampleFiles().filter((f) => f.startsWith(prefix));

interface Event {
  reason?: string;
  message?: string;
  involvedObject: { kind?: string; name?: string };
}

describe("Pod Security admission", () => {
  test("every sample AgentType's pods are admitted where the restricted standard is enforced", async ({
    kc,
    namespace,
  }) => {
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    await core.patchNamespace({
      name: namespace,
      body: [
        {
          op: "add",
          path: "/metadata/labels/pod-security.kubernetes.io~1enforce",
          value: "restricted",
        },
        { op: "add", path: "/metadata/labels/pod-security.kubernetes.io~1enforce-version", value: "latest" },
      ],
    });
    const operator = await startOperator({ kubeconfig: kubeconfigPath(), namespace, identity: "op-psa" });
    running.push(operator);

    // The samples' tools, and web-search 1.2 too, which the summarizer asks for (~1.2).
    const webSearch12 = loadSample("agenttool_web-search-mcp.yaml");
    webSearch12.metadata.name = "web-search-1-2-4";
    webSearch12.spec.version = "1.2.4";
    for (const body of [...samples("agenttool_").map(loadSample), webSearch12]) {
      await custom.createNamespacedCustomObject({ ...AT, plural: "agenttools", namespace, body });
    }
    const agents = samples("agenttype_")
      .map(loadSample)
      .filter((m) => (m.spec.runtime?.type ?? "kubernetes") === "kubernetes");
    expect(agents.map((m) => m.metadata.name).sort()).toEqual([
      "coding-assistant",
      "researcher",
      "summarizer",
    ]);
    // The same agent without a profile: its pod asks for nothing, which restricted refuses.
    const unprofiled = loadSample("agenttype_python-summarizer.yaml");
    unprofiled.metadata.name = "unprofiled";
    unprofiled.spec.security = { profile: "none" };
    for (const body of [...agents, unprofiled]) {
      await custom.createNamespacedCustomObject({ ...AT, plural: "agenttypes", namespace, body });
    }

    const podsOf = async (agent: string) =>
      (await core.listNamespacedPod({ namespace, labelSelector: `agenttype.dev/agent=${agent}` })).items;
    const events = async () => (await core.listNamespacedEvent({ namespace })).items as Event[];
    // A StatefulSet creates its second pod once the first is Ready, which no pod is here (no
    // node): the first pod of each is the one admission judges; all have the same template.
    for (const agent of agents) {
      const name: string = agent.metadata.name;
      await eventually(`a pod of ${name}`, async () => (await podsOf(name)).length > 0, 60_000);
    }
    const refused = await eventually(
      "the unprofiled agent's pod refused",
      async () =>
        (await events()).find(
          (e) => e.reason === "FailedCreate" && e.involvedObject.name?.startsWith("unprofiled"),
        ),
      60_000,
    );
    expect(refused.message).toContain("violates PodSecurity");
    expect(refused.message).toMatch(/allowPrivilegeEscalation|runAsNonRoot|seccompProfile|capabilities/);
    expect(await podsOf("unprofiled")).toEqual([]);

    expect((await apps.readNamespacedStatefulSet({ namespace, name: "researcher" })).status?.replicas).toBe(
      1,
    );
    expect((await apps.readNamespacedDeployment({ namespace, name: "summarizer" })).status?.replicas).toBe(1);
    expect(
      (await apps.readNamespacedDeployment({ namespace, name: "coding-assistant" })).status?.replicas,
    ).toBe(1);
    const failed = (await events()).filter(
      (e) => e.reason === "FailedCreate" && !e.involvedObject.name?.startsWith("unprofiled"),
    );
    expect(failed).toEqual([]);
  });
});
