// The operator's RBAC against what it really asks of the API server: the operator runs as a
// ServiceAccount bound to exactly the generated rules (config/rbac, the same rules the chart
// renders), through a proxy that records each request; it must work without one 403, and the
// (resource, verb) pairs it used must be the permissions table, no more and no less.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { AppsV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { dump, load } from "js-yaml";
import { afterAll, beforeAll, describe, expect, inject } from "vitest";
import { loadAccess } from "../../operator/kube/access.ts";
import { KubeClient } from "../../operator/kube/client.ts";
import { ruleResource } from "../../operator/kube/rbac.ts";
import { AGGREGATED_API_SERVICE, type Permission, permissions } from "../../operator/kube/resources.ts";
import { freePort } from "../fixtures/ports.ts";
import { removeSubresourcesRoute, subresourcesRoute } from "../fixtures/subresources-route.ts";
import { eventually, kubeconfigPath, simpleAgent, test } from "./cluster.ts";
import { installCrds } from "./crds.ts";
import { startOperator } from "./operator-process.ts";
import { type RbacAttributes, rbacAttributes, startRecordingProxy } from "./recording-proxy.ts";

const cluster = inject("cluster");
const repo = join(import.meta.dirname, "..", "..");
const scratch = mkdtempSync(join(tmpdir(), "agenttype-rbac-"));
const AT = { group: "agenttype.dev", version: "v1alpha1", plural: "agenttypes" };

beforeAll(async () => {
  await installCrds(kubeconfigPath());
});

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function kubectl(args: string[], stdin?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      join(cluster.binDir, "kubectl"),
      ["--kubeconfig", cluster.kubeconfig, ...args],
      { timeout: 60_000 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`kubectl ${args.join(" ")}: ${stderr}`)) : resolve(stdout),
    );
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

interface Manifest {
  metadata: { name: string; namespace?: string };
  [field: string]: unknown;
}

const generated = (path: string) => load(readFileSync(join(repo, path), "utf8")) as Manifest;

/** An address of this machine that kube-apiserver reaches and an EndpointSlice may hold (not loopback). */
function machineAddress(): string {
  const address = Object.values(networkInterfaces())
    .flat()
    .find((a) => a !== undefined && a.family === "IPv4" && !a.internal)?.address;
  if (address === undefined) throw new Error("this machine has no IPv4 address but loopback");
  return address;
}

/** "group/resource:verb" for each verb, the way both sides are compared. */
const pairs = (group: string, resource: string, verbs: readonly string[]) =>
  verbs.map((verb) => `${group}/${resource}:${verb}`);
const granted = (table: readonly Permission[]) =>
  table.flatMap((p) => pairs(p.resource.group, ruleResource(p), p.verbs)).sort();
const used = (attributes: RbacAttributes[]) =>
  [...new Set(attributes.flatMap((a) => pairs(a.group, a.resource, a.verbs)))].sort();

/**
 * The generated RBAC bound to a new ServiceAccount in `namespace`, as the chart's namespaced mode
 * binds it: the watched rules by a RoleBinding to the ClusterRole, the Lease rules by a Role
 * there, the hosts rules (cluster-scoped AgentHosts) by a ClusterRoleBinding, the aggregated
 * API's as the chart binds them. Returns the cluster-scoped objects' kind/name, to delete
 * afterwards (they outlive the namespace), but for the RoleBinding in kube-system, which
 * `authenticationReaderBinding` names.
 */
const authenticationReaderBinding = (namespace: string) =>
  `agenttype-operator-authentication-reader-${namespace}`;

