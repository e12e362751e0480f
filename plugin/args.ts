// The command line of `kubectl agenttype`: kubectl's own flag conventions (-n, --context,
// --kubeconfig, -o, --flag=value and --flag value, `--` before a command). Pure.

export const COMMANDS = ["list", "describe", "logs", "attach", "exec", "completion", "help"] as const;
export type Command = (typeof COMMANDS)[number];
export const OUTPUTS = ["json", "yaml", "wide"] as const;
export type Output = (typeof OUTPUTS)[number];
export const CONTAINERS = ["agent", "sidecar"] as const;
export type ContainerChoice = (typeof CONTAINERS)[number];

export interface Invocation {
  command: Command;
  /** The AgentType's name (describe, logs, attach, exec), or the shell (completion). */
  name?: string;
  namespace?: string;
  allNamespaces: boolean;
  context?: string;
  kubeconfig?: string;
  output?: Output;
  replica?: number;
  container: ContainerChoice;
  follow: boolean;
  sinceSeconds?: number;
  tail?: number;
  stdin: boolean;
  tty: boolean;
  /** What `exec` runs: everything after `--`. */
  execCommand: string[];
  requestTimeoutMs: number;
}

/** A mistake on the command line: kubectl prints it with a hint and exits 1. */
export class UsageError extends Error {}

interface FlagSpec {
  names: string[];
  takesValue: boolean;
  commands: readonly Command[] | "all";
}

const GLOBAL = "all";
const FLAGS: Record<string, FlagSpec> = {
  namespace: { names: ["-n", "--namespace"], takesValue: true, commands: GLOBAL },
  context: { names: ["--context"], takesValue: true, commands: GLOBAL },
  kubeconfig: { names: ["--kubeconfig"], takesValue: true, commands: GLOBAL },
  requestTimeout: { names: ["--request-timeout"], takesValue: true, commands: GLOBAL },
  output: { names: ["-o", "--output"], takesValue: true, commands: ["list", "describe"] },
  allNamespaces: { names: ["-A", "--all-namespaces"], takesValue: false, commands: ["list"] },
  replica: { names: ["--replica"], takesValue: true, commands: ["logs", "attach", "exec"] },
  container: { names: ["-c", "--container"], takesValue: true, commands: ["logs"] },
  follow: { names: ["-f", "--follow"], takesValue: false, commands: ["logs"] },
  since: { names: ["--since"], takesValue: true, commands: ["logs"] },
  tail: { names: ["--tail"], takesValue: true, commands: ["logs"] },
  stdin: { names: ["-i", "--stdin"], takesValue: false, commands: ["exec"] },
  tty: { names: ["-t", "--tty"], takesValue: false, commands: ["exec"] },
};

/** Every flag as the shell completion offers it, per command. */
export function flagsOf(command: Command): string[] {
  return Object.values(FLAGS)
    .filter((f) => f.commands === GLOBAL || f.commands.includes(command))
    .flatMap((f) => f.names.filter((n) => n.startsWith("--")));
}

