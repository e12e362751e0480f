// Status follows the pods, on the full-node tier (a kubelet pulls images and runs containers):
// an image that cannot be pulled and a crash loop each reach the AgentType as Degraded with a
// precise reason and message and a Warning Event, so `kubectl describe at NAME` tells a user
// why the agent does not run without looking at pods. The sidecar's view reaches the status too:
// an LLM upstream that is down makes the sidecar not ready, and the operator reads its /status
// and sets ProvidersReady=False naming the provider (ADR 0007); back up, True again.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { eventually } from "../fixtures/eventually.ts";
import { buildImages, helm, installOperator, kubectl, kubectlIn } from "./cli.ts";

const run = Date.now().toString(36);
const ns = `e2e-status-${run}`;
const operatorNs = `e2e-status-op-${run}`;
const release = `e2e-st-${run}`;
const T = 300_000;

const apply = (object: object) => kubectlIn(JSON.stringify(object), "apply", "-f", "-");

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
  await buildImages();
  for (const n of [ns, operatorNs]) await kubectl("create", "namespace", n);
  await installOperator(release, operatorNs, ns);
  await eventually("serviceaccount default", () => kubectl("get", "serviceaccount", "-n", ns, "default"));
}, 1_200_000);

afterAll(async () => {
  if (process.env.AGENTTYPE_KEEP_CLUSTER === "1") return;
  await helm("uninstall", release, "-n", operatorNs).catch(() => undefined);
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
          // The test image runs as root, which the default restricted profile refuses before
          // the container starts (ContainerCannotStart): baseline is the profile for such images.
          security: { profile: "baseline" },
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

/** Resolves once exactly `count` pods of the upstream Deployment exist and are ready. */
const upstreamReady = (count: number) =>
  eventually(
    `${count} upstream pods ready`,
    async () => {
      const deployment = JSON.parse(await kubectl("get", "deployment", "-n", ns, "llm", "-o", "json")) as {
        status?: { readyReplicas?: number; replicas?: number };
      };
      const ready = deployment.status?.readyReplicas ?? 0;
      return ready === count && (deployment.status?.replicas ?? 0) === count ? true : undefined;
    },
    180_000,
    500,
  );

const providersReady = (name: string, status: string) =>
  eventually(
    `AgentType ${name} ProvidersReady=${status}`,
    async () => (await conditionsOf(name)).find((c) => c.type === "ProvidersReady" && c.status === status),
    240_000,
    500,
  );

/**
 * The fake Ollama upstream as a Deployment of `replicas` pods behind the Service "llm"; its
 * endpoint. With no pod the Service answers nothing (connection refused).
 */
async function deployUpstream(replicas: number): Promise<string> {
  await apply({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "llm", namespace: ns },
    spec: {
      replicas,
      selector: { matchLabels: { app: "llm" } },
      template: {
        metadata: { labels: { app: "llm" } },
        spec: {
          terminationGracePeriodSeconds: 2,
          containers: [
            {
              name: "ollama",
              image: "localhost/agenttype/e2e-upstream:dev",
              imagePullPolicy: "IfNotPresent",
              ports: [{ name: "http", containerPort: 11434 }],
              readinessProbe: { httpGet: { path: "/api/version", port: "http" }, periodSeconds: 1 },
            },
          ],
        },
      },
    },
  });
  await apply({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "llm", namespace: ns },
    spec: { selector: { app: "llm" }, ports: [{ name: "http", port: 11434, targetPort: "http" }] },
  });
  const ip = (await kubectl("get", "service", "-n", ns, "llm", "-o", "jsonpath={.spec.clusterIP}")).trim();
  return `http://${ip}:11434`;
}

/** The ModelsReady condition once it has this status (and this reason, when given). */
const modelsReady = (name: string, status: string, reason?: string) =>
  eventually(
    `AgentType ${name} ModelsReady=${status}${reason === undefined ? "" : ` ${reason}`}`,
    async () =>
      (await conditionsOf(name)).find(
        (c) =>
          c.type === "ModelsReady" && c.status === status && (reason === undefined || c.reason === reason),
      ),
    240_000,
    500,
  );

