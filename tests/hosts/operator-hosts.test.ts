// The operator process, a real control plane and the test host together: an AgentHost is
// probed (versions, Reachable; a generated key published; a wrong host key refused with a
// condition and an Event), and an AgentType with runtime containerd runs the project's real
// sidecar and wrapper images with an unmodified sample agent on the host, which reaches the
// LLM (the faithful Ollama server on this machine) and a tool through the host-side sidecar
// and writes memory; it scales with `kubectl scale`, rolls a spec change, stops at the host's
// capacity, restarts a crashed agent with an Event, and leaves nothing on the host when deleted.
// The world (control plane, host, LLM, tool, operator) is operator-fixture.ts's.
import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { within } from "../../operator/drivers/call.ts";
import { managedFilter } from "../../operator/drivers/labels.ts";
import { generateClientKeypair } from "../../operator/drivers/ssh/keypair.ts";
import { GENERATED_LABEL } from "../../operator/hosts/client-key.ts";
import type { KubeObject } from "../../operator/kube/client.ts";
import { AGGREGATED_API_SERVICE, resources } from "../../operator/kube/resources.ts";
import { eventually } from "../fixtures/eventually.ts";
import { pluginAs } from "../fixtures/kubectl-agenttype.ts";
import { freePort } from "../fixtures/ports.ts";
import { startOperator } from "../integration/operator-process.ts";
import { condition, type Obj, operatorOnHost } from "./operator-fixture.ts";

const run = promisify(execFile);
const world = operatorOnHost({
  prefix: "hosts",
  identity: "operator-hosts",
  capacity: { agents: 2 },
  subresources: true,
});
const { host, namespace, stateDir, hostName: HOST } = world;
const { getAgentType, getHost, events, readyAgentType, agentLogs, agentHost, agentType, kubectl } = world;
const { plugin, spawnPlugin, pluginOnTerminal, serviceAccountKubeconfig } = pluginAs(world);
/** A merge patch of the test host's AgentHost spec. */
const patchHost = (spec: Record<string, unknown>) =>
  kubectl("patch", "agenthost", HOST, "--type", "merge", "-p", JSON.stringify({ spec }));
/** A command and what it printed, for the README's transcripts. */
const transcript = (args: string[], r: { stdout: string; stderr: string; code: number | null }) =>
  console.log(`$ kubectl agenttype ${args.join(" ")}\n${r.stdout}${r.stderr}(exit ${r.code})`);

