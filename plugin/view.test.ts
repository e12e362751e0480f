import { describe, expect, it } from "vitest";
import type { AgentTool } from "../api/agenttool.ts";
import type { AgentType } from "../api/agenttype.ts";
import type { Replica } from "./replicas.ts";
import { age, describeAgent, listRow, renderDescription, renderList, table, toolViews } from "./view.ts";

const now = new Date("2026-11-26T06:00:00Z");
const agent = {
  metadata: { name: "coder", namespace: "team-a", uid: "u1", creationTimestamp: "2026-11-26T05:00:00Z" },
  spec: {
    image: "acme/coder:1",
    replicas: 2,
    interactive: true,
    runtime: { type: "kubernetes" },
    llm: {
      providers: [
        { name: "local", type: "ollama", model: "llama3.2" },
        { name: "cloud", type: "bedrock", model: "claude" },
      ],
      fallback: ["cloud", "local"],
    },
    tools: [
      { name: "web-search", version: "^1.2.0", required: true },
      { name: "calculator", version: "*", required: false },
    ],
  },
  status: {
    readyReplicas: 1,
    conditions: [
      {
        type: "Ready",
        status: "False",
        reason: "RollingOut",
        message: "1 of 2",
        lastTransitionTime: "2026-11-26T05:58:00Z",
      },
    ],
    resolvedTools: [{ name: "web-search", version: "1.3.0", agentTool: "web-search-1-3", protocol: "mcp" }],
  },
} as unknown as AgentType;
const replicas: Replica[] = [
  { index: 0, kind: "pod", name: "coder-a", where: "node-1", state: "Running", ready: true, restarts: 0 },
  {
    index: 1,
    kind: "pod",
    name: "coder-b",
    where: "node-2",
    state: "ContainerCreating",
    ready: false,
    restarts: 0,
  },
];
const metrics = {
  tokens: { input: 100, output: 20 },
  requests: [],
  providerErrors: [{ labels: { provider: "cloud", error_type: "timeout" }, count: 3 }],
  fallbacks: [{ labels: { provider: "cloud", reason: "failed" }, count: 3 }],
  rateLimited: [],
};

describe("age", () => {
  it.each([
    ["2026-11-26T05:59:15Z", "45s"],
    ["2026-11-26T05:55:30Z", "4m30s"],
    ["2026-11-26T05:00:00Z", "60m"],
    ["2026-11-26T01:30:00Z", "4h30m"],
    ["2026-11-24T00:00:00Z", "2d6h"],
    ["", "<unknown>"],
  ])("%s is %s old", (since, text) => expect(age(since, now)).toBe(text));
});

describe("list", () => {
  it("aligns columns as kubectl does, with the first model of the fallback order and the tokens of the sidecars that answered", () => {
    const row = listRow(agent, replicas, [
      { pod: "coder-a", metrics },
      { pod: "coder-b", unreadable: "no answer" },
    ]);
    expect(renderList([row], { wide: true, allNamespaces: false }, now)).toBe(
      [
        "NAME    READY   REPLICAS   RUNTIME      WHERE           MODEL    TOKENS   AGE   REPLICA:POD/HOST",
        "coder   False   1/2        kubernetes   node-1,node-2   claude   120      60m   0:coder-a,1:coder-b",
      ].join("\n"),
    );
  });

  it("shows - for tokens when no sidecar answered", () => {
    const row = listRow(agent, replicas, [{ pod: "coder-a", unreadable: "forbidden" }]);
    expect(row.tokens).toBeUndefined();
    expect(renderList([row], { wide: false, allNamespaces: true }, now)).toContain("team-a      coder");
  });
});

describe("table", () => {
  it("pads every column but the last", () => {
    expect(table(["A", "LONGER"], [["xx", "y"]])).toBe("A    LONGER\nxx   y");
  });
});

describe("describe", () => {
  const tools = [
    {
      metadata: { name: "web-search-1-3" },
      status: { conditions: [{ type: "Available", status: "False", message: "probe: connection refused" }] },
    },
  ] as unknown as AgentTool[];

  it("joins each requested tool to its AgentTool's availability; a missing one says so", () => {
    expect(toolViews(agent, tools)).toEqual([
      {
        name: "web-search",
        range: "^1.2.0",
        required: true,
        version: "1.3.0",
        agentTool: "web-search-1-3",
        available: "False",
        message: "probe: connection refused",
      },
      { name: "calculator", range: "*", required: false, available: "Missing" },
    ]);
  });

  it("renders conditions, replicas, tools, providers with their errors and fallbacks, and Events", () => {
    const text = renderDescription(
      describeAgent(agent, replicas, {
        tools,
        sidecars: [
          {
            pod: "coder-a",
            metrics,
            status: {
              agent: { name: "coder", namespace: "team-a" },
              ready: true,
              providers: [
                {
                  name: "cloud",
                  type: "bedrock",
                  where: "us-east-1",
                  model: "claude",
                  state: "timeout",
                  consecutiveFailures: 3,
                  lastError: {
                    errorClass: "timeout",
                    message: "no answer within 30 s",
                    at: "2026-11-26T05:59:00Z",
                  },
                },
              ],
            },
          },
        ],
        events: [
          {
            metadata: {},
            involvedObject: {},
            type: "Normal",
            reason: "Created",
            message: "created Deployment coder",
            count: 1,
            source: { component: "agenttype-operator" },
            lastTimestamp: new Date("2026-11-26T05:00:05Z"),
          },
        ],
      }),
      now,
    );
    expect(text).toContain("Interactive:  true");
    expect(text).toContain("Ready   False    RollingOut   2m    1 of 2");
    expect(text).toContain("1         coder-b   node-2      ContainerCreating   false   0");
    expect(text).toContain(
      "web-search   ^1.2.0   true       1.3.0     web-search-1-3   False       probe: connection refused",
    );
    expect(text).toContain(
      "cloud   bedrock   claude   timeout   3          2026-11-26T05:59:00Z timeout: no answer within 30 s",
    );
    expect(text).toContain("Provider errors: provider=cloud,error_type=timeout 3");
    expect(text).toContain("Fallbacks: provider=cloud,reason=failed 3");
    expect(text).toContain("Rate-limit hits: none");
    expect(text).toContain("Normal   Created   59m   agenttype-operator   created Deployment coder");
  });
});
