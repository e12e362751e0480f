// The two ways to install the operator, checked against each other and against a real API
// server: `helm lint --strict` is clean in both modes, `kubectl apply -k config/default`
// installs the same objects as the chart with default values (labels aside), both renderings
// pass a server-side dry run, and the namespaced mode needs nothing cluster-wide but the CRDs and
// the rules of the cluster-scoped AgentHosts.
// Installed for real, both grant the operator exactly its permissions table (least privilege, as
// the API server's authorizer decides it).
import { execFile } from "node:child_process";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { AuthorizationV1Api } from "@kubernetes/client-node";
import { loadAll } from "js-yaml";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { ruleResource } from "../../operator/kube/rbac.ts";
import { type Permission, permissions, type Verb } from "../../operator/kube/resources.ts";
import { createNamespace, deleteNamespace, loadKubeConfig, namespaceName } from "./cluster.ts";
import { installCrds } from "./crds.ts";

const cluster = inject("cluster");
const repo = resolve(fileURLToPath(import.meta.url), "../../..");
const chart = join(repo, "charts/agenttype-operator");
const OPERATOR_NS = "agenttype-system";

interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: object; annotations?: object };
  [field: string]: unknown;
}

function run(
  tool: "helm" | "kubectl",
  args: string[],
  stdin?: string,
): Promise<{ code: number; out: string }> {
  return new Promise((done) => {
    const child = execFile(
      join(cluster.binDir, tool),
      ["--kubeconfig", cluster.kubeconfig, ...args],
      { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => done({ code: error ? Number(error.code ?? 1) : 0, out: stdout + stderr }),
    );
    if (stdin !== undefined) {
      child.stdin?.on("error", () => undefined);
      child.stdin?.end(stdin);
    }
  });
}

async function rendered(
  tool: "helm" | "kubectl",
  args: string[],
): Promise<{ text: string; objects: Manifest[] }> {
  const { code, out } = await run(tool, args);
  expect(code, out).toBe(0);
  return {
    text: out,
    objects: (loadAll(out) as (Manifest | null)[]).filter((o): o is Manifest => o !== null),
  };
}

const helmTemplate = (...set: string[]) =>
  rendered("helm", [
    "template",
    "agenttype-operator",
    chart,
    "-n",
    OPERATOR_NS,
    ...set.flatMap((s) => ["--set", s]),
  ]);

/** An object without its labels and annotations, keys sorted, as comparable text. */
function canonical(o: Manifest): string {
  const sort = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sort)
      : v !== null && typeof v === "object"
        ? Object.fromEntries(
            Object.entries(v)
              .filter(([k]) => k !== "labels" && k !== "annotations")
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([k, x]) => [k, sort(x)]),
          )
        : v;
  return JSON.stringify(sort(o), null, 1);
}

const key = (o: Manifest) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;

beforeAll(async () => {
  await installCrds(cluster.kubeconfig);
  // The operator's namespace, for the dry runs; kustomize's output creates it, Helm does not.
  await run("kubectl", ["create", "namespace", OPERATOR_NS]);
});

afterAll(async () => {
  await run("kubectl", ["delete", "namespace", OPERATOR_NS, "--wait=false", "--ignore-not-found"]);
});

