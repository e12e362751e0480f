// Helpers for integration tests against the harness's control plane (see global-setup.ts).
//
//   import { test } from "./cluster.ts";
//   test("creates things", async ({ kc, namespace }) => { ... });
//
// `namespace` is a fresh namespace per test (its `default` ServiceAccount and kube-root-ca.crt
// already exist, so pods can be created in it); it is deleted after the test unless
// AGENTTYPE_KEEP_NAMESPACES=1.
import { randomBytes } from "node:crypto";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { test as base, inject } from "vitest";
import { eventually } from "../fixtures/eventually.ts";
import { loadSample } from "../fixtures/manifests.ts";

export { eventually };

export function kubeconfigPath(): string {
  const path = inject("kubeconfig") ?? process.env.KUBECONFIG;
  if (!path) throw new Error("no kubeconfig: run through the integration project (globalSetup)");
  return path;
}

export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath());
  return kc;
}

/** A DNS-1123 label from a test name plus a random suffix, at most 63 characters. */
export function namespaceName(testName: string): string {
  const slug = testName
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40)
    .replace(/-+$/, "");
  return `it-${slug || "test"}-${randomBytes(3).toString("hex")}`;
}

/** The Python sample without tools: an AgentType that needs nothing else in its namespace. */
export function simpleAgent(name: string) {
  const manifest = loadSample("agenttype_python-summarizer.yaml");
  manifest.metadata = { name };
  delete manifest.spec.tools;
  return manifest;
}

/**
 * Create a namespace labelled for the harness and wait until pods can use it: the
 * controller-manager has created its `default` ServiceAccount and `kube-root-ca.crt` ConfigMap.
 */
export async function createNamespace(kc: KubeConfig, name: string): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({
    body: { metadata: { name, labels: { "agenttype.dev/test-namespace": "true" } } },
  });
  await eventually(`serviceaccount ${name}/default`, () =>
    core.readNamespacedServiceAccount({ name: "default", namespace: name }),
  );
  await eventually(`configmap ${name}/kube-root-ca.crt`, () =>
    core.readNamespacedConfigMap({ name: "kube-root-ca.crt", namespace: name }),
  );
  return name;
}

/** Start deleting a namespace; does not wait for finalization. */
export async function deleteNamespace(kc: KubeConfig, name: string): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.deleteNamespace({ name, propagationPolicy: "Background" }).catch((err: { code?: number }) => {
    if (err.code !== 404) throw err;
  });
}

export const test = base.extend<{ kc: KubeConfig; namespace: string }>({
  // biome-ignore lint/correctness/noEmptyPattern: vitest fixtures must destructure their context
  kc: async ({}, use) => {
    await use(loadKubeConfig());
  },
  namespace: async ({ kc, task }, use) => {
    const name = await createNamespace(kc, namespaceName(task.name));
    await use(name);
    if (process.env.AGENTTYPE_KEEP_NAMESPACES !== "1") await deleteNamespace(kc, name);
  },
});