describe("AgentHost", () => {
  it("is probed: Reachable=True with the containerd, kernel and OS versions", async () => {
    const probed = await eventually(
      "AgentHost Reachable",
      async () => {
        const h = await getHost(HOST);
        return condition(h, "Reachable")?.status === "True" ? h : undefined;
      },
      60_000,
      250,
    );
    const versions = probed.status?.versions as Record<string, string>;
    expect(versions.containerd).toBe(host.containerdVersion.replace(/^v/, ""));
    expect(versions.kernel).toMatch(/^\d+\.\d+/);
    expect(condition(probed, "Reachable")?.message).toMatch(/containerd .* answers on .*kernel/);
    expect(probed.status?.allocation).toEqual({ agents: 0 });
  });

  it("refuses a host that presents another key: HostKeyMismatch and a Warning Event with both fingerprints", async () => {
    const other = generateClientKeypair("not-the-host").publicKey.split(" ").slice(0, 2).join(" ");
    await world.client.create(
      resources.agentHost,
      undefined,
      agentHost("wrong-key-host", { hostKey: other }) as KubeObject,
    );
    const refused = await eventually(
      "HostKeyMismatch",
      async () => {
        const h = await getHost("wrong-key-host");
        return condition(h, "Reachable")?.reason === "HostKeyMismatch" ? h : undefined;
      },
      60_000,
      250,
    );
    expect(condition(refused, "Reachable")?.status).toBe("False");
    const event = await eventually(
      "HostKeyMismatch Event",
      async () => (await events("wrong-key-host", "default")).find((e) => e.reason === "HostKeyMismatch"),
      30_000,
      250,
    );
    expect(event.type).toBe("Warning");
    const fingerprints = event.message.match(/SHA256:[A-Za-z0-9+/]+/g) ?? [];
    expect(fingerprints).toHaveLength(2);
    expect(new Set(fingerprints).size).toBe(2);
  });

  it("generates a client key when the Secret does not exist, stores it, and publishes the public key", async () => {
    await world.client.create(
      resources.agentHost,
      undefined,
      agentHost("generated-key-host", { secret: "generated-key" }) as KubeObject,
    );
    const published = await eventually(
      "clientPublicKey",
      async () => {
        const h = await getHost("generated-key-host");
        return typeof h.status?.clientPublicKey === "string" ? h : undefined;
      },
      60_000,
      250,
    );
    expect(published.status?.clientPublicKey).toMatch(
      /^ssh-ed25519 AAAA\S+ agenttype-operator@generated-key-host$/,
    );
    const secret = await world.client.get<KubeObject & { data: Record<string, string> }>(
      resources.secret,
      namespace,
      "generated-key",
    );
    expect(Buffer.from(secret.data.id_ed25519 as string, "base64").toString()).toContain(
      "OPENSSH PRIVATE KEY",
    );
    // Not authorized on the host yet: the login is refused, and the status says so.
    expect(condition(published, "Reachable")?.status).toBe("False");
    const event = await eventually(
      "GeneratedClientKey Event",
      async () =>
        (await events("generated-key-host", "default")).find((e) => e.reason === "GeneratedClientKey"),
      30_000,
      250,
    );
    expect(event.message).toContain(published.status?.clientPublicKey as string);
  });

  it("says ClientKeyInvalid in status and a Warning Event, naming the Secret and its key, when the Secret holds no usable private key, and leaves the Secret as it is", async () => {
    const pair = generateClientKeypair("pasted");
    // A public key pasted where the private one belongs, and a generated key damaged since
    // (one the operator wrote: the message says how to get a new one).
    const cases = [
      {
        name: "pasted-public-key",
        contents: `${pair.publicKey}\n`,
        labels: {},
        advice: /unencrypted OpenSSH/,
      },
      {
        name: "damaged-generated-key",
        contents: pair.privateKey.replace(/\n[^-]{20}/, "\n"),
        labels: { [GENERATED_LABEL]: "true" },
        advice: /delete the Secret, and the operator generates a new key/,
      },
    ];
    for (const c of cases) {
      const data = { id_ed25519: Buffer.from(c.contents).toString("base64") };
      await world.client.create(resources.secret, namespace, {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: c.name, namespace, labels: c.labels },
        data,
      } as KubeObject);
      await world.client.create(
        resources.agentHost,
        undefined,
        agentHost(c.name, { secret: c.name }) as KubeObject,
      );
    }
    for (const c of cases) {
      const refused = await eventually(
        `${c.name} ClientKeyInvalid`,
        async () => {
          const h = await getHost(c.name);
          return condition(h, "Reachable")?.reason === "ClientKeyInvalid" ? h : undefined;
        },
        60_000,
        250,
      );
      const message = condition(refused, "Reachable")?.message ?? "";
      expect(message).toContain(`Secret ${namespace}/${c.name} key "id_ed25519"`);
      expect(message).toContain("spec.ssh.privateKeySecretRef.key");
      expect(message).toMatch(c.advice);
      const warning = await eventually(
        `${c.name} ClientKeyInvalid Event`,
        async () => (await events(c.name, "default")).find((e) => e.reason === "ClientKeyInvalid"),
        30_000,
        250,
      );
      expect(warning.type).toBe("Warning");
      expect(warning.message).toBe(message);
      const secret = await world.client.get<KubeObject & { data: Record<string, string> }>(
        resources.secret,
        namespace,
        c.name,
      );
      expect(Buffer.from(secret.data.id_ed25519 as string, "base64").toString()).toBe(c.contents);
    }
  });
});

/** The CPU cgroup (v1, cgroupfs) of an AgentType's running container of a role, read on this machine. */
async function cpuCgroup(name: string, role: string) {
  const [container] = await world.driver.list(
    { "agenttype.dev/name": name, "agenttype.dev/role": role },
    within(30_000),
  );
  if (container === undefined || container.state !== "running")
    throw new Error(`no running ${role} of ${name}`);
  const out = await run(
    world.crictl,
    ["--runtime-endpoint", `unix://${host.containerdSocket}`, "inspect", "-o", "json", container.id],
    { timeout: 30_000 },
  );
  const cgroupsPath = (
    JSON.parse(out.stdout) as { info: { runtimeSpec: { linux: { cgroupsPath: string } } } }
  ).info.runtimeSpec.linux.cgroupsPath;
  if (!cgroupsPath.startsWith("/")) throw new Error(`expected a cgroupfs path, got ${cgroupsPath}`);
  const read = async (file: string) =>
    Number((await readFile(`/sys/fs/cgroup/cpu${cgroupsPath}/${file}`, "utf8")).trim());
  return {
    quotaUs: await read("cpu.cfs_quota_us"),
    periodUs: await read("cpu.cfs_period_us"),
    shares: await read("cpu.shares"),
  };
}

