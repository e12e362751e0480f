// The AgentTool controller: probes each AgentTool's server on an interval and writes its
// Available condition, which the AgentType controller's tool resolution reads (a newer
// version that does not answer never replaces one that does). Written only when it changed.
import { type AgentTool, agentTool } from "../../../api/agenttool.ts";
import { API_VERSION } from "../../../api/common.ts";
import { formatFieldErrors, parseAs } from "../../../api/field-errors.ts";
import { FIELD_MANAGER } from "../../build/names.ts";
import { Controller, TerminalError } from "../../engine/controller.ts";
import type { ControllerContext } from "../../engine/controller-context.ts";
import { objectKey } from "../../engine/informer.ts";
import { queueObserver } from "../../engine/metrics.ts";
import { WorkQueue } from "../../engine/workqueue.ts";
import type { KubeObject } from "../../kube/client.ts";
import { resources } from "../../kube/resources.ts";
import { probeTool } from "../../tools/probe-tool.ts";
import { toolStatus, toolStatusChanged } from "../../tools/tool-status.ts";

const NAME = "agenttool";

export function setupAgentToolController(context: ControllerContext): Controller {
  const { client, config, logger, metrics, events } = context;
  const tools = context.informer<KubeObject>(resources.agentTool);
  const queue = new WorkQueue({ observer: queueObserver(metrics, NAME) });
  const intervalMs = config.toolProbeSeconds * 1000;

  tools.on((event, object, previous) => {
    // Our own status writes leave the generation as it was: the interval covers them.
    if (event === "update" && previous?.metadata.generation === object.metadata.generation) return;
    if (event !== "delete") queue.add(objectKey(object));
  });

  return new Controller({
    name: NAME,
    queue,
    workers: Math.min(config.workers, 8),
    metrics,
    logger,
    reconcile: async (key, log, signal) => {
      const raw = tools.get(key);
      if (raw === undefined || raw.metadata.deletionTimestamp !== undefined) return undefined;
      const parsed = parseAs(agentTool, raw);
      if (!parsed.ok) throw new TerminalError(`invalid AgentTool: ${formatFieldErrors(parsed.errors)}`);
      const tool: AgentTool = parsed.value;
      const probe = await probeTool(tool, signal);
      const status = toolStatus(tool, probe, new Date());
      if (toolStatusChanged(tool, status)) {
        const { name, namespace } = raw.metadata;
        await client.applyWithoutAnswer(
          resources.agentTool,
          { apiVersion: API_VERSION, kind: "AgentTool", metadata: { name, namespace }, status },
          FIELD_MANAGER,
          "status",
          signal,
        );
        const before = tool.status?.conditions?.find((c) => c.type === "Available");
        if (before?.status !== (probe.available ? "True" : "False")) {
          await events.record(
            raw,
            probe.available ? "Normal" : "Warning",
            probe.reason,
            probe.message,
            signal,
          );
        }
        log.info({ available: probe.available, reason: probe.reason }, probe.message);
      }
      return { requeueAfterMs: intervalMs };
    },
  });
}