const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export function parseArgs(argv: readonly string[]): Invocation {
  const values = new Map<string, string>();
  const switches = new Set<string>();
  const positional: string[] = [];
  let execCommand: string[] = [];
  let command: Command | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") {
      execCommand = argv.slice(i + 1);
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      if (command === undefined) command = commandNamed(arg);
      else positional.push(arg);
      continue;
    }
    // -ti and -it, as kubectl accepts them.
    if (/^-[it]{2}$/.test(arg)) {
      for (const letter of arg.slice(1)) switches.add(flagKey(`-${letter}`, command));
      continue;
    }
    const eq = arg.indexOf("=");
    const flagName = eq > 0 ? arg.slice(0, eq) : arg;
    const key = flagKey(flagName, command);
    const spec = FLAGS[key] as FlagSpec;
    if (!spec.takesValue) {
      if (eq > 0) throw new UsageError(`flag ${flagName} takes no value`);
      switches.add(key);
      continue;
    }
    let value: string | undefined;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined || value === "") throw new UsageError(`flag ${flagName} needs a value`);
    values.set(key, value);
  }
  if (command === undefined) command = "help";
  // Flags given before the command are checked again now that it is known.
  for (const key of [...values.keys(), ...switches]) flagKey(FLAGS[key]?.names[0] as string, command);

  const needsName =
    command === "describe" || command === "logs" || command === "attach" || command === "exec";
  const name = positional[0];
  if (needsName && name === undefined) throw new UsageError(`${command} needs the AgentType's NAME`);
  if (command === "completion" && name !== "bash" && name !== "zsh")
    throw new UsageError("completion needs a shell: bash or zsh");
  const maxPositional = needsName || command === "completion" ? 1 : 0;
  if (positional.length > maxPositional)
    throw new UsageError(`unexpected argument ${JSON.stringify(positional[maxPositional])}`);
  if (command === "exec" && execCommand.length === 0)
    throw new UsageError("exec needs a command after --: kubectl agenttype exec NAME -- CMD [ARG...]");
  if (command !== "exec" && execCommand.length > 0)
    throw new UsageError(`${command} takes no command after --`);

  const output = values.get("output");
  if (output !== undefined && !(OUTPUTS as readonly string[]).includes(output))
    throw new UsageError(`--output must be one of ${OUTPUTS.join(", ")}, not ${JSON.stringify(output)}`);
  if (output === "wide" && command === "describe") throw new UsageError("describe has no wide output");
  const container = values.get("container") ?? "agent";
  if (!(CONTAINERS as readonly string[]).includes(container))
    throw new UsageError(`--container must be agent or sidecar, not ${JSON.stringify(container)}`);
  if (switches.has("allNamespaces") && values.has("namespace"))
    throw new UsageError("--all-namespaces and --namespace exclude each other");

  const requestTimeout = values.get("requestTimeout");
  const since = values.get("since");
  const tail = values.get("tail");
  const replica = values.get("replica");
  return {
    command,
    ...(name === undefined ? {} : { name }),
    ...optional("namespace", values.get("namespace")),
    allNamespaces: switches.has("allNamespaces"),
    ...optional("context", values.get("context")),
    ...optional("kubeconfig", values.get("kubeconfig")),
    ...(output === undefined ? {} : { output: output as Output }),
    ...(replica === undefined ? {} : { replica: nonNegativeInt("--replica", replica) }),
    container: container as ContainerChoice,
    follow: switches.has("follow"),
    ...(since === undefined ? {} : { sinceSeconds: Math.ceil(parseDurationMs("--since", since) / 1000) }),
    // kubectl's --tail=-1 means every line.
    ...(tail === undefined || tail === "-1" ? {} : { tail: nonNegativeInt("--tail", tail) }),
    stdin: switches.has("stdin"),
    tty: switches.has("tty"),
    execCommand,
    requestTimeoutMs:
      requestTimeout === undefined || requestTimeout === "0"
        ? DEFAULT_REQUEST_TIMEOUT_MS
        : parseDurationMs("--request-timeout", requestTimeout),
  };
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]: string });
}

function commandNamed(word: string): Command {
  if ((COMMANDS as readonly string[]).includes(word)) return word as Command;
  throw new UsageError(`unknown command ${JSON.stringify(word)}; commands: ${COMMANDS.join(", ")}`);
}

function flagKey(flag: string, command: Command | undefined): string {
  const entry = Object.entries(FLAGS).find(([, spec]) => spec.names.includes(flag));
  if (entry === undefined) throw new UsageError(`unknown flag ${flag}`);
  const [key, spec] = entry;
  if (command !== undefined && spec.commands !== GLOBAL && !spec.commands.includes(command))
    throw new UsageError(`flag ${flag} does not apply to ${command}`);
  return key;
}

function nonNegativeInt(flag: string, value: string): number {
  if (!/^[0-9]+$/.test(value))
    throw new UsageError(`${flag} must be a whole number ≥ 0, not ${JSON.stringify(value)}`);
  return Number(value);
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration as kubectl takes it (`30s`, `5m`, `1h30m`, `250ms`); a bare number is seconds. */
export function parseDurationMs(flag: string, value: string): number {
  if (/^[0-9]+$/.test(value)) return Number(value) * 1000;
  const parts = [...value.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== value)
    throw new UsageError(`${flag} must be a duration such as 30s, 5m or 1h30m, not ${JSON.stringify(value)}`);
  return parts.reduce((ms, p) => ms + Number(p[1]) * (UNIT_MS[p[2] as string] as number), 0);
}
