// kubectl agenttype against a real API server (no kubelet here: pods are objects that never
// run): list and describe read AgentTypes, their pods, AgentTools, Events; errors a user can
// act on; a ServiceAccount without the verb is refused by RBAC, the verb and subresource named.
// The executable is built as `make install-plugin` builds it, and run as a user runs it.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { loadAccess } from "../../operator/kube/access.ts";
import { KubeClient } from "../../operator/kube/client.ts";
import { exec, execOk } from "../fixtures/exec.ts";
import { pluginAs } from "../fixtures/kubectl-agenttype.ts";
import { loadSample } from "../fixtures/manifests.ts";
import { PLUGIN_BUILD_MS } from "../fixtures/plugin-build.ts";
import { kubeconfigPath, loadKubeConfig, test } from "./cluster.ts";
import { installCrds } from "./crds.ts";

const repo = resolve(import.meta.dirname, "..", "..");
let pluginDir = "";
const plugin = (args: string[], kubeconfig = kubeconfigPath()) =>
  exec(join(pluginDir, "kubectl-agenttype"), args, {
    env: { ...process.env, KUBECONFIG: kubeconfig },
    timeoutMs: 60_000,
  });
const kubectlIn = (input: string, ...args: string[]) =>
  execOk("kubectl", ["--kubeconfig", kubeconfigPath(), ...args], { input });
const apply = (object: object) => kubectlIn(JSON.stringify(object), "apply", "--server-side", "-f", "-");
const applyStatus = (object: object) =>
  kubectlIn(
    JSON.stringify(object),
    "apply",
    "--server-side",
    "--subresource=status",
    "--field-manager=test-status",
    "-f",
    "-",
  );

beforeAll(async () => {
  await installCrds(kubeconfigPath());
  // As a user installs it: the executable and kubectl's completion hook, into a PATH directory.
  pluginDir = mkdtempSync(join(tmpdir(), "agenttype-plugin-bin-"));
  await execOk("make", ["-C", repo, "install-plugin", `PLUGIN_DIR=${pluginDir}`], {
    timeoutMs: PLUGIN_BUILD_MS,
  });
}, PLUGIN_BUILD_MS);

// The executable is 130 MB.
afterAll(() => rmSync(pluginDir, { recursive: true, force: true }));

function agentType(namespace: string, name: string, spec: Record<string, unknown> = {}) {
  return {
    apiVersion: "agenttype.dev/v1alpha1",
    kind: "AgentType",
    metadata: { name, namespace },
    spec: {
      image: "localhost/agenttype/testimage:latest",
      llm: {
        providers: [
          { name: "local", type: "ollama", endpoint: "http://127.0.0.1:11434", model: "llama3.2" },
          { name: "cloud", type: "bedrock", region: "us-east-1", model: "claude" },
        ],
        fallback: ["local", "cloud"],
      },
      ...spec,
    },
  };
}

/** A pod of the agent as the operator's workload would make it, bound to a node that does not exist. */
function agentPod(namespace: string, agent: string, name: string) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels: { "agenttype.dev/agent": agent } },
    spec: {
      nodeName: "node-a",
      containers: [{ name: "agent", image: "localhost/agenttype/testimage:latest" }],
    },
  };
}

