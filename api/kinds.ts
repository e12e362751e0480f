// The three kinds of the agenttype.dev API with what their CRDs add to the schemas:
// names, scope, printer columns and subresources.
import { agentHost } from "./agenthost.ts";
import { agentTool } from "./agenttool.ts";
import { agentType } from "./agenttype.ts";
import type { KindDefinition } from "./crd.ts";

const age = {
  name: "Age",
  type: "date",
  jsonPath: ".metadata.creationTimestamp",
  description: "Time since the object was created.",
} as const;

const conditionColumn = (type: string, description: string) =>
  ({
    name: type,
    type: "string",
    jsonPath: `.status.conditions[?(@.type=="${type}")].status`,
    description,
  }) as const;

export const kinds = [
  {
    kind: "AgentType",
    plural: "agenttypes",
    shortNames: ["at"],
    scope: "Namespaced",
    schema: agentType,
    printerColumns: [
      conditionColumn("Ready", "Whether the agent's pods are ready."),
      {
        name: "Replicas",
        type: "integer",
        jsonPath: ".spec.replicas",
        description: "Desired number of agent pods.",
      },
      {
        name: "Available",
        type: "integer",
        jsonPath: ".status.readyReplicas",
        description: "Agent pods that are ready.",
      },
      {
        name: "Model",
        type: "string",
        jsonPath: ".spec.llm.providers[0].model",
        description: "Model of the first LLM provider.",
      },
      {
        name: "Image",
        type: "string",
        jsonPath: ".spec.image",
        description: "The agent's image.",
        priority: 1,
      },
      age,
    ],
    scale: {
      specReplicasPath: ".spec.replicas",
      statusReplicasPath: ".status.replicas",
      labelSelectorPath: ".status.selector",
    },
  },
  {
    kind: "AgentTool",
    plural: "agenttools",
    shortNames: ["atool"],
    scope: "Namespaced",
    schema: agentTool,
    printerColumns: [
      {
        name: "Tool",
        type: "string",
        jsonPath: ".spec.name",
        description: "Name agents ask for (metadata.name when empty).",
      },
      { name: "Version", type: "string", jsonPath: ".spec.version", description: "Version of the tool." },
      { name: "Protocol", type: "string", jsonPath: ".spec.protocol", description: "mcp or http." },
      conditionColumn("Available", "Whether the tool server answered its last probe."),
      age,
    ],
  },
  {
    kind: "AgentHost",
    plural: "agenthosts",
    shortNames: ["ahost"],
    scope: "Cluster",
    schema: agentHost,
    printerColumns: [
      { name: "Driver", type: "string", jsonPath: ".spec.driver", description: "containerd or kvm." },
      {
        name: "Address",
        type: "string",
        jsonPath: ".spec.ssh.address",
        description: "SSH address of the host.",
      },
      conditionColumn("Reachable", "Whether the operator reached the host over SSH."),
      {
        name: "Agents",
        type: "integer",
        jsonPath: ".status.allocation.agents",
        description: "Agents placed on the host.",
      },
      age,
    ],
  },
] satisfies KindDefinition[];