describe("the sidecar's view of its providers", () => {
  test("an LLM upstream that is down: ProvidersReady=False naming the provider, a Warning Event; back up: True", async () => {
    // The upstream starts with no pod: its Service answers nothing (connection refused).
    const endpoint = await deployUpstream(0);
    // An agent that asks its LLM every 2 s, as a working agent would: the sidecar learns
    // of the upstream from these real calls.
    const chatty = [
      "const url = (process.env.OLLAMA_HOST ?? 'http://127.0.0.1:4000') + '/api/chat';",
      "const body = JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'ping' }], stream: false });",
      "setInterval(() => fetch(url, { method: 'POST', body, signal: AbortSignal.timeout(15000) })",
      "  .then(async (r) => console.log(r.status, (await r.text()).slice(0, 200)), (e) => console.log(String(e))), 2000);",
    ].join("\n");
    const created = Date.now();
    await apply(
      agent("provider-down", {
        image: "localhost/agenttype/e2e-upstream:dev",
        command: ["node", "-e", chatty],
        llm: {
          providers: [{ name: "local", type: "ollama", endpoint, model: "llama3.2" }],
          retries: { maxAttempts: 1 },
          timeoutSeconds: 10,
        },
      }),
    );
    const down = await providersReady("provider-down", "False");
    expect(down?.reason).toBe("ProviderUnreachable");
    expect(down?.message).toContain(`provider local (ollama ${endpoint}, model llama3.2): unreachable`);
    const warning = await eventually("a Warning Event ProviderUnreachable", async () =>
      (await eventsOf("provider-down")).find((e) => e.reason === "ProviderUnreachable"),
    );
    expect(warning?.type).toBe("Warning");
    expect(warning?.message).toContain("provider local");
    // What a user sees, for the README.
    process.stderr.write(`\n${await kubectl("describe", "agenttype", "-n", ns, "provider-down")}\n`);

    const failedAfter = Date.now() - created;
    await kubectl("scale", "deployment", "-n", ns, "llm", "--replicas=1");
    const scaled = Date.now();
    await upstreamReady(1);
    const back = await providersReady("provider-down", "True");
    process.stderr.write(
      `provider-down: ProvidersReady=False ${(failedAfter / 1000).toFixed(1)} s after the AgentType was applied; True ${((Date.now() - scaled) / 1000).toFixed(1)} s after the upstream was scaled up\n`,
    );
    expect(back?.reason).toBe("SidecarsReady");
    const normal = await eventually("a Normal Event SidecarsReady", async () =>
      (await eventsOf("provider-down")).find((e) => e.reason === "SidecarsReady"),
    );
    expect(normal?.type).toBe("Normal");
    const ready = await eventually("Ready=True", async () =>
      (await conditionsOf("provider-down")).find((c) => c.type === "Ready" && c.status === "True"),
    );
    expect(ready?.reason).toBe("PodsReady");
  }, 600_000);

  test("a model the Ollama server cannot pull: ModelsReady=False naming model and error, a Warning Event; a pullable one: True", async () => {
    const endpoint = await deployUpstream(1);
    await upstreamReady(1);
    await apply(
      agent("model-missing", {
        image: "localhost/agenttype/e2e-upstream:dev",
        command: ["node", "-e", "setInterval(() => undefined, 1 << 30)"],
        llm: { providers: [{ name: "local", type: "ollama", endpoint, model: "no-such-model" }] },
      }),
    );
    // False with ModelsPulling first, while the sidecar tries; then the failure, named.
    const failed = await modelsReady("model-missing", "False", "ModelPullFailed");
    expect(failed?.message).toContain(
      `provider local (ollama ${endpoint}), model no-such-model: cannot pull no-such-model into ${endpoint}: pull model manifest: file does not exist`,
    );
    const warning = await eventually("a Warning Event ModelPullFailed", async () =>
      (await eventsOf("model-missing")).find((e) => e.reason === "ModelPullFailed"),
    );
    expect(warning?.type).toBe("Warning");
    const degraded = (await conditionsOf("model-missing")).find((c) => c.type === "Degraded");
    expect(degraded?.status).toBe("False");
    // What a user sees, for the README.
    process.stderr.write(`\n${await kubectl("describe", "agenttype", "-n", ns, "model-missing")}\n`);

    // A model the upstream's registry has: the new pods' sidecars pull it and become ready.
    await kubectl(
      "patch",
      "agenttype",
      "-n",
      ns,
      "model-missing",
      "--type=json",
      "-p",
      JSON.stringify([{ op: "replace", path: "/spec/llm/providers/0/model", value: "qwen2.5:0.5b" }]),
    );
    const back = await modelsReady("model-missing", "True");
    expect(back?.reason).toBe("SidecarsReady");
    const ready = await eventually("Ready=True", async () =>
      (await conditionsOf("model-missing")).find((c) => c.type === "Ready" && c.status === "True"),
    );
    expect(ready?.reason).toBe("PodsReady");
  }, 600_000);
});
