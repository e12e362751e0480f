// `list` and `describe`: read, then render (view.ts).
import type { Invocation } from "./args.ts";
import type { Kube } from "./kube.ts";
import { agentEvents, agentHost, agentPods, agentTools, getAgent, listAgents, readSidecars } from "./read.ts";
import { hostReplicas, podReplicas, runsInPods } from "./replicas.ts";
import { describeAgent, listRow, renderData, renderDescription, renderList } from "./view.ts";

export async function list(kube: Kube, inv: Invocation): Promise<string> {
  const agents = await listAgents(kube, inv.allNamespaces);
  const pods = agents.some(runsInPods)
    ? await agentPods(kube, { namespace: inv.allNamespaces ? undefined : kube.namespace })
    : new Map();
  const rows = await Promise.all(
    agents.map(async (agent) => {
      if (!runsInPods(agent)) return listRow(agent, hostReplicas(agent), []);
      const replicas = podReplicas(pods.get(`${agent.metadata.namespace}/${agent.metadata.name}`) ?? []);
      const running = replicas.filter((r) => r.state === "Running").map((r) => r.name);
      return listRow(agent, replicas, await readSidecars(kube, agent, running, { status: false }));
    }),
  );
  if (inv.output === "json" || inv.output === "yaml")
    return renderData({ apiVersion: "v1", kind: "List", items: rows }, inv.output);
  if (rows.length === 0)
    return inv.allNamespaces ? "No AgentTypes found." : `No AgentTypes found in ${kube.namespace} namespace.`;
  return renderList(rows, { wide: inv.output === "wide", allNamespaces: inv.allNamespaces }, new Date());
}

export async function describe(kube: Kube, inv: Invocation): Promise<string> {
  const agent = await getAgent(kube, inv.name as string);
  const namespace = kube.namespace;
  const inPods = runsInPods(agent);
  const replicas = inPods
    ? podReplicas(
        (await agentPods(kube, { namespace, name: agent.metadata.name })).get(
          `${namespace}/${agent.metadata.name}`,
        ) ?? [],
      )
    : hostReplicas(agent);
  const running = inPods ? replicas.filter((r) => r.state === "Running").map((r) => r.name) : [];
  const hostName = agent.spec.runtime?.hostRef?.name;
  const [tools, events, sidecars, host] = await Promise.all([
    agentTools(kube, namespace),
    agentEvents(kube, agent),
    readSidecars(kube, agent, running, { status: true }),
    hostName === undefined ? undefined : agentHost(kube, hostName),
  ]);
  const description = describeAgent(agent, replicas, {
    tools,
    events,
    sidecars,
    ...(inPods
      ? {}
      : {
          sidecarsNote:
            "not read for agents on AgentHosts yet (their sidecars are not reachable through the API server)",
        }),
    ...(host === undefined ? {} : { host }),
  });
  if (inv.output === "json" || inv.output === "yaml") return renderData(description, inv.output);
  return renderDescription(description, new Date());
}
