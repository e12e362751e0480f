// The README's laptop path on a machine without a registry: kind (built from the Go module proxy)
// creates the cluster of config/kind/cluster.yaml from the node image made here
// (tests/kind/node-image.sh), as the README says for offline machines, and it works as a cluster;
// then, on that one cluster, `make up CONTEXT=kind-agenttype` and `make down`, and Tilt's kind
// branch (`tilt ci`, a live update under `tilt up`, `tilt down`), images reaching the node with
// `kind load docker-image` as they do on a laptop.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { eventually } from "../fixtures/eventually.ts";
import { exec, execOk } from "../fixtures/exec.ts";
import { copyRepository, liveUpdateOperator } from "../fixtures/tilt.ts";
import { repo } from "./docker-env.ts";

let kind: string;
let kubectlBin: string;
let nodeImage: string;
let dir: string;
/** kind and kubectl get a kubeconfig of their own: never the user's ~/.kube/config. */
let env: NodeJS.ProcessEnv;
const lastLine = (text: string) => text.trim().split("\n").at(-1) ?? "";
const DEMO_NS = "agenttype-demo";
const AGENTS = ["node-agent", "python-agent"];

beforeAll(async () => {
  kind = lastLine(await execOk(join(import.meta.dirname, "build-kind.sh"), [], { timeoutMs: 900_000 }));
  nodeImage = lastLine(
    await execOk(join(import.meta.dirname, "node-image.sh"), [], { timeoutMs: 1_500_000 }),
  );
  kubectlBin = join(
    lastLine(await execOk(join(repo, "tests/cluster/build-components.sh"), [], { timeoutMs: 3_600_000 })),
    "kubectl",
  );
  dir = mkdtempSync(join(tmpdir(), "agenttype-kind-"));
  // Debian's docker client first (kind runs `docker` from PATH), then kind itself (make up and Tilt
  // run `kind load`), kubectl and helm (the harness's, as tests/e2e/demo.sh prefers them), and node.
  env = {
    ...process.env,
    KUBECONFIG: join(dir, "kubeconfig"),
    PATH: ["/usr/bin", dirname(kind), dirname(kubectlBin), dirname(process.execPath), process.env.PATH].join(
      ":",
    ),
  };
  await exec(kind, ["delete", "cluster", "--name", "agenttype"], { env });
  const created = await exec(
    kind,
    ["create", "cluster", "--config", "config/kind/cluster.yaml", "--image", nodeImage, "--wait", "5m"],
    { env, cwd: repo, timeoutMs: 900_000 },
  );
  expect(created.code, created.stderr + created.stdout).toBe(0);
}, 3_600_000);