describe("AgentType with runtime containerd", () => {
  it("becomes Ready on the host; its unmodified agent reaches the LLM and a tool through the sidecar and writes memory", async () => {
    const started = Date.now();
    await world.client.create(resources.agentType, namespace, agentType("node-agent") as KubeObject);
    const ready = await readyAgentType("node-agent");
    console.log(`containerd AgentType Ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(ready.status?.readyReplicas).toBe(1);
    expect(ready.status?.hostReplicas).toEqual([{ replica: 0, host: HOST, state: "running", restarts: 0 }]);
    expect(ready.metadata.finalizers).toContain("agenttype.dev/host-cleanup");
    const logs = await eventually(
      "agent done",
      async () => {
        const lines = await agentLogs("node-agent");
        return lines.some((l) => l.includes("agent done")) ? lines : undefined;
      },
      120_000,
      500,
    );
    const text = logs.join("\n");
    expect(text).toMatch(/llm: .* \[model llama3\.2/);
    expect(text).toContain("tools: calculator@2.1.0");
    expect(text).toContain("tool calculator: 6 * 7 = 42");
    expect(text).toMatch(/memory: runs\/\S+ = \{"question":"6 \* 7","answer":"42","version":"1"\}/);
    expect(world.ollama.requests.length).toBeGreaterThan(0);
    expect(condition(ready, "ToolsResolved")?.status).toBe("True");
    const host = await eventually(
      "allocation 1",
      async () => {
        const h = await getHost(HOST);
        return (h.status?.allocation as { agents?: number } | undefined)?.agents === 1 ? h : undefined;
      },
      60_000,
      500,
    );
    expect(condition(host, "Reachable")?.message).toContain("1 agent replicas placed");
  });

  it("kubectl agenttype logs (-f too) and exec reach the agent on the host through the operator's aggregated API; RBAC decides, and each exec is audited", async () => {
    const available = await eventually(
      "APIService Available",
      async () => {
        const api = (await world.client.get(resources.apiService, undefined, AGGREGATED_API_SERVICE)) as Obj;
        return condition(api, "Available")?.status === "True" ? api : undefined;
      },
      120_000,
      1000,
    ).catch(async (error) => {
      const api = await world.client
        .get(resources.apiService, undefined, AGGREGATED_API_SERVICE)
        .catch(() => ({}));
      throw new Error(`${(error as Error).message}: ${JSON.stringify((api as Obj).status)}`);
    });
    expect(condition(available, "Available")?.reason).toBe("Passed");

    const logs = await plugin(["logs", "node-agent"]);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toContain("tool calculator: 6 * 7 = 42");
    const tail = await plugin(["logs", "node-agent", "--tail", "2"]);
    transcript(["logs", "node-agent", "--tail", "2"], tail);
    expect(tail.stdout.trim().split("\n")).toHaveLength(2);
    const sidecar = await plugin(["logs", "node-agent", "--container", "sidecar"]);
    expect(sidecar.code, sidecar.stderr).toBe(0);
    expect(sidecar.stdout).toContain("sidecar ready");

    // -f: a line the agent's process writes after the stream began arrives on it.
    const follower = spawnPlugin(["logs", "node-agent", "-f", "--tail", "0"]);
    await new Promise((r) => setTimeout(r, 3000));
    const wrote = await plugin([
      "exec",
      "node-agent",
      "--",
      "node",
      "-e",
      "require('fs').writeFileSync('/proc/1/fd/1', 'followed marker\\n')",
    ]);
    expect(wrote.code, wrote.stderr).toBe(0);
    const followed = await eventually(
      "the marker on the followed stream",
      async () => follower.stdout().includes("followed marker"),
      30_000,
      250,
    );
    follower.kill();
    expect(followed).toBe(true);

    const started = Date.now();
    const exec = await plugin([
      "exec",
      "node-agent",
      "--",
      "node",
      "-e",
      "console.log('to stdout'); console.error('to stderr'); process.exit(3)",
    ]);
    console.log(`kubectl agenttype exec on the host: ${Date.now() - started} ms`);
    transcript(
      [
        "exec",
        "node-agent",
        "--",
        "node",
        "-e",
        "\"console.log('to stdout'); console.error('to stderr'); process.exit(3)\"",
      ],
      exec,
    );
    expect(exec.code, exec.stderr).toBe(3);
    expect(exec.stdout).toBe("to stdout\n");
    expect(exec.stderr).toBe("to stderr\n");
    // -i: the command reads what the plugin's stdin gives it (crictl exec on an SSH channel).
    const piped = await plugin(
      ["exec", "-i", "node-agent", "--", "sh", "-c", "tr a-z A-Z; exit 4"],
      world.kubeconfig,
      60_000,
      "through stdin\n",
    );
    transcript(
      ["exec", "-i", "node-agent", "--", "sh", "-c", "'tr a-z A-Z; exit 4'", "<<<'through stdin'"],
      piped,
    );
    expect(piped.stdout).toBe("THROUGH STDIN\n");
    expect(piped.code, piped.stderr).toBe(4);

    // The audit line names the user kube-apiserver authenticated; the Event says who ran what.
    const me = (await kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")).trim();
    const audit = world.operator.auditLines();
    expect(audit.find((a) => a.exitCode === 3)).toMatchObject({
      user: me,
      verb: "create",
      subresource: "exec",
      agentType: "node-agent",
      replica: 0,
      host: HOST,
      exitCode: 3,
      command: ["node", "-e", expect.stringContaining("process.exit(3)")],
    });
    const event = await eventually(
      "Exec Event",
      async () =>
        (await events("node-agent")).find(
          (e) => e.reason === "Exec" && e.message.includes("process.exit(3)"),
        ),
      30_000,
      500,
    );
    expect(event.message).toContain(`${me} ran`);
    expect(event.message).toContain("exit code 3");

    // A viewer whose Role grants get on agenttypes/log and agenttypes/exec, not create: the
    // aggregator lets both through, the operator's own review refuses the exec.
    const viewer = await serviceAccountKubeconfig("viewer", [
      { apiGroups: ["agenttype.dev"], resources: ["agenttypes"], verbs: ["get", "list"] },
      {
        apiGroups: ["subresources.agenttype.dev"],
        resources: ["agenttypes/log", "agenttypes/exec"],
        verbs: ["get"],
      },
    ]);
    const viewerLogs = await plugin(["logs", "node-agent", "--tail", "1"], viewer);
    expect(viewerLogs.code, viewerLogs.stderr).toBe(0);
    const viewerExec = await plugin(["exec", "node-agent", "--", "true"], viewer);
    transcript(["exec", "node-agent", "--", "true"], viewerExec);
    expect(viewerExec.code).toBe(1);
    expect(viewerExec.stderr).toContain(
      `error: not allowed: you cannot create agenttypes/exec in namespace "${namespace}"`,
    );
    expect(viewerExec.stderr).toContain(`system:serviceaccount:${namespace}:viewer`);
    // Without get on agenttypes/log, kube-apiserver refuses before the operator hears of it.
    const stranger = await serviceAccountKubeconfig("stranger", [
      { apiGroups: ["agenttype.dev"], resources: ["agenttypes"], verbs: ["get", "list"] },
    ]);
    const strangerLogs = await plugin(["logs", "node-agent"], stranger);
    expect(strangerLogs.code).toBe(1);
    expect(strangerLogs.stderr).toContain(
      `error: not allowed: you cannot get agenttypes/log in namespace "${namespace}"`,
    );
  });

  it("an aggregated API that cannot start says why in a Warning Event on the APIService, and Serving once it does", async () => {
    // A second operator, watching only "default" (it reconciles nothing of this file's), whose
    // aggregated API port is taken.
    const blocker = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => blocker.listen(port, "0.0.0.0", resolve));
    const second = await startOperator({
      kubeconfig: world.kubeconfig,
      namespace: "default",
      identity: "operator-hosts-second",
      leaderElection: false,
      extraEnv: { SUBRESOURCES_PORT: String(port), POD_NAMESPACE: namespace, BIND_ADDRESS: "0.0.0.0" },
    });
    // The API server keeps the Events of a cluster-scoped object in "default".
    const apiServiceEvent = (reason: string) =>
      eventually(
        `${reason} Event`,
        async () => (await events(AGGREGATED_API_SERVICE, "default")).find((e) => e.reason === reason),
        60_000,
        500,
      );
    try {
      const failed = await apiServiceEvent("ServeFailed");
      expect(failed.type).toBe("Warning");
      expect(failed.message).toMatch(/could not start, trying again every 15 s: .*EADDRINUSE/);
      await new Promise((resolve) => blocker.close(resolve));
      const serving = await apiServiceEvent("Serving");
      expect(serving.type).toBe("Normal");
      expect(serving.message).toBe(`the operator serves subresources.agenttype.dev/v1alpha1 on port ${port}`);
    } finally {
      blocker.close();
      await second.stop();
    }
  });

  it("attach: an interactive agent's console is held by tmux on the host; keys typed, echo read back, resize, detach leaves it running, a re-attach replays the scrollback; exec -t", async () => {
    const shell = agentType("shell-agent") as Obj & { spec: Record<string, unknown> };
    shell.spec.command = ["/bin/sh"];
    shell.spec.interactive = true;
    await world.client.create(resources.agentType, namespace, shell as KubeObject);
    await readyAgentType("shell-agent");

    const first = pluginOnTerminal(["attach", "shell-agent"], { rows: 30, cols: 100, timeoutMs: 120_000 });
    await first.waitFor(
      /attached to replica 0 \(AgentHost \S+\) of AgentType shell-agent; detach with Ctrl-P Ctrl-Q/,
      60_000,
    );
    first.type("echo typed-$((6*7))\r");
    await first.waitFor(/typed-42/, 30_000);
    // The console's terminal takes the size of ours from the start, and follows a resize (each
    // reaches the agent's terminal asynchronously: ask until it has).
    const sized = (rows: number, cols: number) => {
      const mark = first.output.length;
      return eventually(
        `the console's terminal is ${rows}x${cols}`,
        async () => {
          first.type("stty size\r");
          await new Promise((r) => setTimeout(r, 500));
          return first.output.slice(mark).includes(`${rows} ${cols}`) || undefined;
        },
        30_000,
        200,
      );
    };
    await sized(30, 100);
    first.resize(40, 132);
    await sized(40, 132);
    for (let i = 1; i <= 60; i++) first.type(`echo scroll-line-${i}\r`);
    // tmux draws the screen with cursor moves, not line ends: the output, not the typed command.
    await first.waitFor(/(?<!echo )scroll-line-60/, 30_000);
    // A second user watches at once: each sees what the other types, in the one shell.
    const second = pluginOnTerminal(["attach", "shell-agent"], { rows: 30, cols: 100, timeoutMs: 120_000 });
    await second.waitFor(/attached to replica 0/, 60_000);
    await second.waitFor(/(?<!echo )scroll-line-60/, 30_000);
    // A third is one more than this operator allows at once (SUBRESOURCES_MAX_SESSIONS=2).
    const third = pluginOnTerminal(["attach", "shell-agent"], { rows: 24, cols: 80, timeoutMs: 60_000 });
    expect(await third.exit(120_000)).toBe(1);
    console.log(`$ kubectl agenttype attach shell-agent\n${third.output}`);
    expect(third.output).toContain(
      `error: agenttypes/attach of AgentType "shell-agent": AgentHost ${HOST} has 2 sessions open through the operator (attach, exec -i/-t), the most the operator allows at once; one must end first (transient: try again)`,
    );
    first.type("echo from-first-$((40+2))\r");
    await second.waitFor(/from-first-42/, 30_000);
    second.type("echo from-second-$((40+2))\r");
    await first.waitFor(/from-second-42/, 30_000);
    // One leaving leaves the other attached.
    second.type("\x10\x11");
    expect(await second.exit(120_000)).toBe(0);
    first.type("echo after-second-left-$((40+2))\r");
    await first.waitFor(/after-second-left-42/, 30_000);
    first.type("\x10\x11");
    await first.waitFor(/detached: the agent keeps running/, 30_000);
    expect(await first.exit(120_000)).toBe(0);
    console.log(`$ kubectl agenttype attach shell-agent\n${first.output}`);

    // The agent ran on: same container, no restart. A new watcher first gets what was printed,
    // the lines scrolled off the screen included, then types into the same shell.
    const again = pluginOnTerminal(["attach", "shell-agent"], { rows: 24, cols: 80, timeoutMs: 120_000 });
    await again.waitFor(/attached to replica 0/, 60_000);
    await again.waitFor(/typed-42/, 30_000);
    await again.waitFor(/scroll-line-1\r*\n[\s\S]*scroll-line-60/, 30_000);
    again.type("echo still-$((40+2))\r");
    await again.waitFor(/still-42/, 30_000);
    again.type("\x10\x11");
    expect(await again.exit(120_000)).toBe(0);
    const ready = await getAgentType("shell-agent");
    expect(condition(ready, "Ready")?.status).toBe("True");

    // One tmux session on the host per replica, named after it, held in the driver's state directory.
    const sessions = await run("tmux", [
      "-S",
      `${stateDir}/tmux.sock`,
      "list-sessions",
      "-F",
      "#{session_name}",
    ]);
    expect(sessions.stdout.split("\n")).toContain(`agenttype_${namespace}_shell-agent_0`);

    // exec -t: a command on a terminal of its own, in the same container. The terminal's size
    // reaches it just after it starts (as in a pod), so it asks a moment later.
    const tty = pluginOnTerminal(
      ["exec", "-i", "-t", "shell-agent", "--", "sh", "-c", "sleep 1; stty size; tty; exit 5"],
      {
        rows: 30,
        cols: 100,
        timeoutMs: 60_000,
      },
    );
    expect(await tty.exit(120_000)).toBe(5);
    expect(tty.output).toMatch(/30 100\r+\n\/dev\/pts\/\d+/);

    // A console lost while the agent runs (its tmux session killed on the host) is opened
    // again by the next attach.
    await run("tmux", [
      "-S",
      `${stateDir}/tmux.sock`,
      "kill-session",
      "-t",
      `=agenttype_${namespace}_shell-agent_0`,
    ]);
    // Without crictl on the host the console cannot open again: the attach says why, exit 1.
    const patchCrictl = async (crictl: string) => {
      await patchHost({ containerd: { crictl } });
      // The operator has read the change once the probe has.
      await eventually(
        "the AgentHost observed",
        async () => {
          const h = await getHost(HOST);
          return h.status?.observedGeneration === h.metadata.generation || undefined;
        },
        60_000,
        500,
      );
    };
    await patchCrictl("/nonexistent/crictl");
    const failed = pluginOnTerminal(["attach", "shell-agent"], { rows: 24, cols: 80, timeoutMs: 120_000 });
    expect(await failed.exit(120_000)).toBe(1);
    console.log(`$ kubectl agenttype attach shell-agent\n${failed.output}`);
    expect(failed.output).toMatch(
      /error: attach to replica 0 \(AgentHost \S+\) failed: open the console \S+ \(tmux, crictl\) on \S+: \/nonexistent\/crictl not found on the host/,
    );
    await patchCrictl(world.crictl);
    const reopened = pluginOnTerminal(["attach", "shell-agent"], { rows: 24, cols: 80, timeoutMs: 120_000 });
    await reopened.waitFor(/attached to replica 0/, 60_000);
    reopened.type("echo reopened-$((40+2))\r");
    await reopened.waitFor(/reopened-42/, 30_000);
    reopened.type("\x10\x11");
    expect(await reopened.exit(120_000)).toBe(0);

    // Each attach is audited and leaves an Event naming the user.
    const me = (await kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")).trim();
    const audit = world.operator.auditLines("attach");
    // first, second, again, failed, reopened.
    expect(audit).toHaveLength(5);
    expect(audit[0]).toMatchObject({
      user: me,
      verb: "create",
      agentType: "shell-agent",
      replica: 0,
      host: HOST,
    });
    expect(audit[0]?.bytesIn).toBeGreaterThan(0);
    const attached = await eventually(
      "Attached Event",
      async () => (await events("shell-agent")).find((e) => e.reason === "Attached"),
      30_000,
      500,
    );
    expect(attached.message).toBe(`${me} attached to replica 0 on AgentHost ${HOST}`);

    // A non-interactive agent has no console: the operator says so.
    const refused = await plugin(["attach", "node-agent"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('AgentType "node-agent" is not interactive');

    // Deleting the AgentType ends its console on the host.
    await world.client.delete(resources.agentType, namespace, "shell-agent");
    await eventually(
      "the console's tmux session gone",
      async () => {
        const left = await run("tmux", [
          "-S",
          `${stateDir}/tmux.sock`,
          "list-sessions",
          "-F",
          "#{session_name}",
        ]).catch(() => ({ stdout: "" }));
        return !left.stdout.includes("shell-agent") || undefined;
      },
      120_000,
      1000,
    );
    await world.gone("shell-agent");
  });

  it("rotates an agent's log past the AgentHost's spec.containerLogs.maxSize, keeping maxFiles; logs reads across the rotation, no line lost", async () => {
    await patchHost({ containerLogs: { maxSize: "16Ki", maxFiles: 2 } });
    try {
      const chatty = agentType("chatty") as Obj & { spec: Record<string, unknown> };
      // Numbered lines of 100 bytes, about 5 KB a second.
      chatty.spec.command = [
        "/bin/sh",
        "-c",
        `i=0; while :; do i=$((i+1)); echo "line $i ${"x".repeat(80)}"; sleep 0.02; done`,
      ];
      await world.client.create(resources.agentType, namespace, chatty as KubeObject);
      await readyAgentType("chatty");
      const directory = await eventually(
        "the agent's log directory",
        async () => (await readdir(`${stateDir}/logs`)).find((d) => d.startsWith(`${namespace}_chatty_0_`)),
        60_000,
        500,
      ).catch(async (e) => {
        throw new Error(`${(e as Error).message}: ${(await readdir(`${stateDir}/logs`)).join(", ")}`);
      });
      const live = `${stateDir}/logs/${directory}/agent_0.log`;
      const firstNumber = async (path: string) =>
        Number(/ stdout F line (\d+) /.exec(await readFile(path, "utf8"))?.[1]);
      // Rotated at a probe of the host (every 20 s); the next rotation replaces <file>.1.
      const rotatedFirst = await eventually(
        "agent_0.log.1",
        async () => (await firstNumber(`${live}.1`).catch(() => undefined)) || undefined,
        90_000,
        1000,
      );
      await eventually(
        "a second rotation",
        async () => ((await firstNumber(`${live}.1`).catch(() => 0)) > rotatedFirst ? true : undefined),
        90_000,
        1000,
      );
      // Two files in all: the live one and one rotated.
      expect(
        (await readdir(`${stateDir}/logs/${directory}`)).filter((f) => f.startsWith("agent_0.log")).sort(),
      ).toEqual(["agent_0.log", "agent_0.log.1"]);
      const liveFirst = await firstNumber(live);
      const logs = await plugin(["logs", "chatty"]);
      expect(logs.code, logs.stderr).toBe(0);
      const numbers = logs.stdout
        .split("\n")
        .flatMap((l) => /^line (\d+) /.exec(l)?.[1] ?? [])
        .map(Number);
      // The lines of both files, in order, none missing where one file ends and the next begins.
      expect(numbers[0]).toBeLessThan(liveFirst);
      expect(numbers).toContain(liveFirst - 1);
      expect(numbers).toContain(liveFirst);
      expect(numbers).toEqual(numbers.map((_, i) => (numbers[0] as number) + i));
      console.log(
        `log rotation at 16Ki, 2 files: logs read lines ${numbers[0]}..${numbers.at(-1)}, the live file begins at ${liveFirst}`,
      );
    } finally {
      await kubectl(
        "patch",
        "agenthost",
        HOST,
        "--type",
        "json",
        "-p",
        '[{"op":"remove","path":"/spec/containerLogs"}]',
      );
      await world.client.delete(resources.agentType, namespace, "chatty").catch(() => {});
      await world.gone("chatty");
    }
  });

  it("scales with kubectl scale 1 → 2 → 3 (beyond the host's capacity: HostFull) → 1", async () => {
    await kubectl("scale", "-n", namespace, "agenttype/node-agent", "--replicas=2");
    const two = await readyAgentType("node-agent");
    expect(two.status?.readyReplicas).toBe(2);
    expect((two.status?.hostReplicas as { replica: number }[] | undefined)?.map((r) => r.replica)).toEqual([
      0, 1,
    ]);

    await kubectl("scale", "-n", namespace, "agenttype/node-agent", "--replicas=3");
    const full = await eventually(
      "HostFull",
      async () => {
        const at = await getAgentType("node-agent");
        return condition(at, "Ready")?.reason === "HostFull" ? at : undefined;
      },
      60_000,
      500,
    );
    expect(condition(full, "Ready")?.message).toContain("room for 2 of 3 replicas");
    expect(full.status?.readyReplicas).toBe(2);

    await kubectl("scale", "-n", namespace, "agenttype/node-agent", "--replicas=1");
    const one = await eventually(
      "one replica",
      async () => {
        const at = await readyAgentType("node-agent");
        return at.status?.replicas === 1 ? at : undefined;
      },
      120_000,
      500,
    );
    expect(one.status?.hostReplicas).toEqual([expect.objectContaining({ replica: 0, state: "running" })]);
    const groups = await world.driver.listGroups({ "agenttype.dev/name": "node-agent" }, within(30_000));
    expect(groups).toHaveLength(1);
  });

  it("rolls a spec change onto the host", async () => {
    const before = await world.driver.listGroups({ "agenttype.dev/name": "node-agent" }, within(30_000));
    const at = await getAgentType("node-agent");
    const env = ((at.spec?.env ?? []) as { name: string; value: string }[]).map((e) =>
      e.name === "AGENT_VERSION" ? { ...e, value: "2" } : e,
    );
    await world.client.apply(
      resources.agentType,
      {
        apiVersion: "agenttype.dev/v1alpha1",
        kind: "AgentType",
        metadata: { name: "node-agent", namespace },
        spec: { ...at.spec, env, resources: { limits: { cpu: "500m" } } },
      } as KubeObject,
      "tests",
    );
    await readyAgentType("node-agent");
    const after = await world.driver.listGroups({ "agenttype.dev/name": "node-agent" }, within(30_000));
    expect(after).toHaveLength(1);
    expect(after[0]?.id).not.toBe(before[0]?.id);
    await eventually(
      "the new version runs",
      async () => (await agentLogs("node-agent")).some((l) => l.includes("agent done (version 2)")),
      120_000,
      500,
    );
    // CPU as a kubelet gives it, read from the containers' cgroups on the host: the agent's limit
    // is a quota (and, with no request, its weight); the sidecar's 50m request is a weight only,
    // for a quota of 5% of a core would throttle its start.
    expect(await cpuCgroup("node-agent", "agent")).toEqual({
      quotaUs: 50_000,
      periodUs: 100_000,
      shares: 512,
    });
    expect(await cpuCgroup("node-agent", "sidecar")).toEqual({ quotaUs: -1, periodUs: 100_000, shares: 51 });
  });

  it("restarts an agent that crashes, with an Event naming its exit code and last lines", async () => {
    const [agent] = await world.driver.list(
      { "agenttype.dev/name": "node-agent", "agenttype.dev/role": "agent" },
      within(30_000),
    );
    expect(agent).toBeDefined();
    // The agent process dies: SIGKILL from outside (its pid on this machine, which is the host).
    const pid = (
      await run(world.crictl, [
        "--runtime-endpoint",
        `unix://${host.containerdSocket}`,
        "inspect",
        "-o",
        "go-template",
        "--template",
        "{{.info.pid}}",
        agent?.id as string,
      ])
    ).stdout.trim();
    expect(Number(pid)).toBeGreaterThan(1);
    process.kill(Number(pid), "SIGKILL");
    const event = await eventually(
      "ContainerRestarted",
      async () => (await events("node-agent")).find((e) => e.reason === "ContainerRestarted"),
      90_000,
      500,
    );
    expect(event.message).toMatch(/agent of replica 0 on host test-host exited with code \d+/);
    expect(event.message).toContain("agent done (version 2)");
    // The Event is written before the status of the same reconcile: wait for the status.
    const restarted = await eventually(
      "restarts 1 in status.hostReplicas",
      async () => {
        const ready = await readyAgentType("node-agent");
        return (ready.status?.hostReplicas as { restarts: number }[] | undefined)?.[0]?.restarts === 1
          ? ready
          : undefined;
      },
      30_000,
      500,
    );
    expect(condition(restarted, "Ready")?.status).toBe("True");
  });

  it("says in ToolsResolved that a host cannot reach a tool behind a cluster Service, and starts nothing", async () => {
    await world.client.create(resources.agentTool, namespace, {
      apiVersion: "agenttype.dev/v1alpha1",
      kind: "AgentTool",
      metadata: { name: "in-cluster", namespace },
      spec: {
        name: "in-cluster",
        version: "1.0.0",
        description: "A tool served by a Service.",
        protocol: "http",
        endpoint: { service: { name: "search", port: 8080 } },
        inputSchema: { type: "object", properties: { q: { type: "string" } } },
      },
    } as KubeObject);
    const manifest = agentType("svc-agent");
    manifest.spec.tools = [{ name: "in-cluster", version: "^1.0.0" }];
    await world.client.create(resources.agentType, namespace, manifest as KubeObject);
    const refused = await eventually(
      "ToolNotReachableFromHost",
      async () => {
        const at = await getAgentType("svc-agent");
        return condition(at, "ToolsResolved")?.reason === "ToolNotReachableFromHost" ? at : undefined;
      },
      60_000,
      500,
    );
    expect(condition(refused, "ToolsResolved")?.message).toContain("Service search is a cluster address");
    expect(await world.driver.listGroups({ "agenttype.dev/name": "svc-agent" }, within(30_000))).toEqual([]);
    await world.client.delete(resources.agentType, namespace, "svc-agent");
  });

  it("deletion removes every container and file of the agent from the host, then the AgentType goes", async () => {
    await world.client.delete(resources.agentType, namespace, "node-agent");
    await eventually(
      "AgentType gone",
      async () => {
        try {
          await getAgentType("node-agent");
          return false;
        } catch {
          return true;
        }
      },
      120_000,
      500,
    );
    expect(await world.driver.listGroups(managedFilter(), within(30_000))).toEqual([]);
    expect(await world.driver.list(managedFilter(), within(30_000))).toEqual([]);
    const left = await world.hostConnection.exec(`ls -A ${stateDir}/volumes 2>/dev/null`, {}, within(30_000));
    expect(left.stdout.trim()).toBe("");
    expect((await events("node-agent")).map((e) => e.reason)).toContain("HostCleanedUp");
  });
});
