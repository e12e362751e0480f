// What the kind tier's files share: the harness's Docker client on its own engine (the global
// setup exported DOCKER_HOST and DOCKER_CONFIG), and the host's packet-filter state that the
// engine must leave as it found it.
import { resolve } from "node:path";
import { exec, execOk } from "../fixtures/exec.ts";

export const repo = resolve(import.meta.dirname, "../..");
export const dockerSh = resolve(import.meta.dirname, "docker.sh");

function dockerClient(): string {
  const client = process.env.AGENTTYPE_DOCKER;
  if (!client)
    throw new Error("AGENTTYPE_DOCKER is not set: run this file in the kind project (its global setup)");
  return client;
}

export const docker = (args: string[], timeoutMs = 120_000) => execOk(dockerClient(), args, { timeoutMs });
export const dockerRun = (args: string[], timeoutMs = 120_000) => exec(dockerClient(), args, { timeoutMs });

/** The FORWARD policy and the DOCKER* chains (v4 and v6): what a stock dockerd changes. */
export async function packetFilter(): Promise<{ forwardPolicy: string; dockerChains: string[] }> {
  const forward = await execOk("iptables", ["-S", "FORWARD"]);
  const saved = (await execOk("iptables-save", [])) + (await execOk("ip6tables-save", []));
  const chains = [...saved.matchAll(/^:(DOCKER\S*) /gm)].map((m) => m[1] as string);
  return {
    forwardPolicy: /^-P FORWARD (\S+)/m.exec(forward)?.[1] ?? "",
    dockerChains: [...new Set(chains)].sort(),
  };
}
