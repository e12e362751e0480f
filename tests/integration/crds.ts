// Installs the generated CRDs into the test cluster (server-side apply, so every test file may
// call it) and waits until the API server serves them. Raw JSON through the operator's own
// client: client-node's typed serializer would drop the x-kubernetes-* keys.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { load } from "js-yaml";
import { loadAccess } from "../../operator/kube/access.ts";
import { KubeClient, type KubeObject, type ResourceType } from "../../operator/kube/client.ts";

const CRDS_DIR = join(import.meta.dirname, "..", "..", "crds");
const CRD: ResourceType = {
  group: "apiextensions.k8s.io",
  version: "v1",
  plural: "customresourcedefinitions",
  kind: "CustomResourceDefinition",
  namespaced: false,
};

export function crdManifests(): KubeObject[] {
  return readdirSync(CRDS_DIR)
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => load(readFileSync(join(CRDS_DIR, f), "utf8")) as KubeObject);
}

export async function installCrds(kubeconfig: string): Promise<void> {
  const client = new KubeClient(loadAccess({ KUBECONFIG: kubeconfig }));
  for (const crd of crdManifests()) await client.apply(CRD, crd, "agenttype-tests");
  const deadline = Date.now() + 30_000;
  for (const crd of crdManifests()) {
    for (;;) {
      const served = await client.get<
        KubeObject & { status?: { conditions?: { type: string; status: string }[] } }
      >(CRD, undefined, crd.metadata.name);
      if (served.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) break;
      if (Date.now() > deadline) throw new Error(`CRD ${crd.metadata.name} did not become Established`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