describe("list and describe", () => {
  test("list shows readiness, replicas, where each runs and the model; -o wide, json and -A", async ({
    namespace,
  }) => {
    await apply(agentType(namespace, "coder", { replicas: 2 }));
    await apply(agentType(namespace, "critic", { llm: undefined }));
    await applyStatus({
      apiVersion: "agenttype.dev/v1alpha1",
      kind: "AgentType",
      metadata: { name: "coder", namespace },
      status: {
        readyReplicas: 0,
        conditions: [
          {
            type: "Ready",
            status: "False",
            reason: "RollingOut",
            message: "0/2 pods ready",
            lastTransitionTime: new Date().toISOString(),
          },
        ],
      },
    });
    await apply(agentPod(namespace, "coder", "coder-a"));
    await new Promise((r) => setTimeout(r, 1100)); // creation times one second apart: replica 0 is the older
    await apply(agentPod(namespace, "coder", "coder-b"));

    const table = await plugin(["list", "-n", namespace, "-o", "wide"]);
    expect(table.stderr).toBe("");
    expect(table.code).toBe(0);
    const [header, ...rows] = table.stdout.trimEnd().split("\n");
    expect(header).toMatch(
      /^NAME\s+READY\s+REPLICAS\s+RUNTIME\s+WHERE\s+MODEL\s+TOKENS\s+AGE\s+REPLICA:POD\/HOST$/,
    );
    expect(rows[0]).toMatch(
      /^coder\s+False\s+0\/2\s+kubernetes\s+node-a\s+llama3\.2\s+-\s+\S+\s+0:coder-a,1:coder-b$/,
    );
    expect(rows[1]).toMatch(/^critic\s+Unknown\s+0\/1\s+kubernetes\s+<none>\s+<none>\s+-/);
    process.stderr.write(`\n$ kubectl agenttype list -o wide\n${table.stdout}`);

    const json = JSON.parse((await plugin(["list", "-n", namespace, "-o", "json"])).stdout);
    expect(
      json.items.map((i: { name: string; where: { name: string }[] }) => [
        i.name,
        i.where.map((w) => w.name),
      ]),
    ).toEqual([
      ["coder", ["coder-a", "coder-b"]],
      ["critic", []],
    ]);
    const everywhere = await plugin(["list", "-A"]);
    expect(everywhere.stdout).toMatch(/^NAMESPACE\s+NAME/);
    expect(everywhere.stdout).toMatch(new RegExp(`\\n${namespace}\\s+coder\\s`));
    const yaml = await plugin(["list", "-n", namespace, "-o", "yaml"]);
    expect(yaml.stdout).toMatch(/^apiVersion: v1\nkind: List\nitems:\n/);
  });

  test("describe shows conditions, replicas, tools with availability, Events, and a sidecar it cannot read", async ({
    namespace,
  }) => {
    await apply(agentType(namespace, "coder", { tools: [{ name: "web-search", version: "^1.2.0" }] }));
    await apply({
      apiVersion: "agenttype.dev/v1alpha1",
      kind: "AgentTool",
      metadata: { name: "web-search-1-3-0", namespace },
      spec: {
        name: "web-search",
        version: "1.3.0",
        description: "Searches the web.",
        protocol: "mcp",
        endpoint: { url: "http://127.0.0.1:9/mcp" },
      },
    });
    const now = new Date().toISOString();
    await applyStatus({
      apiVersion: "agenttype.dev/v1alpha1",
      kind: "AgentTool",
      metadata: { name: "web-search-1-3-0", namespace },
      status: {
        conditions: [
          {
            type: "Available",
            status: "False",
            reason: "ProbeFailed",
            message: "connection refused",
            lastTransitionTime: now,
          },
        ],
      },
    });
    await applyStatus({
      apiVersion: "agenttype.dev/v1alpha1",
      kind: "AgentType",
      metadata: { name: "coder", namespace },
      status: {
        conditions: [
          {
            type: "ToolsResolved",
            status: "True",
            reason: "ToolUnavailable",
            message: "web-search@1.3.0 did not answer",
            lastTransitionTime: now,
          },
        ],
        resolvedTools: [
          { name: "web-search", version: "1.3.0", agentTool: "web-search-1-3-0", protocol: "mcp" },
        ],
      },
    });
    await apply(agentPod(namespace, "coder", "coder-a"));
    // A running pod whose sidecar the API server's proxy cannot reach (no kubelet, no pod IP).
    await applyStatus({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "coder-a", namespace },
      status: { phase: "Running" },
    });
    const uid = JSON.parse(await kubectlIn("", "get", "agenttype", "-n", namespace, "coder", "-o", "json"))
      .metadata.uid;
    await kubectlIn(
      JSON.stringify({
        apiVersion: "v1",
        kind: "Event",
        metadata: { name: "coder.1", namespace },
        involvedObject: {
          apiVersion: "agenttype.dev/v1alpha1",
          kind: "AgentType",
          name: "coder",
          namespace,
          uid,
        },
        type: "Warning",
        reason: "ToolUnavailable",
        message: "web-search@1.3.0 did not answer its probe",
        source: { component: "agenttype-operator" },
        lastTimestamp: now,
        firstTimestamp: now,
        count: 2,
      }),
      "create",
      "-f",
      "-",
    );

    const described = await plugin(["describe", "coder", "-n", namespace]);
    expect(described.code).toBe(0);
    const text = described.stdout;
    process.stderr.write(`\n$ kubectl agenttype describe coder\n${text}`);
    expect(text).toMatch(/^Name:\s+coder\nNamespace:\s+\S+\nRuntime:\s+kubernetes\n/);
    expect(text).toMatch(/ToolsResolved\s+True\s+ToolUnavailable\s+\S+\s+web-search@1\.3\.0 did not answer/);
    expect(text).toMatch(/0\s+coder-a\s+node-a\s+Running\s+false\s+0/);
    expect(text).toMatch(
      /web-search\s+\^1\.2\.0\s+true\s+1\.3\.0\s+web-search-1-3-0\s+False\s+connection refused/,
    );
    expect(text).toMatch(/pod coder-a:\n\s+sidecar unreadable: /);
    expect(text).toMatch(
      /Warning\s+ToolUnavailable\s+\S+ \(x2\)\s+agenttype-operator\s+web-search@1\.3\.0 did not answer its probe/,
    );

    const json = JSON.parse((await plugin(["describe", "coder", "-n", namespace, "-o", "json"])).stdout);
    expect(json.tools[0]).toMatchObject({ name: "web-search", available: "False" });
    expect(json.events).toHaveLength(1);
  });
});

