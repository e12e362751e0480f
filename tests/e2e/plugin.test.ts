// kubectl agenttype on the full-node tier, as a user runs it: the executable `make
// install-plugin` builds, against agents the operator runs in real pods. logs (--tail, --since,
// -c sidecar, -f until Ctrl-C), exec (exit code, stdout and stderr apart, stdin), attach to an
// interactive agent through a real pseudo-terminal (keys typed, echo read back, resize,
// detach with Ctrl-P Ctrl-Q leaving the agent running, attach again), and list/describe
// reading the sidecars through the API server.
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { eventually } from "../fixtures/eventually.ts";
import { exec } from "../fixtures/exec.ts";
import { buildPlugin } from "../fixtures/plugin-build.ts";
import { Terminal } from "../fixtures/pty.ts";
import { buildImages, helm, installOperator, kubectl, kubectlIn } from "./cli.ts";
import { e2eCluster } from "./cluster-env.ts";

const run = Date.now().toString(36);
const ns = `e2e-plugin-${run}`;
const operatorNs = `e2e-plugin-op-${run}`;
const release = `e2e-pl-${run}`;
const T = 300_000;
const { kubeconfig } = e2eCluster();
let pluginDir = "";
const pluginPath = () => join(pluginDir, "kubectl-agenttype");
const env = () => ({ ...process.env, KUBECONFIG: kubeconfig });
const plugin = (args: string[], input?: string) =>
  exec(pluginPath(), ["-n", ns, ...args], {
    env: env(),
    timeoutMs: 120_000,
    ...(input === undefined ? {} : { input }),
  });

/** An agent of the test image (root, so security baseline); its LLM provider is never called. */
function agent(name: string, spec: Record<string, unknown>) {
  return {
    apiVersion: "agenttype.dev/v1alpha1",
    kind: "AgentType",
    metadata: { name, namespace: ns },
    spec: {
      image: process.env.AGENTTYPE_TEST_IMAGE ?? "localhost/agenttype/testimage:latest",
      imagePullPolicy: "IfNotPresent",
      language: "generic",
      security: { profile: "baseline" },
      llm: {
        providers: [{ name: "local", type: "ollama", endpoint: "http://127.0.0.1:11434", model: "llama3.2" }],
      },
      ...spec,
    },
  };
}

beforeAll(async () => {
  const built = buildPlugin();
  await buildImages();
  for (const n of [ns, operatorNs]) await kubectl("create", "namespace", n);
  await installOperator(release, operatorNs, ns);
  await eventually("serviceaccount default", () => kubectl("get", "serviceaccount", "-n", ns, "default"));
  await kubectlIn(
    JSON.stringify({
      apiVersion: "v1",
      kind: "List",
      items: [
        agent("talker", {
          command: ["/bin/sh", "-c", 'i=0; while true; do echo "line $i"; i=$((i+1)); sleep 1; done'],
        }),
        agent("shell", { command: ["/bin/sh"], interactive: true }),
      ],
    }),
    "apply",
    "-f",
    "-",
  );
  pluginDir = await built;
  for (const name of ["talker", "shell"])
    await kubectl("wait", "-n", ns, "--for=condition=Ready", `agenttype/${name}`, "--timeout=240s");
}, 1_500_000);

afterAll(async () => {
  // The build (executable, blob, archive) is about 180 MB.
  rmSync(pluginDir, { recursive: true, force: true });
  if (process.env.AGENTTYPE_KEEP_CLUSTER === "1") return;
  await helm("uninstall", release, "-n", operatorNs).catch(() => undefined);
  await kubectl("delete", "namespace", "--ignore-not-found", "--wait=false", ns, operatorNs).catch(
    () => undefined,
  );
}, T);

describe("logs", () => {
  test(
    "--tail, --since and -c sidecar",
    async () => {
      await eventually(
        "talker has printed 4 lines",
        async () => (await plugin(["logs", "talker"])).stdout.split("\n").length > 4 || undefined,
      );
      const tail = await plugin(["logs", "talker", "--tail", "2"]);
      expect(tail.code).toBe(0);
      expect(tail.stdout).toMatch(/^line \d+\nline \d+\n$/);
      const all = (await plugin(["logs", "talker"])).stdout.split("\n").length;
      const recent = (await plugin(["logs", "talker", "--since", "2s"])).stdout.split("\n").length;
      expect(recent).toBeLessThan(all);
      const sidecar = await plugin(["logs", "talker", "-c", "sidecar", "--tail", "1"]);
      expect(sidecar.code).toBe(0);
      expect(JSON.parse(sidecar.stdout)).toHaveProperty("level");
      process.stderr.write(`\n$ kubectl agenttype logs talker --tail 2\n${tail.stdout}`);
    },
    T,
  );

  test(
    "-f follows new lines until Ctrl-C",
    async () => {
      const child = spawn(pluginPath(), ["logs", "talker", "-f", "--tail", "1", "-n", ns], { env: env() });
      let out = "";
      child.stdout.on("data", (c: Buffer) => {
        out += c;
      });
      const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
      const first = await eventually("a first line", async () => /line (\d+)\n/.exec(out)?.[1], 30_000, 100);
      await eventually(
        "two lines after it",
        async () => (out.match(/line \d+\n/g)?.length ?? 0) >= 3 || undefined,
        30_000,
        100,
      );
      const numbers = [...out.matchAll(/line (\d+)\n/g)].map((m) => Number(m[1]));
      expect(numbers.slice(0, 3)).toEqual([Number(first), Number(first) + 1, Number(first) + 2]);
      const interrupted = Date.now();
      child.kill("SIGINT");
      expect(await exited).toBe(130);
      expect(Date.now() - interrupted).toBeLessThan(5000);
    },
    T,
  );
});

