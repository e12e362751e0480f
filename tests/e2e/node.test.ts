// End-to-end proof of the full-node tier: real kubelet + containerd + runc + CNI bridge +
// kube-proxy, running images built locally without Docker (tests/cluster/images.sh).
// global-setup.ts brings the cluster up and sets AGENTTYPE_KUBECONFIG, AGENTTYPE_BIN and
// AGENTTYPE_TEST_IMAGE.
import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { eventually } from "../fixtures/eventually.ts";
import { e2eCluster } from "./cluster-env.ts";

const execFileP = promisify(execFile);

const { kubeconfig: kubeconfigPath, bin } = e2eCluster();
const kubectlBin = resolve(bin, "kubectl");
const IMAGE = process.env.AGENTTYPE_TEST_IMAGE ?? "localhost/agenttype/testimage:latest";

const kc = new k8s.KubeConfig();
kc.loadFromFile(kubeconfigPath);
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);

const ns = `e2e-node-${Date.now().toString(36)}`;
const T = 180_000;

const waitFor = <V>(what: string, fn: () => Promise<V | undefined>, timeoutMs = 120_000) =>
  eventually(what, fn, timeoutMs, 250);

async function kubectl(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await execFileP(kubectlBin, ["--kubeconfig", kubeconfigPath, ...args], {
      timeout: 60_000,
    });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    return { stdout: e.stdout ?? "", stderr: e.stderr ?? "", code: typeof e.code === "number" ? e.code : -1 };
  }
}