async function bindGeneratedRbac(namespace: string, serviceAccount: string): Promise<string[]> {
  const clusterRole = generated("config/rbac/role.yaml");
  clusterRole.metadata.name = `agenttype-operator-${namespace}`;
  const hostsRole = generated("config/rbac/hosts_role.yaml");
  hostsRole.metadata.name = `agenttype-operator-hosts-${namespace}`;
  const leaderRole = generated("config/rbac/leader_election_role.yaml");
  leaderRole.metadata.namespace = namespace;
  const subjects = [{ kind: "ServiceAccount", name: serviceAccount, namespace }];
  const binding = (name: string, kind: string, roleName: string) => ({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name, namespace },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind, name: roleName },
    subjects,
  });
  // The aggregated API's: its ClusterRole, its CA's Role in the operator's namespace, and the
  // front proxy's settings read in kube-system.
  const subresourcesRole = generated("config/rbac/subresources_role.yaml");
  subresourcesRole.metadata.name = `agenttype-operator-subresources-${namespace}`;
  const caRole = generated("config/rbac/subresources_ca_role.yaml");
  caRole.metadata.namespace = namespace;
  const authenticationReader = {
    ...binding(authenticationReaderBinding(namespace), "Role", "extension-apiserver-authentication-reader"),
    metadata: { name: authenticationReaderBinding(namespace), namespace: "kube-system" },
  };
  const items = [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: serviceAccount, namespace } },
    subresourcesRole,
    {
      ...binding(subresourcesRole.metadata.name, "ClusterRole", subresourcesRole.metadata.name),
      kind: "ClusterRoleBinding",
      metadata: { name: subresourcesRole.metadata.name },
    },
    caRole,
    binding("agenttype-operator-subresources-ca", "Role", caRole.metadata.name),
    authenticationReader,
    clusterRole,
    binding("agenttype-operator", "ClusterRole", clusterRole.metadata.name),
    leaderRole,
    binding("agenttype-operator-leader-election", "Role", leaderRole.metadata.name),
    hostsRole,
    {
      ...binding(hostsRole.metadata.name, "ClusterRole", hostsRole.metadata.name),
      kind: "ClusterRoleBinding",
      metadata: { name: hostsRole.metadata.name },
    },
  ];
  await kubectl(["apply", "--server-side", "-f", "-"], dump({ apiVersion: "v1", kind: "List", items }));
  return [
    `clusterrole/${clusterRole.metadata.name}`,
    `clusterrole/${hostsRole.metadata.name}`,
    `clusterrolebinding/${hostsRole.metadata.name}`,
    `clusterrole/${subresourcesRole.metadata.name}`,
    `clusterrolebinding/${subresourcesRole.metadata.name}`,
  ];
}

/**
 * An AgentHost nobody answers for (port 1 on loopback) whose key Secret does not exist yet, so
 * the operator generates it; its status says it is unreachable.
 */
const unreachableHost = (name: string, namespace: string) => ({
  apiVersion: "agenttype.dev/v1alpha1",
  kind: "AgentHost",
  metadata: { name },
  spec: {
    driver: "containerd",
    ssh: {
      address: "127.0.0.1",
      port: 1,
      user: "agenttype",
      privateKeySecretRef: { name: `${name}-ssh`, namespace, key: "id_ed25519" },
      hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVtcW0yMmF1c2FtcGxlaG9zdGtleWZvcmRvY3M0",
    },
    containerd: { socket: "/run/containerd/containerd.sock" },
    capacity: { agents: 2, cpu: "2", memory: "2Gi" },
  },
});

