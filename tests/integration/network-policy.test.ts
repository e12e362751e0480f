// The NetworkPolicy of an AgentType against the real API server: built by default, stored as
// applied (the API server's own validation of every peer and port), with egress rules once the
// AgentType asks for declared egress, and deleted when switched off. Whether a CNI enforces it
// is the CNI's business: docs/security.md says what it can and cannot separate.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { CustomObjectsApi, NetworkingV1Api } from "@kubernetes/client-node";
import { afterEach, beforeAll, describe, expect, inject } from "vitest";
import { agentType } from "../../api/agenttype.ts";
import { FIELD_MANAGER } from "../../operator/build/names.ts";
import { buildObjects } from "../../operator/build/objects.ts";
import {
  applyContent,
  desiredDigest,
  firstDifference,
  liveDigest,
  ownedPart,
} from "../../operator/controllers/agenttype/owned-fields.ts";
import type { KubeObject } from "../../operator/kube/client.ts";
import { eventually, kubeconfigPath, simpleAgent, test } from "./cluster.ts";
import { installCrds } from "./crds.ts";
import { type OperatorProcess, startOperator } from "./operator-process.ts";

const run = promisify(execFile);
const cluster = inject("cluster");
const AT = { group: "agenttype.dev", version: "v1alpha1", plural: "agenttypes" };
const running: OperatorProcess[] = [];

beforeAll(async () => {
  await installCrds(kubeconfigPath());
});

afterEach(async () => {
  for (const operator of running.splice(0)) await operator.stop("SIGKILL");
});

describe("NetworkPolicy", () => {
  test("built by default, declared egress added, removed when switched off", async ({ kc, namespace }) => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    const networking = kc.makeApiClient(NetworkingV1Api);
    const operator = await startOperator({
      kubeconfig: kubeconfigPath(),
      namespace,
      identity: "op-netpol",
      extraEnv: { METRICS_FROM_NAMESPACES: "monitoring" },
    });
    running.push(operator);
    const manifest = simpleAgent("fenced");
    await custom.createNamespacedCustomObject({ ...AT, namespace, body: manifest });

    const read = () => networking.readNamespacedNetworkPolicy({ namespace, name: "fenced" });
    /** Stored as applied: an unchanged AgentType never writes it again (ADR 0005). */
    const expectStoredAsBuilt = async () => {
      const live = (await custom.getNamespacedCustomObject({
        ...AT,
        namespace,
        name: "fenced",
      })) as KubeObject;
      const built = buildObjects(agentType.parse(live), [], {
        sidecarImage: "s",
        wrapperImage: "w",
        imagePullPolicy: "IfNotPresent",
        sidecarResources: {},
        memoryMaxBytes: 1,
        metricsFromNamespaces: [namespace, "monitoring"],
      });
      // As the API server sends it (the client library's model renames `from`).
      const stored = JSON.parse(
        (
          await run(
            join(cluster.binDir, "kubectl"),
            [
              "--kubeconfig",
              cluster.kubeconfig,
              "get",
              "networkpolicy",
              "fenced",
              "-n",
              namespace,
              "-o",
              "json",
              "--show-managed-fields",
            ],
            { timeout: 60_000 },
          )
        ).stdout,
      ) as KubeObject;
      expect(
        firstDifference(applyContent(built.networkPolicy as KubeObject), ownedPart(stored, FIELD_MANAGER)),
      ).toBe(undefined);
      expect(liveDigest(stored, FIELD_MANAGER)).toBe(desiredDigest(built.networkPolicy as KubeObject));
    };

    const policy = await eventually("the NetworkPolicy", read);
    expect(policy.spec?.policyTypes).toEqual(["Ingress"]);
    expect(policy.spec?.ingress).toEqual([
      {
        _from: [
          { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } },
          { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } } },
        ].sort((a, b) =>
          a.namespaceSelector.matchLabels["kubernetes.io/metadata.name"].localeCompare(
            b.namespaceSelector.matchLabels["kubernetes.io/metadata.name"],
          ),
        ),
        ports: [{ protocol: "TCP", port: 9090 }],
      },
    ]);

    await expectStoredAsBuilt();

    const patch = (body: object) =>
      custom.patchNamespacedCustomObject({ ...AT, namespace, name: "fenced", body });
    await patch([{ op: "add", path: "/spec/network", value: { egress: "declared" } }]);
    const declared = await eventually("the egress rules", async () => {
      const p = await read();
      return p.spec?.policyTypes?.includes("Egress") ? p : undefined;
    });
    // The sample's ollama endpoint is ollama.models.svc: DNS, then the namespace models.
    expect(
      declared.spec?.egress?.map((rule) => rule.to?.[0]?.namespaceSelector?.matchLabels ?? rule.ports),
    ).toEqual([
      [
        { protocol: "UDP", port: 53 },
        { protocol: "TCP", port: 53 },
      ],
      { "kubernetes.io/metadata.name": "models" },
    ]);
    await expectStoredAsBuilt();

    await patch([{ op: "replace", path: "/spec/network", value: { policy: "disabled" } }]);
    await eventually("the NetworkPolicy deleted", async () => {
      try {
        await read();
        return false;
      } catch (error) {
        return (error as { code?: number }).code === 404;
      }
    });
    expect(operator.logs()).not.toContain("stores this object differently");
  });
});