describe("agents on AgentHosts", () => {
  test("describe shows the host's replicas and its Reachable condition; logs says the cluster does not serve the operator's aggregated API", async ({
    namespace,
  }) => {
    const host = loadSample("agenthost_containerd-edge.yaml");
    host.metadata.name = `edge-${namespace.slice(-6)}`;
    await apply(host);
    await applyStatus({
      apiVersion: "agenttype.dev/v1alpha1",
      kind: "AgentHost",
      metadata: { name: host.metadata.name },
      status: {
        conditions: [
          {
            type: "Reachable",
            status: "False",
            reason: "ConnectFailed",
            message: "connect ECONNREFUSED 10.0.0.9:22",
            lastTransitionTime: new Date().toISOString(),
          },
        ],
      },
    });
    await apply(
      agentType(namespace, "edge", {
        replicas: 2,
        runtime: { type: "containerd", hostRef: { name: host.metadata.name } },
      }),
    );
    await applyStatus({
      apiVersion: "agenttype.dev/v1alpha1",
      kind: "AgentType",
      metadata: { name: "edge", namespace },
      status: {
        hostReplicas: [
          { replica: 0, host: host.metadata.name, state: "running" },
          { replica: 1, host: host.metadata.name, state: "restarting", restarts: 4 },
        ],
      },
    });
    try {
      const text = (await plugin(["describe", "edge", "-n", namespace])).stdout;
      expect(text).toContain(
        `Host:         ${host.metadata.name} (Reachable=False: connect ECONNREFUSED 10.0.0.9:22)`,
      );
      expect(text).toMatch(
        new RegExp(`1\\s+${host.metadata.name}\\s+${host.metadata.name}\\s+restarting\\s+false\\s+4`),
      );
      expect(text).toContain("not read for agents on AgentHosts yet");
      const listed = (await plugin(["list", "-n", namespace])).stdout;
      expect(listed).toMatch(
        new RegExp(`\\nedge\\s+\\S+\\s+0/2\\s+containerd/${host.metadata.name}\\s+${host.metadata.name}\\s`),
      );
      const logs = await plugin(["logs", "edge", "--replica", "1", "-n", namespace]);
      expect(logs.code).toBe(1);
      // This control plane has no APIService for subresources.agenttype.dev (the host tier has).
      expect(logs.stderr).toContain(
        `error: agenttypes/log of AgentType "edge": this cluster does not serve the operator's aggregated API (subresources.agenttype.dev)`,
      );
      const attach = await plugin(["attach", "edge", "-n", namespace]);
      expect(attach.code).toBe(1);
      expect(attach.stderr).toContain(
        'error: AgentType "edge" is not interactive: its agent has no terminal to attach to (set spec.interactive: true)',
      );
    } finally {
      await kubectlIn("", "delete", "agenthost", host.metadata.name, "--wait=false");
    }
  });
});

