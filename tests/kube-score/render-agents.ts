// Prints, as one YAML stream, every object the operator builds for the sample AgentTypes that
// run in the cluster (config/samples, their tools resolved against the sample AgentTools), so
// that tests/kube-score/kube-score.sh can score what users really get. Pure: no cluster.
import { dump } from "js-yaml";
import { agentTool } from "../../api/agenttool.ts";
import { agentType } from "../../api/agenttype.ts";
import { buildObjects } from "../../operator/build/objects.ts";
import { resolveTools } from "../../operator/tools/resolve-tools.ts";
import { loadSample, sampleFiles } from "../fixtures/manifests.ts";

const NAMESPACE = "agents";
const inNamespace = (file: string, index: number) => {
  const manifest = loadSample(file);
  manifest.metadata.namespace = NAMESPACE;
  manifest.metadata.uid = `00000000-0000-4000-8000-${String(index).padStart(12, "0")}`;
  return manifest;
};

const files = sampleFiles();
const tools = files
  .filter((f) => f.startsWith("agenttool_"))
  .map((f, i) => agentTool.parse(inNamespace(f, i)));
const documents = files
  .filter((f) => f.startsWith("agenttype_"))
  .map((f, i) => agentType.parse(inNamespace(f, 100 + i)))
  .filter((agent) => agent.spec.runtime.type === "kubernetes")
  .flatMap((agent) => {
    const { resolved } = resolveTools(agent.metadata.name, agent.spec.tools, tools);
    const built = buildObjects(agent, resolved, {
      sidecarImage: "ghcr.io/agenttype/sidecar:0.1.0",
      wrapperImage: "ghcr.io/agenttype/wrapper:0.1.0",
      imagePullPolicy: "IfNotPresent",
      sidecarResources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
      memoryMaxBytes: 64 * 2 ** 20,
      metricsFromNamespaces: ["agenttype-system", "monitoring"],
    });
    return [
      built.serviceAccount,
      built.configMap,
      built.metricsService,
      built.headlessService,
      built.disruptionBudget,
      built.networkPolicy,
      built.workload,
    ].filter((o) => o !== undefined);
  });
process.stdout.write(documents.map((d) => dump(d, { noRefs: true, lineWidth: -1 })).join("---\n"));
