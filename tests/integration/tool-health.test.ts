// AgentTool health against the real API server and real tool servers on loopback: the
// operator probes each AgentTool and writes Available; a newer version whose server does not
// answer is reported on the AgentType and does not replace the working one, until it answers.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { afterEach, beforeAll, describe, expect } from "vitest";
import type { AgentTypeStatus } from "../../api/agenttype.ts";
import { sidecarConfig } from "../../api/sidecarconfig.ts";
import { eventually, kubeconfigPath, simpleAgent, test } from "./cluster.ts";
import { installCrds } from "./crds.ts";
import { type OperatorProcess, startOperator } from "./operator-process.ts";

const AT = { group: "agenttype.dev", version: "v1alpha1" };
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  await installCrds(kubeconfigPath());
});

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** A minimal MCP server: answers initialize with a result, as any MCP server does. */
async function mcpServer(port = 0): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const message = JSON.parse(body || "{}") as { id?: number; method?: string };
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({
          jsonrpc: "2.0",
          id: message.id ?? null,
          result: {
            protocolVersion: "2025-06-18",
            capabilities: { tools: {} },
            serverInfo: { name: "t", version: "1" },
          },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  cleanup.push(() => new Promise((resolve) => server.close(resolve)));
  return { server, port: (server.address() as AddressInfo).port };
}

/** A loopback port nothing listens on (until the test starts a server there). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function agentToolManifest(version: string, port: number) {
  return {
    apiVersion: "agenttype.dev/v1alpha1",
    kind: "AgentTool",
    metadata: { name: `search-${version.replaceAll(".", "-")}` },
    spec: {
      name: "search",
      version,
      description: "Searches.",
      protocol: "mcp",
      endpoint: { url: `http://127.0.0.1:${port}/mcp` },
    },
  };
}

type Conditions = { conditions?: { type: string; status: string; reason: string; message: string }[] };
const condition = (status: Conditions | undefined, type: string) =>
  status?.conditions?.find((c) => c.type === type);

/** An operator of this test's namespace probing tools every second, stopped after the test. */
async function startProbingOperator(namespace: string, identity: string): Promise<void> {
  const operator: OperatorProcess = await startOperator({
    kubeconfig: kubeconfigPath(),
    namespace,
    identity,
    leaderElection: false,
    extraEnv: { TOOL_PROBE_SECONDS: "1" },
  });
  cleanup.push(() => operator.stop("SIGKILL"));
}

describe("AgentTool health", () => {
  test("a broken newer version is reported and agents keep the working one until it answers", async ({
    kc,
    namespace,
  }) => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    const core = kc.makeApiClient(CoreV1Api);
    await startProbingOperator(namespace, "op-tools");
    const working = await mcpServer();
    const brokenPort = await closedPort();
    const tool = (name: string) =>
      custom.getNamespacedCustomObject({ ...AT, plural: "agenttools", namespace, name }) as Promise<{
        status?: Conditions;
      }>;
    const agentStatus = async () =>
      (
        (await custom.getNamespacedCustomObject({
          ...AT,
          plural: "agenttypes",
          namespace,
          name: "researcher",
        })) as {
          status?: AgentTypeStatus;
        }
      ).status;
    const toolUrls = async () => {
      const cm = await core.readNamespacedConfigMap({ namespace, name: "researcher-sidecar" });
      return sidecarConfig.parse(JSON.parse(cm.data?.["sidecar.json"] ?? "")).tools.map((t) => t.url);
    };

    await custom.createNamespacedCustomObject({
      ...AT,
      plural: "agenttools",
      namespace,
      body: agentToolManifest("1.0.0", working.port),
    });
    const up = await eventually("1.0.0 Available=True", async () => {
      const s = (await tool("search-1-0-0")).status;
      return condition(s, "Available")?.status === "True" ? s : undefined;
    });
    expect(condition(up, "Available")).toMatchObject({ reason: "Initialized" });
    const agent = simpleAgent("researcher");
    agent.spec.tools = [{ name: "search", version: "^1.0.0" }];
    await custom.createNamespacedCustomObject({ ...AT, plural: "agenttypes", namespace, body: agent });
    await eventually("the agent uses 1.0.0", async () =>
      (await toolUrls()).includes(`http://127.0.0.1:${working.port}/mcp`),
    );

    // Publish a newer version whose server does not answer.
    await custom.createNamespacedCustomObject({
      ...AT,
      plural: "agenttools",
      namespace,
      body: agentToolManifest("1.1.0", brokenPort),
    });
    const down = await eventually("1.1.0 Available=False", async () => {
      const s = (await tool("search-1-1-0")).status;
      return condition(s, "Available")?.status === "False" ? s : undefined;
    });
    expect(condition(down, "Available")?.reason).toBe("Unreachable");
    expect(condition(down, "Available")?.message).toContain(`127.0.0.1:${brokenPort}`);
    // The agent may first be reconciled while 1.1.0 is "not probed yet"; its failed probe then
    // triggers another reconcile, which names the failure.
    const reported = await eventually("ToolsResolved reports the newer version unavailable", async () => {
      const s = await agentStatus();
      const resolved = condition(s, "ToolsResolved");
      return resolved?.reason === "NewerToolUnavailable" &&
        resolved.message?.includes("search 1.1.0 (AgentTool search-1-1-0) unavailable")
        ? s
        : undefined;
    });
    expect(condition(reported, "ToolsResolved")?.message).toContain(`127.0.0.1:${brokenPort}`);
    expect(reported?.resolvedTools?.map((t) => t.version)).toEqual(["1.0.0"]);
    expect(await toolUrls()).toEqual([`http://127.0.0.1:${working.port}/mcp`]);
    const events = await core.listNamespacedEvent({ namespace });
    expect(events.items.map((e) => [e.involvedObject.name, e.type, e.reason])).toContainEqual([
      "search-1-1-0",
      "Warning",
      "Unreachable",
    ]);

    // Once its server answers, the newer version takes over.
    await mcpServer(brokenPort);
    await eventually("the agent uses 1.1.0", async () =>
      (await toolUrls()).includes(`http://127.0.0.1:${brokenPort}/mcp`),
    );
    // The status follows the ConfigMap in the same reconcile.
    await eventually("ToolsResolved=True Resolved", async () => {
      return condition(await agentStatus(), "ToolsResolved")?.reason === "Resolved" ? true : undefined;
    });
  });

  test("the only matching version does not answer: ToolsResolved says ToolUnavailable with a Warning Event, until it answers", async ({
    kc,
    namespace,
  }) => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    const core = kc.makeApiClient(CoreV1Api);
    await startProbingOperator(namespace, "op-tool-down");
    const port = await closedPort();
    await custom.createNamespacedCustomObject({
      ...AT,
      plural: "agenttools",
      namespace,
      body: agentToolManifest("1.0.0", port),
    });
    const agent = simpleAgent("searcher");
    agent.spec.tools = [{ name: "search", version: "^1.0.0" }];
    await custom.createNamespacedCustomObject({ ...AT, plural: "agenttypes", namespace, body: agent });
    const agentStatus = async () =>
      (
        (await custom.getNamespacedCustomObject({
          ...AT,
          plural: "agenttypes",
          namespace,
          name: "searcher",
        })) as {
          status?: AgentTypeStatus;
        }
      ).status;
    const reported = await eventually("ToolsResolved=True ToolUnavailable", async () => {
      const found = condition(await agentStatus(), "ToolsResolved");
      return found?.reason === "ToolUnavailable" ? found : undefined;
    });
    expect(reported.status).toBe("True");
    expect(reported.message).toContain("search 1.0.0 (AgentTool search-1-0-0) is unavailable:");
    expect(reported.message).toContain(`127.0.0.1:${port}`);
    const warning = await eventually("a Warning Event ToolUnavailable on the AgentType", async () =>
      (await core.listNamespacedEvent({ namespace })).items.find(
        (e) => e.involvedObject.kind === "AgentType" && e.reason === "ToolUnavailable",
      ),
    );
    expect(warning.type).toBe("Warning");

    await mcpServer(port);
    await eventually("ToolsResolved=True Resolved", async () =>
      condition(await agentStatus(), "ToolsResolved")?.reason === "Resolved" ? true : undefined,
    );
  });
});