describe("errors a user can act on", () => {
  test("not found, replica out of range, not interactive, no running replica; exit code 1", async ({
    namespace,
  }) => {
    await apply(agentType(namespace, "coder"));
    await apply(agentPod(namespace, "coder", "coder-a"));
    await apply(agentType(namespace, "idle", { replicas: 0, interactive: true }));
    const cases: [string[], string][] = [
      [["describe", "nope"], `error: AgentType "nope" not found in namespace "${namespace}"`],
      [
        ["logs", "coder", "--replica", "3"],
        'error: replica 3 out of range: AgentType "coder" has replicas 0',
      ],
      [
        ["attach", "coder"],
        'error: AgentType "coder" is not interactive: its agent has no terminal to attach to (set spec.interactive: true)',
      ],
      [["attach", "idle"], 'error: AgentType "idle" has no running replica (spec.replicas is 0)'],
      [["logs"], "error: logs needs the AgentType's NAME"],
    ];
    for (const [args, message] of cases) {
      const r = await plugin([...args, "-n", namespace]);
      expect(r.stderr, args.join(" ")).toContain(message);
      expect(r.code, args.join(" ")).toBe(1);
    }
  });

  test("--context picks the context, and its namespace, from --kubeconfig", async ({ namespace }) => {
    await apply(agentType(namespace, "coder"));
    const admin = loadKubeConfig();
    const config = {
      apiVersion: "v1",
      kind: "Config",
      clusters: admin.clusters.map((c) => ({
        name: c.name,
        cluster: {
          server: c.server,
          "certificate-authority-data": c.caData,
          "certificate-authority": c.caFile,
        },
      })),
      users: admin.users.map((u) => ({
        name: u.name,
        user: {
          "client-certificate": u.certFile,
          "client-key": u.keyFile,
          "client-certificate-data": u.certData,
          "client-key-data": u.keyData,
        },
      })),
      contexts: [
        {
          name: "elsewhere",
          context: { cluster: admin.clusters[0]?.name, user: admin.users[0]?.name, namespace: "kube-system" },
        },
        {
          name: "team",
          context: { cluster: admin.clusters[0]?.name, user: admin.users[0]?.name, namespace },
        },
      ],
      "current-context": "elsewhere",
    };
    const file = join(tmpdir(), `${namespace}-kubeconfig.json`);
    writeFileSync(file, JSON.stringify(config));
    expect(
      (await plugin(["list", "--kubeconfig", file, "--context", "team"], "/nonexistent")).stdout,
    ).toMatch(/\ncoder\s/);
    expect((await plugin(["list", "--kubeconfig", file], "/nonexistent")).stdout).toBe(
      "No AgentTypes found in kube-system namespace.\n",
    );
    const missing = await plugin(["list", "--kubeconfig", file, "--context", "gone"]);
    expect([missing.code, missing.stderr]).toEqual([
      1,
      'error: context "gone" does not exist in the kubeconfig\n',
    ]);
  });
});