/** Runs bash in a pod through `kubectl exec`; fails the test on a non-zero exit. */
async function execIn(pod: string, script: string): Promise<string> {
  const r = await kubectl("exec", "-n", ns, pod, "--", "bash", "-c", script);
  if (r.code !== 0) throw new Error(`exec in ${pod} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** bash one-liner: one TCP exchange with the echo server at HOST PORT. */
const tcpPing = (host: string, port: number, msg: string): string =>
  `exec 3<>/dev/tcp/${host}/${port} && echo ${msg} >&3 && timeout 5 cat <&3`;

const echoLabels = { app: "echo" };
let echoReady: Promise<k8s.V1Pod[]> | undefined;

/** The echo Deployment, scaled to 3 with every replica Ready (created once, shared by tests). */
function echoPods(): Promise<k8s.V1Pod[]> {
  echoReady ??= (async () => {
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: "echo" },
        spec: {
          replicas: 1,
          selector: { matchLabels: echoLabels },
          template: {
            metadata: { labels: echoLabels },
            spec: {
              terminationGracePeriodSeconds: 2,
              containers: [
                {
                  name: "echo",
                  image: IMAGE,
                  imagePullPolicy: "Never",
                  ports: [{ containerPort: 8080 }],
                  readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
                },
              ],
            },
          },
        },
      },
    });
    // Scale through the scale subresource, as `kubectl scale` and an HPA do.
    await waitFor("deployment echo to be observed", async () => {
      const d = await apps.readNamespacedDeployment({ name: "echo", namespace: ns });
      return (d.status?.observedGeneration ?? 0) >= 1 ? d : undefined;
    });
    await apps.replaceNamespacedDeploymentScale({
      name: "echo",
      namespace: ns,
      body: { metadata: { name: "echo", namespace: ns }, spec: { replicas: 3 } },
    });
    await waitFor("3 ready replicas", async () => {
      const d = await apps.readNamespacedDeployment({ name: "echo", namespace: ns });
      return d.status?.readyReplicas === 3 && d.status?.updatedReplicas === 3 ? d : undefined;
    });
    const list = await core.listNamespacedPod({ namespace: ns, labelSelector: "app=echo" });
    return list.items.filter((p) => !p.metadata?.deletionTimestamp);
  })();
  return echoReady;
}

beforeAll(async () => {
  await core.createNamespace({ body: { metadata: { name: ns } } });
  // Pods are refused until the controller-manager has made the default ServiceAccount.
  await waitFor("serviceaccount default", async () =>
    core.readNamespacedServiceAccount({ name: "default", namespace: ns }),
  );
}, T);

afterAll(async () => {
  if (process.env.AGENTTYPE_KEEP_CLUSTER === "1") return; // keep it for a look
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
});

/** A pod's name; fails the test when the pod is missing. */
function nameOf(pod: k8s.V1Pod | undefined): string {
  const name = pod?.metadata?.name;
  if (name === undefined) throw new Error("expected a pod with a name");
  return name;
}

describe("full-node tier", () => {
  test(
    "a pod from a locally built image runs to completion and its logs show its output",
    async () => {
      await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: "hello" },
          spec: {
            restartPolicy: "Never",
            containers: [
              {
                name: "hello",
                image: IMAGE,
                imagePullPolicy: "Never",
                command: ["/usr/local/bin/hello", "a", "b"],
              },
            ],
          },
        },
      });
      const pod = await waitFor("pod hello to finish", async () => {
        const p = await core.readNamespacedPod({ name: "hello", namespace: ns });
        return p.status?.phase === "Succeeded" || p.status?.phase === "Failed" ? p : undefined;
      });
      expect(pod.status?.phase).toBe("Succeeded");
      expect(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
      const logs = await core.readNamespacedPodLog({ name: "hello", namespace: ns, container: "hello" });
      expect(logs).toContain("hello from agenttype-testimage on hello");
      expect(logs).toContain("args: a b");
    },
    T,
  );

  test(
    "a deployment scales to 3 and all replicas become ready",
    async () => {
      const pods = await echoPods();
      expect(pods).toHaveLength(3);
      for (const p of pods) {
        expect(p.status?.podIP).toMatch(/^10\.88\./);
        const ready = p.status?.conditions?.find((c) => c.type === "Ready");
        expect(ready?.status).toBe("True");
      }
      expect(new Set(pods.map((p) => p.status?.podIP)).size).toBe(3);
    },
    T,
  );

  test(
    "pods reach each other by IP",
    async () => {
      const [client, ...servers] = await echoPods();
      const from = nameOf(client);
      for (const s of servers) {
        const out = await execIn(from, tcpPing(s.status?.podIP ?? "", 8080, `ping-from-${from}`));
        expect(out.trim()).toBe(`pong from ${nameOf(s)}: ping-from-${from}`);
      }
    },
    T,
  );

  test(
    "ClusterIP services work through kube-proxy, including kubernetes.default to the apiserver",
    async () => {
      const pods = await echoPods();
      const svc = await core.createNamespacedService({
        namespace: ns,
        body: {
          metadata: { name: "echo" },
          spec: { selector: echoLabels, ports: [{ port: 80, targetPort: 8080 }] },
        },
      });
      const ip = svc.spec?.clusterIP ?? "";
      expect(ip).toMatch(/^10\.96\./);
      const from = nameOf(pods[0]);
      const names = new Set(pods.map(nameOf));
      // kube-proxy needs a sync after the EndpointSlice appears: retry until answered.
      const seen = new Set<string>();
      await waitFor(`service ${ip} to answer`, async () => {
        const out = await execIn(from, tcpPing(ip, 80, "via-service")).catch(() => "");
        const m = /^pong from (\S+): via-service$/m.exec(out);
        const answeredBy = m?.[1];
        if (answeredBy !== undefined) seen.add(answeredBy);
        return answeredBy;
      });
      for (const n of seen) expect(names.has(n)).toBe(true);

      // The `kubernetes` Service leads to the apiserver: Go's TLS server answers plain HTTP
      // with a recognisable 400.
      const out = await execIn(
        from,
        "exec 3<>/dev/tcp/$KUBERNETES_SERVICE_HOST/$KUBERNETES_SERVICE_PORT && " +
          "printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && timeout 5 cat <&3; echo \"host=$KUBERNETES_SERVICE_HOST\"",
      );
      expect(out).toContain("Client sent an HTTP request to an HTTPS server");
      expect(out).toMatch(/host=10\.96\.0\.1/);
    },
    T,
  );

  test(
    "kubectl exec runs commands in a container and returns their exit code",
    async () => {
      const [pod] = await echoPods();
      const name = nameOf(pod);
      const r = await kubectl("exec", "-n", ns, name, "--", "cat", "/etc/agenttype-testimage");
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe("agenttype-testimage");
      const fail = await kubectl("exec", "-n", ns, name, "--", "bash", "-c", "echo to-stderr >&2; exit 3");
      expect(fail.code).toBe(3);
      expect(fail.stderr).toContain("to-stderr");
      const logs = await kubectl("logs", "-n", ns, name);
      expect(logs.stdout).toContain("echo-server: listening on 8080");
    },
    T,
  );

  test(
    "our pause image is the pod's PID 1 and reaps orphans in a shared process namespace",
    async () => {
      await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: "orphans" },
          spec: {
            shareProcessNamespace: true,
            terminationGracePeriodSeconds: 2,
            containers: [
              {
                name: "main",
                image: IMAGE,
                imagePullPolicy: "Never",
                // Each subshell exits at once, so its `sleep` is re-parented to PID 1.
                command: ["bash", "-c", "for i in 1 2 3 4 5; do (sleep 0.2 &); done; exec sleep 3600"],
              },
            ],
          },
        },
      });
      await waitFor("pod orphans running", async () => {
        const p = await core.readNamespacedPod({ name: "orphans", namespace: ns });
        return p.status?.phase === "Running" ? p : undefined;
      });
      await new Promise((r) => setTimeout(r, 1500)); // the orphans have exited by now
      const out = await execIn(
        "orphans",
        'tr "\\0" " " </proc/1/cmdline; echo; ' +
          'z=0; for s in /proc/[0-9]*/stat; do read -r _ _ st _ <"$s" 2>/dev/null && [ "$st" = Z ] && z=$((z+1)); done; echo "zombies=$z"',
      );
      expect(out).toMatch(/^\/pause\s*$/m);
      expect(out).toContain("zombies=0");
    },
    T,
  );
});
