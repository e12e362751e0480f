// The chart's provider-endpoint rules on the real API server: `helm template` with one entry of
// providerEndpoints renders a ValidatingAdmissionPolicy and its binding; applied, they refuse an
// AgentType whose provider endpoint (or bedrock region) matches no allowed pattern in the
// namespaces they select, and leave other namespaces alone.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { dump } from "js-yaml";
import { afterAll, beforeAll, describe, expect, inject } from "vitest";
import { eventually, kubeconfigPath, simpleAgent, test } from "./cluster.ts";
import { installCrds } from "./crds.ts";

const cluster = inject("cluster");
const chart = join(import.meta.dirname, "..", "..", "charts", "agenttype-operator");
const AT = { group: "agenttype.dev", version: "v1alpha1", plural: "agenttypes" };
const release = `pe-${randomBytes(3).toString("hex")}`;
const tenantLabel = `agenttype.dev/tenant-${release}`;

function tool(name: "helm" | "kubectl", args: string[], stdin?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      join(cluster.binDir, name),
      ["--kubeconfig", cluster.kubeconfig, ...args],
      { timeout: 60_000 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`${name} ${args.join(" ")}: ${stderr}`)) : resolve(stdout),
    );
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

const values = {
  providerEndpoints: [
    {
      name: "tenants",
      namespaceSelector: { matchLabels: { [tenantLabel]: "true" } },
      allowedPatterns: [
        "^http://ollama\\.models\\.svc(\\.cluster\\.local)?:11434$",
        "^https://bedrock-runtime\\.eu-west-1\\.amazonaws\\.com$",
        "^http://vllm\\.models\\.svc:8000/v1$",
      ],
    },
  ],
};

let rendered = "";
beforeAll(async () => {
  await installCrds(kubeconfigPath());
  rendered = await tool(
    "helm",
    ["template", release, chart, "--show-only", "templates/provider-endpoints.yaml", "-f", "-"],
    dump(values),
  );
  await tool("kubectl", ["apply", "--server-side", "-f", "-"], rendered);
});

afterAll(async () => {
  await tool("kubectl", ["delete", "--ignore-not-found", "-f", "-"], rendered).catch(() => undefined);
});

describe("provider endpoints allowed by the chart's admission policy", () => {
  test("refused where the policy applies unless every endpoint matches; elsewhere accepted", async ({
    kc,
    namespace,
  }) => {
    expect(rendered).toContain("kind: ValidatingAdmissionPolicyBinding");
    const custom = kc.makeApiClient(CustomObjectsApi);
    const core = kc.makeApiClient(CoreV1Api);
    const create = (name: string, providers: object[]) => {
      const body = simpleAgent(name);
      body.spec.llm = { providers };
      return custom.createNamespacedCustomObject({ ...AT, namespace, body });
    };
    const ollama = (endpoint: string) => ({ name: "local", type: "ollama", endpoint, model: "m" });
    const bedrock = (region: string) => ({ name: "cloud", type: "bedrock", region, model: "m" });
    const openai = (endpoint: string) => ({ name: "vllm", type: "openai", endpoint, model: "m" });
    const anthropic = { name: "claude", type: "anthropic", model: "claude-sonnet-4-5" };

    // Not selected yet: anything the CRD accepts goes.
    await create("before", [ollama("http://evil.example.com:11434")]);
    await core.patchNamespace({
      name: namespace,
      body: [{ op: "add", path: `/metadata/labels/${tenantLabel.replace("/", "~1")}`, value: "true" }],
    });
    const refusal = await eventually(
      "the policy in force",
      async () => {
        try {
          await create(`probe-${randomBytes(2).toString("hex")}`, [ollama("http://evil.example.com:11434")]);
          return undefined;
        } catch (error) {
          return String((error as { body?: string }).body ?? error);
        }
      },
      30_000,
    );
    expect(refusal).toContain("endpoint http://evil.example.com:11434 is not allowed in this namespace");
    await expect(create("bedrock-elsewhere", [bedrock("us-east-1")])).rejects.toThrow(
      /bedrock-runtime\.us-east-1\.amazonaws\.com is not allowed/,
    );
    // An anthropic provider without an endpoint calls the public Messages API: that is what is checked.
    await expect(create("anthropic-default", [anthropic])).rejects.toThrow(
      /endpoint https:\/\/api\.anthropic\.com is not allowed/,
    );
    await expect(create("openai-elsewhere", [openai("https://api.openai.com/v1")])).rejects.toThrow(
      /api\.openai\.com\/v1 is not allowed/,
    );
    await create("allowed", [
      ollama("http://ollama.models.svc:11434"),
      bedrock("eu-west-1"),
      openai("http://vllm.models.svc:8000/v1"),
    ]);
    // An update is checked too: the AgentType made before the label cannot move to a bad endpoint.
    await expect(
      custom.patchNamespacedCustomObject({
        ...AT,
        namespace,
        name: "allowed",
        body: [{ op: "replace", path: "/spec/llm/providers/0/endpoint", value: "http://10.0.0.9:11434" }],
      }),
    ).rejects.toThrow(/10\.0\.0\.9:11434 is not allowed/);
  });
});