describe("Helm chart and kustomize config", () => {
  test("helm lint --strict is clean, cluster-wide and namespaced", async () => {
    for (const set of [[], ["watchNamespaces={team-a,team-b}"]]) {
      const { code, out } = await run("helm", [
        "lint",
        "--strict",
        chart,
        ...set.flatMap((s) => ["--set", s]),
      ]);
      expect(code, out).toBe(0);
      expect(out).toContain("1 chart(s) linted, 0 chart(s) failed");
      expect(out).not.toMatch(/\[(WARNING|ERROR)\]/);
    }
  });

  test("kubectl apply -k config/default installs the same operator as the chart with default values", async () => {
    const [helm, kustomize] = [
      await helmTemplate(),
      await rendered("kubectl", ["kustomize", join(repo, "config/default")]),
    ];
    const fromHelm = new Map(helm.objects.map((o) => [key(o), canonical(o)]));
    // kustomize creates the namespace itself; Helm installs into one (--create-namespace).
    const fromKustomize = new Map(
      kustomize.objects.filter((o) => o.kind !== "Namespace").map((o) => [key(o), canonical(o)]),
    );
    expect([...fromKustomize.keys()].sort()).toEqual([...fromHelm.keys()].sort());
    for (const [k, text] of fromHelm) expect(fromKustomize.get(k), k).toBe(text);
    for (const [tool, text] of [
      ["helm", helm.text],
      ["kustomize", kustomize.text],
    ] as const) {
      const dryRun = await run("kubectl", ["apply", "--server-side", "--dry-run=server", "-f", "-"], text);
      expect(dryRun.code, `${tool}: ${dryRun.out}`).toBe(0);
    }
  });

  test("values.schema.json refuses a bad value naming it; the ServiceMonitor is there when asked for", async () => {
    const bad = await run("helm", ["template", "x", chart, "--set", "workers=abc"]);
    expect(bad.code).not.toBe(0);
    expect(bad.out).toMatch(/at '\/workers': got string, want integer/);
    expect((await helmTemplate()).objects.map((o) => o.kind)).not.toContain("ServiceMonitor");
    const monitored = await helmTemplate("metrics.serviceMonitor.enabled=true");
    const monitor = monitored.objects.find((o) => o.kind === "ServiceMonitor");
    expect(monitor?.metadata.namespace).toBe(OPERATOR_NS);
  });

  test("namespaced mode: a Role per watched namespace, nothing cluster-wide but the CRDs, the AgentHosts' rules and the aggregated API's", async () => {
    const { objects } = await helmTemplate("watchNamespaces={team-a,team-b}");
    const clusterWide = objects.filter((o) => o.metadata.namespace === undefined);
    expect(new Set(clusterWide.map((o) => o.kind))).toEqual(
      new Set(["CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "APIService"]),
    );
    // AgentHosts are cluster-scoped, so their rules (and the key Secrets they name) can only be
    // granted cluster-wide; so are a SubjectAccessReview and the APIService. Those ClusterRoles
    // hold exactly their tables; the console roles are for users, not the operator.
    const clusterRoles = clusterWide.filter((o) => o.kind === "ClusterRole") as (Manifest & {
      rules: { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[];
    })[];
    expect(clusterRoles.map((r) => r.metadata.name).sort()).toEqual([
      "agenttype-operator-console-operator",
      "agenttype-operator-console-viewer",
      "agenttype-operator-hosts",
      "agenttype-operator-subresources",
    ]);
    const rulesOf = (name: string) =>
      new Set(
        clusterRoles
          .find((r) => r.metadata.name === name)
          ?.rules.flatMap((r) =>
            r.resources.flatMap((res) => r.verbs.map((v) => `${r.apiGroups[0]}/${res}:${v}`)),
          ),
      );
    const tableOf = (table: readonly Permission[]) =>
      new Set(table.flatMap((p) => p.verbs.map((v) => `${p.resource.group}/${ruleResource(p)}:${v}`)));
    expect(rulesOf("agenttype-operator-hosts")).toEqual(tableOf(permissions.hosts));
    expect(rulesOf("agenttype-operator-subresources")).toEqual(tableOf(permissions.subresources));
    expect(
      clusterRoles
        .find((r) => r.metadata.name === "agenttype-operator-subresources")
        ?.rules.find((r) => r.resources.includes("apiservices"))?.resourceNames,
    ).toEqual(["v1alpha1.subresources.agenttype.dev"]);
    expect(
      (await helmTemplate("watchNamespaces={team-a}", "subresources.enabled=false")).objects.map(
        (o) => o.kind,
      ),
    ).not.toContain("APIService");
    const roles = objects.filter((o) => o.kind === "Role" && o.metadata.name === "agenttype-operator");
    expect(roles.map((r) => r.metadata.namespace).sort()).toEqual(["team-a", "team-b"]);
    const deployment = objects.find((o) => o.kind === "Deployment");
    expect(JSON.stringify(deployment)).toContain("team-a,team-b");
  });
});

describe("the operator's RBAC, installed", () => {
  const ALL_VERBS: Verb[] = ["get", "list", "watch", "create", "update", "patch", "delete"];
  const probed = [...permissions.watched, ...permissions.leaderElection];
  const asString = (p: Permission, verb: string) => `${p.resource.group}/${ruleResource(p)}:${verb}`;
  const granted = (table: readonly Permission[]) => table.flatMap((p) => p.verbs.map((v) => asString(p, v)));

  /** Every verb on every resource of the table that `serviceAccount` may use in `namespace`. */
  async function allowedIn(serviceAccount: string, namespace: string): Promise<string[]> {
    const authorization = loadKubeConfig().makeApiClient(AuthorizationV1Api);
    const [saNamespace] = serviceAccount.split(":");
    const user = `system:serviceaccount:${serviceAccount}`;
    const groups = [
      "system:serviceaccounts",
      `system:serviceaccounts:${saNamespace}`,
      "system:authenticated",
    ];
    const answers = await Promise.all(
      probed.flatMap((p) =>
        ALL_VERBS.map(async (verb) => {
          const review = await authorization.createSubjectAccessReview({
            body: {
              spec: {
                user,
                groups,
                resourceAttributes: {
                  namespace,
                  group: p.resource.group,
                  resource: p.resource.plural,
                  ...(p.subresource === undefined ? {} : { subresource: p.subresource }),
                  verb,
                },
              },
            },
          });
          return review.status?.allowed ? [asString(p, verb)] : [];
        }),
      ),
    );
    return [...new Set(answers.flat())].sort();
  }

  const expected = (...tables: (readonly Permission[])[]) => [...new Set(tables.flatMap(granted))].sort();

  test("kubectl apply -k config/rbac: the table in every namespace, the Lease only in the operator's", async () => {
    const { code, out } = await run("kubectl", ["apply", "--server-side", "-k", join(repo, "config/rbac")]);
    expect(code, out).toBe(0);
    const other = namespaceName("rbac-elsewhere");
    try {
      const sa = `${OPERATOR_NS}:agenttype-operator`;
      expect(await allowedIn(sa, other)).toEqual(expected(permissions.watched));
      expect(await allowedIn(sa, OPERATOR_NS)).toEqual(
        expected(permissions.watched, permissions.leaderElection),
      );
    } finally {
      await run("kubectl", ["delete", "--ignore-not-found", "-k", join(repo, "config/rbac")]);
    }
  });

  test("the chart watching one namespace: the table there, the Lease in its own, nothing elsewhere", async () => {
    const kc = loadKubeConfig();
    const watched = await createNamespace(kc, namespaceName("rbac-watched"));
    const { objects } = await helmTemplate(`watchNamespaces={${watched}}`);
    const rbac = objects.filter((o) => ["ServiceAccount", "Role", "RoleBinding"].includes(o.kind));
    const text = JSON.stringify({ apiVersion: "v1", kind: "List", items: rbac });
    const applied = await run("kubectl", ["apply", "--server-side", "-f", "-"], text);
    expect(applied.code, applied.out).toBe(0);
    try {
      const sa = `${OPERATOR_NS}:agenttype-operator`;
      expect(await allowedIn(sa, watched)).toEqual(expected(permissions.watched));
      expect(await allowedIn(sa, OPERATOR_NS)).toEqual(expected(permissions.leaderElection));
      expect(await allowedIn(sa, namespaceName("rbac-elsewhere"))).toEqual([]);
    } finally {
      await run("kubectl", ["delete", "--ignore-not-found", "-f", "-"], text);
      await deleteNamespace(kc, watched);
    }
  });
});
