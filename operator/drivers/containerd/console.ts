// The console of an interactive agent on a containerd host (docs/adr/0014-host-consoles.md): a
// tmux session on the host, one per replica, whose one pane attaches to the container's terminal
// (`crictl attach`) and keeps what it printed. Attaching is a tmux client of that session; a
// dropped connection ends the client only. The command lines are built here. Pure.
import type { Labels } from "../config.ts";
import { LABEL_NAME, LABEL_NAMESPACE, LABEL_REPLICA } from "../labels.ts";
import { shellCommand, shellQuote } from "../transport.ts";

/** Lines of scrollback each console keeps. */
export const CONSOLE_HISTORY_LINES = 50_000;

/** A container annotation naming its console's session: set on the containers that have one. */
export const CONSOLE_ANNOTATION = "agenttype.dev/console";

/** The tmux user option holding the id of the container a session attaches to. */
const CONTAINER_OPTION = "@agenttype-container";

export interface ConsoleSettings {
  /** The host's tmux server socket: one per host, in the driver's root-only state directory. */
  tmuxSocket: string;
  /** crictl on the host, and containerd's socket it talks to. */
  crictl: string;
  criSocket: string;
}

/**
 * `agenttype_<namespace>_<name>_<replica>`: '_' is in no Kubernetes name, so two agents never
 * share a console (with '-', namespace a-b's agent c and namespace a's agent b-c would); tmux
 * takes no '.' in a name, which becomes '+', in no Kubernetes name either.
 */
export function consoleName(labels: Labels): string {
  const part = (key: string) => (labels[key] ?? "unknown").replace(/[.:]/g, "+");
  return `agenttype_${part(LABEL_NAMESPACE)}_${part(LABEL_NAME)}_${part(LABEL_REPLICA)}`;
}

const tmux = (settings: ConsoleSettings) => ["tmux", "-S", settings.tmuxSocket];

/** Stops with a message naming `command` (exit 127, as a shell's) when the host lacks it. */
const need = (command: string, what: string) =>
  `command -v ${shellQuote(command)} >/dev/null || { echo ${shellQuote(`${command} not found on the host: ${what}`)} >&2; exit 127; };`;
const crictl = (settings: ConsoleSettings) => [
  settings.crictl,
  // No crictl.yaml: everything it needs is on its command line (and it warns of a missing one).
  "--config",
  "/dev/null",
  "--runtime-endpoint",
  `unix://${settings.criSocket}`,
  "--timeout",
  "30s",
];

/**
 * Creates the session of a container that has just started, replacing an earlier session of
 * the same name (the replica's previous container). Its pane re-attaches while the container
 * runs (an attach can drop); when the container ends, the pane stays (remain-on-exit) with what
 * it printed. tmux's own keys are off: every key goes to the agent.
 */
export function openConsoleCommand(settings: ConsoleSettings, name: string, containerId: string): string {
  const c = shellCommand(crictl(settings));
  const id = shellQuote(containerId);
  const pane = `while [ "$(${c} inspect -o go-template --template '{{.status.state}}' ${id} 2>/dev/null)" = CONTAINER_RUNNING ]; do ${c} attach --stdin --tty ${id}; sleep 1; done`;
  // `=name` matches the session's name exactly; commands whose target is a pane (set-option,
  // show-options, capture-pane) take `=name:`, the session's current window and pane.
  const session = `=${name}`;
  return [
    need("tmux", "interactive agents need it (Debian: apt install tmux)"),
    need(
      settings.crictl,
      "interactive agents need crictl (cri-tools); set the AgentHost's spec.containerd.crictl",
    ),
    `${shellCommand([...tmux(settings), "kill-session", "-t", session])} 2>/dev/null;`,
    shellCommand([
      ...tmux(settings),
      "set-option",
      "-g",
      "history-limit",
      String(CONSOLE_HISTORY_LINES),
      ";",
      "set-option",
      "-g",
      "prefix",
      "None",
      ";",
      "set-option",
      "-g",
      "status",
      "off",
      ";",
      "set-option",
      "-gw",
      "remain-on-exit",
      "on",
      ";",
      "new-session",
      "-d",
      "-s",
      name,
      "-x",
      "120",
      "-y",
      "40",
      pane,
      ";",
      "set-option",
      "-t",
      `${session}:`,
      CONTAINER_OPTION,
      containerId,
    ]),
  ].join(" ");
}