describe("exec", () => {
  test(
    "returns the command's exit code, stdout and stderr apart, and takes stdin with -i",
    async () => {
      const r = await plugin(["exec", "talker", "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
      expect([r.code, r.stdout, r.stderr]).toEqual([3, "out\n", "err\n"]);
      const piped = await plugin(["exec", "talker", "-i", "--", "tr", "a-z", "A-Z"], "hello from stdin\n");
      expect([piped.code, piped.stdout]).toEqual([0, "HELLO FROM STDIN\n"]);
      const missing = await plugin(["exec", "talker", "--", "no-such-command"]);
      expect(missing.code).not.toBe(0);
    },
    T,
  );
});

describe("attach", () => {
  test(
    "types into the agent's terminal and reads the echo, resizes it, detaches leaving it running, attaches again",
    async () => {
      const first = new Terminal(pluginPath(), ["attach", "shell", "-n", ns], {
        env: env(),
        rows: 24,
        cols: 80,
        timeoutMs: T,
      });
      await first.waitFor(
        /attached to replica 0 \(pod shell-\S+\) of AgentType shell; detach with Ctrl-P Ctrl-Q/,
        30_000,
      );
      first.type("echo hello-$((6*7))\r");
      await first.waitFor(/hello-42/, 30_000);
      first.type("stty size\r");
      // Both terminals, the pod's and ours, turn a newline into CR LF: lines end in \r\r\n.
      await first.waitFor(/\r+\n24 80\r+\n/, 30_000);
      const mark = first.output.length;
      first.resize(40, 120);
      // The resize reaches the pod's terminal asynchronously; ask until it has.
      await eventually(
        "the agent's terminal is 40x120",
        async () => {
          first.type("stty size\r");
          await new Promise((r) => setTimeout(r, 500));
          return first.output.slice(mark).includes("40 120") || undefined;
        },
        30_000,
        200,
      );
      first.type("\x10\x11");
      await first.waitFor(/detached: the agent keeps running/, 30_000);
      expect(await first.exit(120_000)).toBe(0);
      process.stderr.write(`\n$ kubectl agenttype attach shell\n${first.output}\n`);

      const pod = JSON.parse(
        await kubectl("get", "pods", "-n", ns, "-l", "agenttype.dev/agent=shell", "-o", "json"),
      ).items[0];
      expect(
        pod.status.containerStatuses.find((c: { name: string }) => c.name === "agent").restartCount,
      ).toBe(0);

      const again = new Terminal(pluginPath(), ["attach", "shell", "-n", ns], { env: env(), timeoutMs: T });
      await again.waitFor(/attached to replica 0/, 30_000);
      again.type("echo still-$((40+2))\r");
      await again.waitFor(/still-42/, 30_000);
      again.type("\x10\x11");
      expect(await again.exit(120_000)).toBe(0);
    },
    T,
  );
});

describe("list and describe on running agents", () => {
  test(
    "list reads each sidecar's metrics through the API server; describe its providers",
    async () => {
      const list = await plugin(["list", "-o", "json"]);
      expect(list.code).toBe(0);
      const rows = JSON.parse(list.stdout).items as { name: string; ready: string; tokens?: number }[];
      expect(rows.map((r) => [r.name, r.ready, typeof r.tokens])).toEqual([
        ["shell", "True", "number"],
        ["talker", "True", "number"],
      ]);
      const table = await plugin(["list", "-o", "wide"]);
      process.stderr.write(`\n$ kubectl agenttype list -o wide\n${table.stdout}`);
      const described = await plugin(["describe", "talker"]);
      expect(described.code).toBe(0);
      expect(described.stdout).toMatch(/Providers:\n\s+pod talker-\S+:\n\s+NAME\s+TYPE\s+MODEL\s+STATE/);
      expect(described.stdout).toMatch(/local\s+ollama\s+llama3\.2\s+unknown\s+0/);
      expect(described.stdout).toMatch(/Tokens: 0 input, 0 output/);
      process.stderr.write(`\n$ kubectl agenttype describe talker\n${described.stdout}`);
    },
    T,
  );
});
