// Shell completion: `kubectl-agenttype __complete WORDS...` answers as cobra does (one candidate
// a line, then `:<directive>`), which is what kubectl asks a `kubectl_complete-agenttype`
// executable for `kubectl agenttype <TAB>`; `completion bash|zsh` prints scripts for the
// plugin's own name. Candidates are pure; the AgentType names come from a callback.
import { COMMANDS, CONTAINERS, type Command, flagsOf, OUTPUTS } from "./args.ts";

/** cobra's ShellCompDirectiveNoFileComp. */
const NO_FILES = 4;
const NAMED_COMMANDS: readonly Command[] = ["describe", "logs", "attach", "exec"];
const VALUES: Record<string, readonly string[]> = {
  "-o": OUTPUTS,
  "--output": OUTPUTS,
  "-c": CONTAINERS,
  "--container": CONTAINERS,
};
const TAKES_VALUE = new Set([
  "-n",
  "--namespace",
  "--context",
  "--kubeconfig",
  "--request-timeout",
  "--replica",
  "--since",
  "--tail",
  "-o",
  "--output",
  "-c",
  "--container",
]);

/** What the words typed so far (the last one being completed, maybe empty) may continue with. */
export async function complete(
  words: readonly string[],
  agentNames: (namespace: string | undefined) => Promise<string[]>,
): Promise<string[]> {
  const current = words.at(-1) ?? "";
  const before = words.slice(0, -1);
  if (before.includes("--")) return [];
  const previous = before.at(-1);
  if (previous !== undefined && VALUES[previous] !== undefined) return matching(VALUES[previous], current);
  if (previous !== undefined && TAKES_VALUE.has(previous)) return [];
  const positional: string[] = [];
  for (let i = 0; i < before.length; i++) {
    const word = before[i] as string;
    if (word.startsWith("-")) {
      if (TAKES_VALUE.has(word)) i++;
    } else positional.push(word);
  }
  const command = positional[0] as Command | undefined;
  if (command === undefined) return matching(current.startsWith("-") ? flagsOf("help") : COMMANDS, current);
  if (current.startsWith("-")) return matching(flagsOf(command), current);
  if (command === "completion" && positional.length === 1) return matching(["bash", "zsh"], current);
  if (NAMED_COMMANDS.includes(command) && positional.length === 1) {
    const n = before.findIndex((w) => w === "-n" || w === "--namespace");
    return matching(await agentNames(n >= 0 ? before[n + 1] : undefined), current);
  }
  return [];
}

const matching = (candidates: readonly string[], prefix: string) =>
  candidates.filter((c) => c.startsWith(prefix));

export function completionAnswer(candidates: readonly string[]): string {
  return [...candidates, `:${NO_FILES}`].join("\n");
}

export function completionScript(shell: "bash" | "zsh"): string {
  if (shell === "bash")
    return `# bash completion for kubectl-agenttype: source <(kubectl-agenttype completion bash)
_kubectl_agenttype() {
  local IFS=$'\\n'
  COMPREPLY=($(kubectl-agenttype __complete "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null | grep -v '^:'))
}
complete -F _kubectl_agenttype kubectl-agenttype
`;
  return `#compdef kubectl-agenttype
# zsh completion for kubectl-agenttype: source <(kubectl-agenttype completion zsh)
_kubectl_agenttype() {
  local -a candidates
  candidates=(\${(f)"$(kubectl-agenttype __complete \${words[2,CURRENT]} 2>/dev/null | grep -v '^:')"})
  compadd -a candidates
}
compdef _kubectl_agenttype kubectl-agenttype
`;
}