/** Opens the session again when it is gone (tmux was killed, its opening failed); else nothing. */
export function reopenConsoleCommand(settings: ConsoleSettings, name: string, containerId: string): string {
  return `${shellCommand([...tmux(settings), "has-session", "-t", `=${name}`])} 2>/dev/null || { ${openConsoleCommand(settings, name, containerId)}; }`;
}

/** Kills the session when it is still the container's (a newer container's session stays). */
export function closeConsoleCommand(settings: ConsoleSettings, name: string, containerId: string): string {
  const t = shellCommand(tmux(settings));
  const session = shellQuote(`=${name}`);
  return `if [ "$(${t} show-options -v -t ${shellQuote(`=${name}:`)} ${CONTAINER_OPTION} 2>/dev/null)" = ${shellQuote(containerId)} ]; then ${t} kill-session -t ${session}; fi; true`;
}

/**
 * A new client of the session, on the caller's terminal: first the scrollback (so a late
 * watcher sees what was printed before), then tmux's own view of the pane.
 */
export function attachConsoleCommand(settings: ConsoleSettings, name: string): string {
  const t = shellCommand(tmux(settings));
  const session = shellQuote(`=${name}`);
  // The pane's empty rows below its last line are left out: they would scroll the watcher's
  // terminal by a screenful of nothing.
  const trimEnd = `$0 == "" { blank++; next } { for (; blank > 0; blank--) print ""; print }`;
  const gone = `the console ${name} is gone: the agent's container has ended or is being replaced (kubectl agenttype logs shows its output)`;
  return `${t} has-session -t ${session} 2>/dev/null || { echo ${shellQuote(gone)} >&2; exit 3; }; ${t} capture-pane -p -e -J -S - -t ${shellQuote(`=${name}:`)} | awk ${shellQuote(trimEnd)}; exec ${t} attach-session -t ${session}`;
}

/**
 * A command in the container with its streams open: `crictl exec`, with a terminal when asked,
 * exiting with the command's exit code. crictl itself exits 1 and says the code on its stderr
 * ("execing command in container ID: command terminated with exit code N"), which is where the
 * command's own stderr comes too: that one line is taken out (awk, line by line) and becomes
 * the exit status; crictl's other messages (it cannot reach containerd) pass through.
 */
export function execCommand(
  settings: ConsoleSettings,
  containerId: string,
  command: readonly string[],
  options: { stdin: boolean; tty: boolean },
): string {
  const exec = shellCommand([
    ...crictl(settings),
    "exec",
    ...(options.stdin ? ["--interactive"] : []),
    ...(options.tty ? ["--tty"] : []),
    containerId,
    ...command,
  ]);
  const said = `execing command in container ${containerId}: command terminated with exit code `;
  // crictl says it plainly, or as a logrus line (time="…" level=fatal msg="…code N"): anywhere.
  const filter = `(i = index($0, p)) > 0 { code = substr($0, i + length(p)); sub(/[^0-9].*$/, "", code); print "code " code >> f; next } { print; fflush() }`;
  return [
    need(
      settings.crictl,
      "exec -i and -t need crictl (cri-tools); set the AgentHost's spec.containerd.crictl",
    ),
    `f=$(mktemp) || exit 1`,
    // A session closed early (SIGHUP, SIGTERM) leaves no file behind.
    `trap 'rm -f "$f"' EXIT; trap 'exit 129' HUP; trap 'exit 143' TERM`,
    `exec 3>&1`,
    `{ ${exec} 2>&1 1>&3 3>&-; echo "rc $?" >>"$f"; } | awk -v p=${shellQuote(said)} -v f="$f" ${shellQuote(filter)} >&2 3>&-`,
    `code=$(sed -n 's/^code //p' "$f"); rc=$(sed -n 's/^rc //p' "$f"); rm -f "$f"`,
    `exit "\${code:-\${rc:-1}}"`,
  ].join("\n");
}
