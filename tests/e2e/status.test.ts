// Status follows the pods, on the full-node tier (a kubelet pulls images and runs containers):
// an image that cannot be pulled and a crash loop each reach the AgentType as Degraded with a
// precise reason and message and a Warning Event, so `kubectl describe at NAME` tells a user
// why the agent does not run without looking at pods.
import { spawn } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { eventually } from "../fixtures/eventually.ts";
import { e2eCluster } from "./cluster-env.ts";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const { kubeconfig, bin } = e2eCluster();
const run = Date.now().toString(36);
const ns = `e2e-status-${run}`;
const operatorNs = `e2e-status-op-${run}`;
const release = `e2e-st-${run}`;
const T = 300_000;

function sh(cmd: string, args: string[], input?: string, timeoutMs = 120_000): Promise<string> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], timeout: timeoutMs });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c;
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c;
    });
    child.on("error", rej);
    child.on("close", (code) =>
      code === 0 ? res(stdout) : rej(new Error(`${cmd} ${args.join(" ")} (exit ${code}): ${stderr}`)),
    );
    child.stdin.on("error", () => undefined);
    child.stdin.end(input ?? "");
  });
}

const kubectl = (...args: string[]) => sh(resolve(bin, "kubectl"), ["--kubeconfig", kubeconfig, ...args]);
const apply = (object: object) =>
  sh(resolve(bin, "kubectl"), ["--kubeconfig", kubeconfig, "apply", "-f", "-"], JSON.stringify(object));

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}
interface Event {
  type: string;
  reason: string;
  message: string;
  involvedObject: { kind: string; name: string };
}

const conditionsOf = async (name: string): Promise<Condition[]> =>
  (
    JSON.parse(await kubectl("get", "agenttype", "-n", ns, name, "-o", "json")) as {
      status?: { conditions?: Condition[] };
    }
  ).status?.conditions ?? [];

const eventsOf = async (name: string): Promise<Event[]> =>
  (
    JSON.parse(
      await kubectl(
        "get",
        "events",
        "-n",
        ns,
        "--field-selector",
        `involvedObject.name=${name}`,
        "-o",
        "json",
      ),
    ) as { items: Event[] }
  ).items.filter((e) => e.involvedObject.kind === "AgentType");

/** An AgentType of the test image; its LLM provider is never called in these tests. */
function agent(name: string, spec: Record<string, unknown>) {
  return {
    apiVersion: "agenttype.dev/v1alpha1",
    kind: "AgentType",
    metadata: { name, namespace: ns },
    spec: {
      language: "generic",
      imagePullPolicy: "IfNotPresent",
      llm: { providers: [{ name: "local", type: "ollama", endpoint: "http://127.0.0.1:11434", model: "m" }] },
      ...spec,
    },
  };
}

/** Degraded=True with `reason`, once the operator saw it. */
const degradedWith = (name: string, reason: string) =>
  eventually(
    `AgentType ${name} Degraded=True ${reason}`,
    async () =>
      (await conditionsOf(name)).find(
        (c) => c.type === "Degraded" && c.status === "True" && c.reason === reason,
      ),
    180_000,
    500,
  );

beforeAll(async () => {
  await sh(resolve(repo, "tests/cluster/images.sh"), ["project"], undefined, 900_000);
  const crdsPreinstalled = (await kubectl("get", "crds", "-o", "name")).includes("agenttypes.agenttype.dev");
  for (const n of [ns, operatorNs]) await kubectl("create", "namespace", n);
  await sh(
    resolve(bin, "helm"),
    [
      "--kubeconfig",
      kubeconfig,
      "install",
      release,
      resolve(repo, "charts/agenttype-operator"),
      "-n",
      operatorNs,
      "--wait",
      "--timeout",
      "4m",
      "--set",
      `watchNamespaces={${ns}}`,
      "--set",
      `crds.install=${!crdsPreinstalled}`,
      "--set",
      "image.repository=localhost/agenttype/operator",
      "--set",
      "image.tag=dev",
      "--set",
      "sidecar.image.repository=localhost/agenttype/sidecar",
      "--set",
      "sidecar.image.tag=dev",
      "--set",
      "wrapper.image.repository=localhost/agenttype/wrapper",
      "--set",
      "wrapper.image.tag=dev",
    ],
    undefined,
    T,
  );
  await eventually("serviceaccount default", () => kubectl("get", "serviceaccount", "-n", ns, "default"));
}, 1_200_000);

afterAll(async () => {
  if (process.env.AGENTTYPE_KEEP_CLUSTER === "1") return;
  await sh(resolve(bin, "helm"), ["--kubeconfig", kubeconfig, "uninstall", release, "-n", operatorNs]).catch(
    () => undefined,
  );
  await kubectl("delete", "namespace", "--ignore-not-found", "--wait=false", ns, operatorNs).catch(
    () => undefined,
  );
}, T);

describe("status follows the pods", () => {
  test(
    "an image that cannot be pulled: Degraded ImagePullFailed, a Warning Event, Progressing tells the truth",
    async () => {
      await apply(agent("unpullable", { image: "localhost/agenttype/does-not-exist:1" }));
      const degraded = await degradedWith("unpullable", "ImagePullFailed");
      expect(degraded?.message).toMatch(
        /container agent cannot pull its image \((ErrImagePull|ImagePullBackOff)\)/,
      );
      const progressing = (await conditionsOf("unpullable")).find((c) => c.type === "Progressing");
      expect(progressing?.message).not.toContain("terminating");
      const ready = (await conditionsOf("unpullable")).find((c) => c.type === "Ready");
      expect(ready?.status).toBe("False");
      const event = await eventually("a Warning Event ImagePullFailed", async () =>
        (await eventsOf("unpullable")).find((e) => e.reason === "ImagePullFailed"),
      );
      expect(event?.type).toBe("Warning");
      // What a user sees, for the README.
      process.stderr.write(`\n${await kubectl("describe", "agenttype", "-n", ns, "unpullable")}\n`);
    },
    T,
  );

  test(
    "a crash loop: Degraded CrashLoopBackOff naming the container, exit code and last message",
    async () => {
      await apply(
        agent("crasher", {
          image: process.env.AGENTTYPE_TEST_IMAGE ?? "localhost/agenttype/testimage:latest",
          command: ["/bin/sh", "-c", "echo 'config file missing' > /dev/termination-log; exit 3"],
        }),
      );
      const degraded = await degradedWith("crasher", "CrashLoopBackOff");
      expect(degraded?.message).toContain("container agent keeps crashing");
      expect(degraded?.message).toContain("exited with code 3 (Error): config file missing");
      const event = await eventually("a Warning Event CrashLoopBackOff", async () =>
        (await eventsOf("crasher")).find((e) => e.reason === "CrashLoopBackOff"),
      );
      expect(event?.type).toBe("Warning");
    },
    T,
  );
});
