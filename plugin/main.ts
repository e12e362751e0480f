#!/usr/bin/env node
// kubectl agenttype: logs, attach, exec, list and describe for AgentTypes, as a kubectl plugin
// (kubectl runs `kubectl-agenttype` from PATH). Exit codes as kubectl's: 0, 1 on any error, the
// remote command's own for exec.
import { parseArgs, UsageError } from "./args.ts";
import { complete, completionAnswer, completionScript } from "./completion.ts";
import { attach, exec, logs } from "./console.ts";
import { PluginError } from "./errors.ts";
import { loadKube } from "./kube.ts";
import { listAgents } from "./read.ts";
import { describe, list } from "./show.ts";

const USAGE = `kubectl agenttype: logs, attach, exec and status of AgentTypes, wherever they run.

Commands:
  list                      every AgentType: readiness, where each replica runs, model, tokens used
  describe NAME             conditions, where it runs, tools and their availability, providers
                            with their recent errors, fallbacks and rate-limit hits, Events
  logs NAME                 the agent's output [--replica N] [-c agent|sidecar] [-f] [--since 5m] [--tail 20]
  attach NAME               the agent's terminal (spec.interactive: true) [--replica N];
                            Ctrl-P Ctrl-Q detaches and leaves the agent running
  exec NAME -- CMD [ARG...] run a command in the agent's container [--replica N] [-i] [-t]
  completion bash|zsh       a completion script for kubectl-agenttype

Flags of every command: -n/--namespace, --context, --kubeconfig, --request-timeout (default 30s);
list and describe: -o json|yaml (list: also wide); list: -A/--all-namespaces.
Replica N is the N-th of the agent's pods by age (a StatefulSet's: its ordinal), as list -o wide shows.
`;

async function run(argv: string[], signal: AbortSignal): Promise<number> {
  if (argv[0] === "__complete") {
    const words = argv.slice(1);
    const names = async (namespace: string | undefined) => {
      try {
        const kube = loadKube({ namespace, requestTimeoutMs: 5000 });
        return (await listAgents(kube, false)).map((a) => a.metadata.name);
      } catch {
        return [];
      }
    };
    process.stdout.write(`${completionAnswer(await complete(words, names))}\n`);
    return 0;
  }
  const inv = parseArgs(argv);
  if (inv.command === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  if (inv.command === "completion") {
    process.stdout.write(completionScript(inv.name as "bash" | "zsh"));
    return 0;
  }
  const kube = loadKube(inv, signal);
  switch (inv.command) {
    case "list":
      process.stdout.write(`${await list(kube, inv)}\n`);
      return 0;
    case "describe":
      process.stdout.write(`${await describe(kube, inv)}\n`);
      return 0;
    case "logs":
      return logs(kube, inv, signal);
    case "attach":
      return attach(kube, inv, signal);
    case "exec":
      return exec(kube, inv, signal);
  }
}

const cancel = new AbortController();
for (const s of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(s, () => cancel.abort());
// A reader that went away (`| head`) ends the output quietly, as kubectl does.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
});

run(process.argv.slice(2), cancel.signal).then(
  (code) => {
    process.exitCode = code;
    // Open sockets of the HTTP client would keep the process alive past its answer.
    setImmediate(() => process.exit(code));
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`error: ${error.message}\nSee 'kubectl agenttype help'.\n`);
      process.exit(1);
    }
    if (error instanceof PluginError) {
      process.stderr.write(`error: ${error.message}\n`);
      process.exit(error.exitCode);
    }
    process.stderr.write(`error: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
