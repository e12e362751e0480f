// Runs the real operator as a child process against the test cluster, the way it runs in a
// pod: bundled as its image bundles it (operator/bundle.ts), started with the image's Node flags,
// its own process, killable, with flags and environment.
import { type ChildProcess, spawn } from "node:child_process";
import { OPERATOR_ENV, OPERATOR_NODE_FLAGS } from "../../operator/bundle.ts";
import { operatorBundle } from "../fixtures/operator-bundle.ts";
import { freePort } from "../fixtures/ports.ts";

/** How long an operator may take to exit once signalled (a Deployment's default grace is 30 s). */
const STOP_DEADLINE_MS = 30_000;

export interface OperatorProcess {
  child: ChildProcess;
  port: number;
  identity: string;
  logs: () => string;
  /** The audit lines the operator wrote (a subresource's only, when named), parsed. */
  auditLines: (subresource?: string) => Record<string, unknown>[];
  metrics: () => Promise<string>;
  /** Value of one metric line (name with labels, as printed), or undefined. */
  metric: (name: string) => Promise<number | undefined>;
  /** Sends a signal and waits for the process to exit; resolves with its exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
  /** Resolves with the exit code (null when a signal ended it) once the process has exited. */
  exited: Promise<number | null>;
}

export async function startOperator(options: {
  kubeconfig: string;
  namespace: string;
  identity: string;
  leaderElection?: boolean;
  extraEnv?: Record<string, string>;
  /** Node flags after the image's own (bench-operator adds --trace-gc). */
  nodeFlags?: readonly string[];
}): Promise<OperatorProcess> {
  const [port, main] = await Promise.all([freePort(), operatorBundle()]);
  const child = spawn(process.execPath, [...OPERATOR_NODE_FLAGS, ...(options.nodeFlags ?? []), main], {
    env: {
      ...process.env,
      ...OPERATOR_ENV,
      KUBECONFIG: options.kubeconfig,
      WATCH_NAMESPACES: options.namespace,
      POD_NAMESPACE: options.namespace,
      POD_NAME: options.identity,
      LEADER_ELECTION: String(options.leaderElection ?? true),
      BIND_ADDRESS: "127.0.0.1",
      PORT: String(port),
      LOG_LEVEL: "debug",
      ...options.extraEnv,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk) => (output += chunk));
  child.stderr?.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const metrics = async () =>
    (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(30_000) })).text();
  // Wait until it serves its endpoints.
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`operator exited early:\n${output}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`operator did not serve /healthz:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    port,
    identity: options.identity,
    logs: () => output,
    auditLines: (subresource) =>
      output
        .split("\n")
        .filter((l) => l.includes('"audit":true'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((a) => subresource === undefined || a.subresource === subresource),
    metrics,
    metric: async (name) => {
      const line = (await metrics()).split("\n").find((l) => l.startsWith(`${name} `));
      return line === undefined ? undefined : Number(line.split(" ")[1]);
    },
    exited,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      // An operator that does not exit is a failure that says so, not a test hanging to its timeout.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<"late">((resolve) => {
        timer = setTimeout(() => resolve("late"), STOP_DEADLINE_MS);
      });
      const code = await Promise.race([exited, late]).finally(() => clearTimeout(timer));
      if (code !== "late") return code;
      child.kill("SIGKILL");
      await exited;
      throw new Error(
        `the operator did not exit within ${STOP_DEADLINE_MS / 1000} s of ${signal}; killed. Its last lines:\n${output.split("\n").slice(-30).join("\n")}`,
      );
    },
  };
}