describe("completion", () => {
  test("bash completes commands, flags and the namespace's AgentType names from the API server", async ({
    namespace,
  }) => {
    await apply(agentType(namespace, "coder"));
    await apply(agentType(namespace, "critic"));
    const completions = async (...words: string[]) => {
      const script = [
        "source <(kubectl-agenttype completion bash)",
        `COMP_WORDS=(kubectl-agenttype ${words.map((w) => `'${w}'`).join(" ")})`,
        `COMP_CWORD=${words.length}`,
        "_kubectl_agenttype",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's array expansion, not a template
        'printf "%s\n" "${COMPREPLY[@]}"',
      ].join("\n");
      const r = await execOk("bash", ["-c", script], {
        env: { ...process.env, PATH: `${pluginDir}:${process.env.PATH}`, KUBECONFIG: kubeconfigPath() },
        timeoutMs: 60_000,
      });
      return r.trim().split("\n");
    };
    expect(await completions("l")).toEqual(["list", "logs"]);
    expect(await completions("-n", namespace, "logs", "c")).toEqual(["coder", "critic"]);
    expect(await completions("logs", "coder", "--fo")).toEqual(["--follow"]);
    // kubectl itself: it finds the plugin on PATH, and asks kubectl_complete-agenttype (which
    // make install-plugin wrote) for `kubectl agenttype attach <TAB>`.
    // kubectl takes no flag before a plugin's name: the kubeconfig comes from KUBECONFIG.
    const viaKubectl = {
      env: { ...process.env, PATH: `${pluginDir}:${process.env.PATH}`, KUBECONFIG: kubeconfigPath() },
      timeoutMs: 60_000,
    };
    const listed = await execOk("kubectl", ["agenttype", "list", "-n", namespace], viaKubectl);
    expect(listed).toMatch(/\ncoder\s/);
    const answer = await execOk(
      "kubectl",
      ["__complete", "agenttype", "-n", namespace, "attach", ""],
      viaKubectl,
    );
    expect(answer).toMatch(/^coder\ncritic\n:4\n/);
  });
});

describe("RBAC decides", () => {
  test("a ServiceAccount that may read AgentTypes and pods but not logs, attach or exec is refused, the verb and subresource named", async ({
    namespace,
  }) => {
    await apply(agentType(namespace, "coder", { interactive: true }));
    await apply(agentPod(namespace, "coder", "coder-a"));
    const client = new KubeClient(loadAccess({ KUBECONFIG: kubeconfigPath() }));
    const file = await pluginAs({ namespace, kubeconfig: kubeconfigPath(), client }).serviceAccountKubeconfig(
      "viewer",
      [
        { apiGroups: ["agenttype.dev"], resources: ["agenttypes", "agenttools"], verbs: ["get", "list"] },
        { apiGroups: [""], resources: ["pods", "events"], verbs: ["get", "list"] },
      ],
    );

    const list = await plugin(["list"], file);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/\ncoder\s/);
    const user = `system:serviceaccount:${namespace}:viewer`;
    for (const [args, verb, subresource] of [
      [["logs", "coder"], "get", "pods/log"],
      // attach and exec speak WebSocket, an HTTP GET: RBAC checks get first (and create after it).
      [["attach", "coder"], "get", "pods/attach"],
      [["exec", "coder", "--", "true"], "get", "pods/exec"],
    ] as const) {
      const r = await plugin([...args], file);
      process.stderr.write(`\n$ kubectl agenttype ${args.join(" ")}\n${r.stderr}`);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr, args.join(" ")).toContain(
        `error: not allowed: you cannot ${verb} ${subresource} in namespace "${namespace}"`,
      );
      expect(r.stderr, args.join(" ")).toContain(user);
    }
  });
});

describe("deadlines", () => {
  let silent: Server;
  afterAll(() => silent?.close());

  test("an API server that accepts but never answers: the call ends at --request-timeout, with a message, or at once on Ctrl-C", async () => {
    silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as { port: number }).port;
    const file = join(tmpdir(), `silent-${port}.yaml`);
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: [{ name: "c", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: "u", token: "t" }],
      contexts: [{ name: "c", cluster: "c", user: "u" }],
      currentContext: "c",
    });
    writeFileSync(file, config.exportConfig());
    const r = await plugin(["describe", "coder", "--request-timeout", "2s"], file);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^error: get agenttypes\.agenttype\.dev: no answer from http:\/\/127\.0\.0\.1:\d+ within 2 s/,
    );
    expect(r.ms).toBeLessThan(15_000);

    // Ctrl-C ends a call under way at once, long before its deadline.
    const child = spawn(
      join(pluginDir, "kubectl-agenttype"),
      ["describe", "coder", "--request-timeout", "5m"],
      {
        env: { ...process.env, KUBECONFIG: file },
      },
    );
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => {
      stderr += c;
    });
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const interrupted = Date.now();
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    expect(Date.now() - interrupted).toBeLessThan(5000);
    expect(stderr).toBe("error: cancelled\n");
  });
});
