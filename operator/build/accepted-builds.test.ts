// The unit half of "accepted means runnable": every AgentType zod accepts, among manifests
// generated from the CRD schemas, is built without an error into objects whose names and
// labels Kubernetes takes (tests/integration/accepted-runnable.test.ts applies them for real).
import { describe, expect, it } from "vitest";
import { type AgentTool, agentTool } from "../../api/agenttool.ts";
import { agentType } from "../../api/agenttype.ts";
import { validateManifest } from "../../api/validate.ts";
import { ManifestGenerator } from "../../tests/fixtures/manifest-generator.ts";
import type { Manifest } from "../../tests/fixtures/manifests.ts";
import { pick, seededRandom } from "../../tests/fixtures/regex-sampler.ts";
import { resolveTools, toolName } from "../tools/resolve-tools.ts";
import { type BuildSettings, buildObjects } from "./objects.ts";

const SEED = Number(process.env.AGENTTYPE_PROPERTY_SEED ?? 7);
const RUNS = 300;

const settings: BuildSettings = {
  sidecarImage: "agenttype/sidecar:dev",
  wrapperImage: "agenttype/wrapper:dev",
  imagePullPolicy: "IfNotPresent",
  sidecarResources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
  memoryMaxBytes: 64 * 2 ** 20,
};

const DNS_1035 = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
// The StatefulSet controller labels each pod with its revision: the name, '-', up to 10 characters.
const REVISION_HASH = 10;

const check = (m: Manifest) => {
  const result = validateManifest(m);
  return result.ok ? [] : result.errors.map((e) => e.path);
};

describe(`AgentTypes generated from the schemas (seed ${SEED})`, () => {
  const generator = new ManifestGenerator(seededRandom(SEED));
  const random = seededRandom(SEED + 1);
  const tools: AgentTool[] = [];
  for (let i = 0; i < 60; i++) {
    const { manifest } = generator.manifest("AgentTool", check);
    const parsed = agentTool.safeParse({
      ...manifest,
      metadata: { ...manifest.metadata, namespace: "team-a" },
    });
    if (parsed.success) tools.push(parsed.data);
  }

  it("every one zod accepts is built, with names and labels Kubernetes takes", { timeout: 120_000 }, () => {
    let built = 0;
    for (let run = 0; run < RUNS; run++) {
      const { manifest, steps } = generator.manifest("AgentType", check);
      if (tools.length > 0 && random() < 0.6)
        manifest.spec.tools = [{ name: toolName(pick(random, tools)), version: "*" }];
      const parsed = agentType.safeParse({
        ...manifest,
        metadata: { ...manifest.metadata, namespace: "team-a", uid: "3f2c0e1a-0000-4000-8000-000000000001" },
      });
      if (!parsed.success || parsed.data.spec.runtime.type !== "kubernetes") continue;
      const agent = parsed.data;
      const context = `run ${run}: ${steps.join("; ")}\n${JSON.stringify(manifest)}`;
      const { resolved } = resolveTools(agent.metadata.name, agent.spec.tools, tools);
      const objects = (() => {
        try {
          return buildObjects(agent, resolved, settings);
        } catch (error) {
          throw new Error(`${context}\nthe builders threw: ${(error as Error).message}`);
        }
      })();
      built++;
      for (const service of [objects.metricsService, objects.headlessService]) {
        if (service !== undefined) expect(service.metadata?.name, context).toMatch(DNS_1035);
      }
      for (const object of [
        objects.serviceAccount,
        objects.configMap,
        objects.workload,
        ...(objects.disruptionBudget === undefined ? [] : [objects.disruptionBudget]),
      ]) {
        expect(object.metadata?.name, context).toMatch(DNS_SUBDOMAIN);
      }
      const template = objects.workload.spec?.template;
      for (const value of Object.values(template?.metadata?.labels ?? {}))
        expect(value, context).toMatch(LABEL_VALUE);
      if (objects.workload.kind === "StatefulSet") {
        expect(agent.metadata.name.length + 1 + REVISION_HASH, context).toBeLessThanOrEqual(63);
      }
      // Every $(NAME) in the agent's environment names a variable defined before it.
      const env = template?.spec?.containers[0]?.env ?? [];
      env.forEach((variable, index) => {
        for (const [, name] of (variable.value ?? "").matchAll(/\$\(([^)]+)\)/g)) {
          const defined = env.slice(0, index).some((e) => e.name === name);
          expect(defined, `${context}\n${variable.name} refers to $(${name})`).toBe(true);
        }
      });
    }
    // The generator must reach valid AgentTypes often enough for this to mean something.
    expect(built).toBeGreaterThan(RUNS / 5);
  });
});