describe("RBAC", () => {
  test("under exactly the generated rules the operator works, and uses every rule and nothing else", async ({
    kc,
    namespace,
  }) => {
    const clusterScoped = await bindGeneratedRbac(namespace, "agenttype-operator");
    const hostName = `rbac-${namespace}`;
    const proxy = await startRecordingProxy({
      ...loadAccess({ KUBECONFIG: kubeconfigPath() }),
      token: (await kubectl(["create", "token", "agenttype-operator", "-n", namespace])).trim(),
    });
    const operatorKubeconfig = join(scratch, `${namespace}.kubeconfig`);
    writeFileSync(
      operatorKubeconfig,
      dump({
        apiVersion: "v1",
        kind: "Config",
        "current-context": "proxy",
        contexts: [{ name: "proxy", context: { cluster: "proxy", user: "through-proxy" } }],
        clusters: [{ name: "proxy", cluster: { server: proxy.url } }],
        users: [{ name: "through-proxy", user: {} }],
      }),
    );
    const custom = kc.makeApiClient(CustomObjectsApi);
    const apps = kc.makeApiClient(AppsV1Api);
    // The aggregated API as the chart installs it (Service, endpoint, APIService), its endpoint
    // this machine, where the operator serves it.
    const admin = new KubeClient(loadAccess({ KUBECONFIG: kubeconfigPath() }));
    const subresourcesPort = await freePort();
    await subresourcesRoute(admin, namespace, machineAddress(), subresourcesPort);
    const operator = await startOperator({
      kubeconfig: operatorKubeconfig,
      namespace,
      identity: "op-rbac",
      extraEnv: { SUBRESOURCES_PORT: String(subresourcesPort), BIND_ADDRESS: "0.0.0.0" },
    });
    try {
      // Every path of the reconciler that calls the API server: create the owned objects and
      // the status, record an Event, record it again (a deleted Deployment is recreated), switch
      // the workload's kind both ways (the old one is deleted), add and remove the objects only
      // some AgentTypes get, and renew and release the Lease.
      await custom.createNamespacedCustomObject({ ...AT, namespace, body: simpleAgent("rbac") });
      // The AgentTool prober writes a tool's Available condition (agenttools/status).
      await custom.createNamespacedCustomObject({
        ...AT,
        plural: "agenttools",
        namespace,
        body: {
          apiVersion: "agenttype.dev/v1alpha1",
          kind: "AgentTool",
          metadata: { name: "rbac-tool" },
          spec: {
            version: "1.0.0",
            description: "Probed.",
            protocol: "mcp",
            endpoint: { url: "http://127.0.0.1:9/mcp" },
          },
        },
      });
      await eventually("the AgentTool's Available condition", async () => {
        const tool = (await custom.getNamespacedCustomObject({
          ...AT,
          plural: "agenttools",
          namespace,
          name: "rbac-tool",
        })) as {
          status?: { conditions?: { type: string }[] };
        };
        return tool.status?.conditions?.some((c) => c.type === "Available");
      });
      const first = await eventually("the Deployment", () =>
        apps.readNamespacedDeployment({ namespace, name: "rbac" }),
      );
      await apps.deleteNamespacedDeployment({ namespace, name: "rbac" });
      await eventually("the Deployment recreated", async () => {
        const again = await apps.readNamespacedDeployment({ namespace, name: "rbac" });
        return again.metadata?.uid !== first.metadata?.uid;
      });
      await eventually("the repeated Created event counted", async () => {
        const events = JSON.parse(await kubectl(["get", "events", "-n", namespace, "-o", "json"])) as {
          items: { reason: string; count?: number }[];
        };
        return events.items.some((e) => e.reason === "Created" && (e.count ?? 0) >= 2);
      });
      const memory = (value: object) =>
        kubectl(["patch", "agenttype", "rbac", "-n", namespace, "--type=merge", "-p", JSON.stringify(value)]);
      await memory({ spec: { memory: { type: "persistent", size: "1Gi" } } });
      await eventually("the StatefulSet instead of the Deployment", async () => {
        await apps.readNamespacedStatefulSet({ namespace, name: "rbac" });
        return (await apps.listNamespacedDeployment({ namespace })).items.length === 0;
      });
      await memory({ spec: { memory: { type: "ephemeral", size: null } } });
      await eventually("the Deployment instead of the StatefulSet", async () => {
        await apps.readNamespacedDeployment({ namespace, name: "rbac" });
        return (await apps.listNamespacedStatefulSet({ namespace })).items.length === 0;
      });
      // The StatefulSet's headless Service went with it (services delete); a second replica
      // brings a PodDisruptionBudget, and going back to one deletes it; the NetworkPolicy goes
      // when switched off.
      await eventually(
        "the headless Service deleted",
        async () =>
          !(await kubectl(["get", "services", "-n", namespace, "-o", "name"])).includes("rbac-pods"),
      );
      await memory({ spec: { replicas: 2 } });
      await eventually("the PodDisruptionBudget", () => kubectl(["get", "pdb", "rbac", "-n", namespace]));
      await memory({ spec: { replicas: 1, network: { policy: "disabled" } } });
      await eventually(
        "the NetworkPolicy deleted",
        async () => (await kubectl(["get", "networkpolicies", "-n", namespace, "-o", "name"])).trim() === "",
      );
      await eventually(
        "the PodDisruptionBudget deleted",
        async () => (await kubectl(["get", "pdb", "-n", namespace, "-o", "name"])).trim() === "",
      );
      // The hosts rules: an AgentHost whose key the operator generates (secrets get, create)
      // and whose status it writes; an AgentType on it gets the clean-up finalizer (agenttypes
      // patch), which an admin's abandon annotation lets go when the host cannot be reached.
      await kubectl(["apply", "-f", "-"], JSON.stringify(unreachableHost(hostName, namespace)));
      await eventually("the generated key Secret", () =>
        kubectl(["get", "secret", `${hostName}-ssh`, "-n", namespace]),
      );
      await eventually(
        "the AgentHost's Reachable condition",
        async () =>
          (await kubectl([
            "get",
            "agenthost",
            hostName,
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Reachable')].status}",
          ])) === "False",
      );
      const onHost = simpleAgent("rbac-host");
      onHost.spec.runtime = { type: "containerd", hostRef: { name: hostName } };
      // What places pods on nodes is refused on a host runtime.
      delete onHost.spec.nodeSelector;
      delete onHost.spec.tolerations;
      await custom.createNamespacedCustomObject({ ...AT, namespace, body: onHost });
      await eventually("the host clean-up finalizer", async () =>
        (
          await kubectl([
            "get",
            "agenttype",
            "rbac-host",
            "-n",
            namespace,
            "-o",
            "jsonpath={.metadata.finalizers}",
          ])
        ).includes("host-cleanup"),
      );
      // The aggregated API's rules: a user's request reaches the operator through
      // kube-apiserver; the operator reviews it (a SubjectAccessReview), reads the AgentType and
      // its AgentHost, and answers that the host cannot be reached.
      await eventually(
        "the APIService Available",
        async () =>
          (await kubectl([
            "get",
            "apiservice",
            AGGREGATED_API_SERVICE,
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Available')].status}",
          ])) === "True",
      );
      const answer = await kubectl([
        "get",
        "--raw",
        `/apis/subresources.agenttype.dev/v1alpha1/namespaces/${namespace}/agenttypes/rbac-host/log`,
      ]).then(
        (out) => out,
        (error: Error) => error.message,
      );
      expect(answer).toMatch(/ServiceUnavailable/);
      expect(answer).toContain(hostName);
      await kubectl([
        "annotate",
        "agenttype",
        "rbac-host",
        "-n",
        namespace,
        "agenttype.dev/abandon-host-cleanup=true",
      ]);
      await kubectl(["delete", "agenttype", "rbac-host", "-n", namespace, "--wait=false"]);
      await eventually(
        "the AgentType on the host gone",
        async () =>
          !(await kubectl(["get", "agenttypes", "-n", namespace, "-o", "name"])).includes("rbac-host"),
      );
      await eventually("a Lease renewal", async () =>
        proxy.requests.some((r) => r.method === "PUT" && r.url.includes("/leases/")),
      );
      expect(await operator.stop("SIGTERM")).toBe(0);
    } finally {
      await operator.stop("SIGKILL");
      await proxy.close();
      await kubectl(["delete", "agenthost", hostName, "--ignore-not-found", "--wait=false"]);
      await kubectl(["delete", "--ignore-not-found", ...clusterScoped]);
      await kubectl([
        "delete",
        "rolebinding",
        authenticationReaderBinding(namespace),
        "-n",
        "kube-system",
        "--ignore-not-found",
      ]);
      await removeSubresourcesRoute(admin);
    }

    const forbidden = proxy.requests.filter((r) => r.status === 403);
    expect(forbidden, operator.logs()).toEqual([]);
    const attributes = proxy.requests.map(rbacAttributes);
    // Namespaced mode: nothing outside the watched namespace, which is also the Lease's and the
    // key Secret's here, but the cluster-scoped AgentHosts (no namespace).
    expect(new Set(attributes.map((a) => a.namespace))).toEqual(
      new Set([namespace, "default", "kube-system", undefined]),
    );
    const leases = attributes.filter((a) => a.group === "coordination.k8s.io");
    // The hosts rules: AgentHosts, their key Secrets, and the AgentHosts' Events, which the API
    // server keeps in "default".
    const forHosts = attributes.filter(
      (a) => a.resource.startsWith("agenthosts") || a.resource === "secrets" || a.namespace === "default",
    );
    // The aggregated API's: its reviews, its APIService, and the front proxy's ConfigMap in
    // kube-system (the CA Secret is among the Secrets above).
    const forSubresources = attributes.filter(
      (a) =>
        a.group === "authorization.k8s.io" ||
        a.group === "apiregistration.k8s.io" ||
        a.namespace === "kube-system",
    );
    expect(used(forSubresources)).toEqual([...granted(permissions.subresources), "/configmaps:get"].sort());
    expect(used(leases)).toEqual(granted(permissions.leaderElection));
    // Every hosts rule but two this test has no way to reach: the patch of a repeated AgentHost
    // Event (an unreachable host is reported once; the host tier repeats HostKeyMismatch on every
    // probe), and the server-side apply of a KVM guest's keys, written when a guest boots (the
    // guest tier, tests/guests, boots them).
    expect(used(forHosts)).toEqual(
      granted(permissions.hosts).filter((p) => p !== "/events:patch" && p !== "/secrets:patch"),
    );
    expect(
      used(
        attributes.filter(
          (a) => !leases.includes(a) && !forHosts.includes(a) && !forSubresources.includes(a),
        ),
      ),
    ).toEqual(granted(permissions.watched));
  });
});