afterAll(async () => {
  if (kind && process.env.AGENTTYPE_KEEP_KIND !== "1")
    await exec(kind, ["delete", "cluster", "--name", "agenttype"], { env });
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 300_000);

const kubectl = (...args: string[]) =>
  execOk(kubectlBin, ["--context", "kind-agenttype", ...args], { env, timeoutMs: 300_000 });

describe("kind create cluster --config config/kind/cluster.yaml, offline", () => {
  test("the node runs the pinned Kubernetes and is Ready", async () => {
    const node = JSON.parse(await kubectl("get", "node", "agenttype-control-plane", "-o", "json"));
    expect(node.status.nodeInfo.kubeletVersion).toBe(nodeImage.split(":").at(-1));
    expect(node.status.conditions.find((c: { type: string }) => c.type === "Ready").status).toBe("True");
  });

  test("CoreDNS answers and a pod reaches a Service by name", async () => {
    await kubectl("-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=180s");
    await kubectl(
      "run",
      "dns-check",
      "--image=localhost/agenttype/debian-base:bookworm",
      "--image-pull-policy=Never",
      "--restart=Never",
      "--command",
      "--",
      "sh",
      "-c",
      // CoreDNS rolled out is not yet CoreDNS reachable through its Service on a node that has
      // just come up (a fresh clone's run failed the first lookup): ask for up to 60 s.
      "for i in $(seq 60); do getent hosts kubernetes.default.svc.cluster.local && exit 0; sleep 1; done; exit 1",
    );
    const phase = await eventually(
      "the DNS check pod to finish",
      async () => {
        const p = (await kubectl("get", "pod", "dns-check", "-o", "jsonpath={.status.phase}")).trim();
        return (p === "Succeeded" || p === "Failed") && p;
      },
      180_000,
      1000,
    );
    expect(phase, await kubectl("logs", "dns-check")).toBe("Succeeded");
    expect(await kubectl("logs", "dns-check")).toContain("10.96.0.1");
  });

  test("a claim of the default StorageClass binds, keeps a pod's data for the next pod, and is removed with its volume", async () => {
    // No storageClassName: the default class, as a chart's PersistentVolumeClaim (or an
    // AgentType's persistent memory) would ask for it.
    const claimAndPod = (pod: string, script: string) => `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: storage-check}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 16Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: ${pod}}
spec:
  restartPolicy: Never
  containers:
    - name: check
      image: localhost/agenttype/debian-base:bookworm
      imagePullPolicy: Never
      command: [sh, -c, ${JSON.stringify(script)}]
      volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: storage-check}}]
`;
    const apply = (manifest: string) =>
      execOk(kubectlBin, ["--context", "kind-agenttype", "apply", "-f", "-"], {
        env,
        input: manifest,
        timeoutMs: 60_000,
      });
    const finished = (pod: string) =>
      eventually(
        `${pod} to finish`,
        async () => {
          const p = (await kubectl("get", "pod", pod, "-o", "jsonpath={.status.phase}")).trim();
          return (p === "Succeeded" || p === "Failed") && p;
        },
        180_000,
        1000,
      );
    await apply(claimAndPod("storage-write", "echo kept > /data/note"));
    // On a failure: the claim's and the pod's events, the provisioner's pods and log.
    const storageState = async () =>
      [
        await kubectl("describe", "pvc", "storage-check").catch(String),
        await kubectl("describe", "pod", "storage-write").catch(String),
        await kubectl("get", "pods", "-n", "local-path-storage", "-o", "wide").catch(String),
        await kubectl("get", "events", "-n", "local-path-storage").catch(String),
        await kubectl("logs", "-n", "local-path-storage", "deploy/local-path-provisioner", "--tail=50").catch(
          String,
        ),
      ].join("\n");
    const wrote = await finished("storage-write").catch(async (error: Error) => {
      throw new Error(`${error.message}\n${await storageState()}`);
    });
    expect(wrote, await storageState()).toBe("Succeeded");
    const claim = JSON.parse(await kubectl("get", "pvc", "storage-check", "-o", "json"));
    expect(claim.status.phase).toBe("Bound");
    expect(claim.spec.storageClassName).toBe("standard");
    const volume = JSON.parse(await kubectl("get", "pv", claim.spec.volumeName, "-o", "json"));
    expect(volume.spec.hostPath?.path ?? volume.spec.local?.path).toMatch(/^\/var\/local-path-provisioner\//);

    await kubectl("delete", "pod", "storage-write", "--wait=true");
    await apply(claimAndPod("storage-read", "cat /data/note"));
    expect(await finished("storage-read")).toBe("Succeeded");
    expect((await kubectl("logs", "storage-read")).trim()).toBe("kept");

    // Reclaim policy Delete: the claim gone, the provisioner removes the directory (a helper pod),
    // then the volume.
    await kubectl("delete", "pod", "storage-read", "--wait=true");
    await kubectl("delete", "pvc", "storage-check", "--wait=true");
    await eventually(
      `the volume ${claim.spec.volumeName} to be removed`,
      async () => !(await kubectl("get", "pv", "-o", "name")).includes(claim.spec.volumeName),
      120_000,
      1000,
    );
  });
});

interface Condition {
  type: string;
  status: string;
}
interface Pod {
  metadata: { name: string };
  status: {
    phase: string;
    conditions?: Condition[];
    initContainerStatuses?: { image: string }[];
    containerStatuses?: { image: string }[];
  };
}

/** The images a pod runs, its init containers' (the wrapper, the sidecar) included. */
const podImages = (pods: Pod[]) =>
  pods
    .flatMap((p) => [...(p.status.initContainerStatuses ?? []), ...(p.status.containerStatuses ?? [])])
    .map((c) => c.image)
    .join(" ");

/** The demo agents' pods as `kubectl get pods` shows them: their phase, readiness and images. */
async function agentPods(): Promise<Pod[]> {
  const pods: Pod[] = JSON.parse(await kubectl("get", "pods", "-n", DEMO_NS, "-o", "json")).items;
  return pods.filter((p) => AGENTS.some((a) => p.metadata.name.startsWith(`${a}-`)));
}

/** Waits until each demo agent has logged the end of its run (LLM, tool and memory calls done). */
async function agentsFinish(): Promise<void> {
  for (const agent of AGENTS) {
    await eventually(
      `${agent} to finish its run`,
      async () => {
        const logs = await exec(
          kubectlBin,
          ["--context", "kind-agenttype", "logs", "-n", DEMO_NS, `deploy/${agent}`, "-c", "agent"],
          { env },
        );
        if (/^agent failed/m.test(logs.stdout)) throw new Error(`${agent} failed its run:\n${logs.stdout}`);
        return /^llm: You said: /m.test(logs.stdout) && /^agent done/m.test(logs.stdout);
      },
      120_000,
    );
  }
}

const ready = (o: { status?: { conditions?: Condition[] } }) =>
  o.status?.conditions?.find((c) => c.type === "Ready")?.status;

describe("make up CONTEXT=kind-agenttype, then make down", () => {
  test("make up builds the images with docker build, loads them with kind load, and the demo agents are Ready", async () => {
    // On this machine the Dockerfiles' public bases are local images (tests/kind/images.sh), and
    // builds use the host network (the engine has no NAT): README, "On your laptop".
    const args = `${(await execOk(join(import.meta.dirname, "images.sh"), ["args"], { timeoutMs: 60_000 })).trim()} --network host`;
    await execOk(join(import.meta.dirname, "images.sh"), ["bases"], { timeoutMs: 900_000 });
    const up = await exec("make", ["up", "CONTEXT=kind-agenttype"], {
      cwd: repo,
      env: { ...env, AGENTTYPE_DOCKER_BUILD_ARGS: args },
      timeoutMs: 1_200_000,
    });
    expect(up.code, (up.stdout + up.stderr).slice(-4000)).toBe(0);
    expect(up.stderr).toContain("kind load into kind-agenttype");
    expect(up.stdout).toContain("The demo agents are Ready");

    const agentTypes: { metadata: { name: string }; status?: { conditions?: Condition[] } }[] = JSON.parse(
      await kubectl("get", "agenttypes", "-n", DEMO_NS, "-o", "json"),
    ).items;
    expect(agentTypes.map((a) => [a.metadata.name, ready(a)])).toEqual(AGENTS.map((a) => [a, "True"]));
    const pods = await agentPods();
    expect(pods.map((p) => [p.status.phase, ready(p)])).toEqual(AGENTS.map(() => ["Running", "True"]));
    // The operator's images, tagged by content, loaded into the node by `kind load`: the node
    // cannot pull, so a running pod is the proof they got there.
    const images = podImages(pods);
    expect(images).toMatch(/localhost\/agenttype\/sidecar:dev-[0-9a-f]{12}/);
    expect(images).toMatch(/localhost\/agenttype\/wrapper:dev-[0-9a-f]{12}/);
    expect(images).toContain("localhost/agenttype/e2e-agent-python:dev");
    await agentsFinish();
  });

  test("make down removes the demo and the operator, and leaves the cluster running", async () => {
    const down = await exec("make", ["down", "CONTEXT=kind-agenttype"], {
      cwd: repo,
      env,
      timeoutMs: 600_000,
    });
    expect(down.code, down.stdout + down.stderr).toBe(0);
    const namespaces = await kubectl("get", "namespaces", "-o", "name");
    expect(namespaces).not.toMatch(/namespace\/agenttype-(demo|system)\b/);
    const releases = await execOk(
      join(dirname(kubectlBin), "helm"),
      ["--kube-context", "kind-agenttype", "list", "-A", "-q"],
      { env },
    );
    expect(releases.trim()).toBe("");
    const node = JSON.parse(await kubectl("get", "node", "agenttype-control-plane", "-o", "json"));
    expect(ready(node)).toBe("True");
  });
});

describe("Tilt's kind branch (tilt -- --local-bases), on the same cluster", () => {
  let tilt = "";
  let copy = "";
  /** Tilt's arguments for the Tiltfile: the kind branch, with the local bases of this machine. */
  const tiltfileArgs = ["--local-bases"];

  beforeAll(async () => {
    tilt = lastLine(await execOk(join(repo, "tests/cluster/build-tilt.sh"), [], { timeoutMs: 900_000 }));
    copy = mkdtempSync(join(tmpdir(), "agenttype-kind-tilt-"));
    await copyRepository(copy);
  }, 1_200_000);

  afterAll(async () => {
    if (copy) rmSync(copy, { recursive: true, force: true });
  });

  test("tilt ci builds the images with Docker, loads them with kind load, and both agents finish", async () => {
    const ci = await exec(tilt, ["ci", "--port", "0", "--timeout", "10m", "--", ...tiltfileArgs], {
      cwd: copy,
      env,
      timeoutMs: 900_000,
    });
    const output = ci.stdout + ci.stderr;
    expect(ci.code, output.slice(-4000)).toBe(0);
    expect(output).toContain("SUCCESS. All workloads are healthy.");
    // Tilt's way onto a kind node without a registry: `kind load docker-image` after each build.
    for (const image of [
      "operator",
      "sidecar",
      "wrapper",
      "e2e-upstream",
      "e2e-agent-node",
      "e2e-agent-python",
    ])
      expect(output).toContain(`Pushing localhost/agenttype/${image}:tilt-`);
    expect(output).toContain("Loading image to KIND");
    await agentsFinish();
    const images = podImages(await agentPods());
    expect(images).toMatch(/localhost\/agenttype\/sidecar:tilt-[0-9a-f]{16}/);
    expect(images).toMatch(/localhost\/agenttype\/e2e-agent-node:tilt-[0-9a-f]{16}/);
  });

  test("tilt up live-updates an edited operator file into the running operator, which restarts", async () => {
    const afterEdit = await liveUpdateOperator(
      tilt,
      tiltfileArgs,
      copy,
      env,
      "tests/kind/kind.test.ts",
      "existing",
    );
    // A live update, not a rebuild of the operator's image.
    expect(afterEdit).not.toContain("Building Dockerfile: [localhost/agenttype/operator]");
  });

  test("tilt down removes the operator and the demo", async () => {
    const down = await exec(tilt, ["down", "--delete-namespaces", "--", ...tiltfileArgs], {
      cwd: copy,
      env,
      timeoutMs: 300_000,
    });
    expect(down.code, down.stdout + down.stderr).toBe(0);
    await eventually(
      "the Tiltfile's namespaces to be gone",
      async () =>
        !/namespace\/agenttype-(demo|system)\b/.test(await kubectl("get", "namespaces", "-o", "name")),
      180_000,
    );
  });
});
