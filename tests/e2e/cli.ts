// What the e2e files share: kubectl and helm on the full tier's cluster, the images every file
// needs, and the operator installed from the chart as a user installs it.
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execOk } from "../fixtures/exec.ts";
import { e2eCluster } from "./cluster-env.ts";

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const { kubeconfig, bin } = e2eCluster();
const HELM_DEADLINE_MS = 300_000;
const IMAGES_DEADLINE_MS = 900_000;

export const kubectl = (...args: string[]) =>
  execOk(resolve(bin, "kubectl"), ["--kubeconfig", kubeconfig, ...args]);
/** kubectl with `input` on its stdin (for `apply -f -`). */
export const kubectlIn = (input: string, ...args: string[]) =>
  execOk(resolve(bin, "kubectl"), ["--kubeconfig", kubeconfig, ...args], { input });
export const helm = (...args: string[]) =>
  execOk(resolve(bin, "helm"), ["--kubeconfig", kubeconfig, ...args], { timeoutMs: HELM_DEADLINE_MS });

/** The project's images and the suite's, built and imported; each only when its inputs changed. */
export async function buildImages(): Promise<void> {
  for (const set of ["project", "e2e"]) {
    await execOk(resolve(repo, "tests/cluster/images.sh"), [set], { timeoutMs: IMAGES_DEADLINE_MS });
  }
}

/**
 * `helm install` of the operator chart with the images built here, waiting for it. Namespaced
 * mode (a Role in `watchNamespace`, nothing cluster-wide), so a run's operator and one that
 * `make up` installed never reconcile each other's agents; CRDs another release installed
 * (`make up`'s) are used as they are and left alone.
 */
export async function installOperator(
  release: string,
  namespace: string,
  watchNamespace: string,
): Promise<{ crdsPreinstalled: boolean }> {
  const crdsPreinstalled = (await kubectl("get", "crds", "-o", "name")).includes("agenttypes.agenttype.dev");
  const values = {
    watchNamespaces: `{${watchNamespace}}`,
    "crds.install": String(!crdsPreinstalled),
    "image.repository": "localhost/agenttype/operator",
    "image.tag": "dev",
    "sidecar.image.repository": "localhost/agenttype/sidecar",
    "sidecar.image.tag": "dev",
    "wrapper.image.repository": "localhost/agenttype/wrapper",
    "wrapper.image.tag": "dev",
  };
  await helm(
    "install",
    release,
    resolve(repo, "charts/agenttype-operator"),
    "-n",
    namespace,
    "--wait",
    "--timeout",
    "4m",
    ...Object.entries(values).flatMap(([key, value]) => ["--set", `${key}=${value}`]),
  );
  return { crdsPreinstalled };
}
