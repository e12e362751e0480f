// Accepted means runnable: manifests generated from the CRD schemas (seeded; the seed is printed)
// go to the real API server and through zod. Both must give the same verdict, and every
// AgentType they accept must be built by the operator's builders and applied, server-side, as
// the operator applies it (dry run here), or be refused by the operator with a documented
// condition (RuntimeNotAvailable for an out-of-cluster runtime).
import { randomUUID } from "node:crypto";
import { CoreV1Api } from "@kubernetes/client-node";
import { Agent, fetch } from "undici";
import { beforeAll, describe, expect } from "vitest";
import { type AgentTool, agentTool } from "../../api/agenttool.ts";
import { type AgentType, agentType, MAX_AGENT_NAME_LENGTH } from "../../api/agenttype.ts";
import { API_VERSION } from "../../api/common.ts";
import { validateManifest } from "../../api/validate.ts";
import { FIELD_MANAGER } from "../../operator/build/names.ts";
import { type BuildSettings, buildObjects } from "../../operator/build/objects.ts";
import { type ApiServerAccess, loadAccess } from "../../operator/kube/access.ts";
import { resolveTools, toolName } from "../../operator/tools/resolve-tools.ts";
import { type Kind, ManifestGenerator } from "../fixtures/manifest-generator.ts";
import { loadSample, type Manifest } from "../fixtures/manifests.ts";
import { pick, seededRandom } from "../fixtures/regex-sampler.ts";
import { eventually, kubeconfigPath, test } from "./cluster.ts";
import { installCrds } from "./crds.ts";

const SEED = Number(process.env.AGENTTYPE_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 32));
const RUNS = Number(process.env.AGENTTYPE_PROPERTY_RUNS ?? 300);

const settings: BuildSettings = {
  sidecarImage: "agenttype/sidecar:dev",
  wrapperImage: "agenttype/wrapper:dev",
  imagePullPolicy: "IfNotPresent",
  sidecarResources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
  memoryMaxBytes: 64 * 2 ** 20,
};

/** Raw requests with a dry-run query, which the operator's client has no use for. */
class ApiServer {
  private readonly access: ApiServerAccess;
  private readonly dispatcher: Agent;

  constructor(access: ApiServerAccess) {
    this.access = access;
    this.dispatcher = new Agent({
      connect: {
        ...(access.ca === undefined ? {} : { ca: access.ca }),
        ...(access.cert === undefined ? {} : { cert: access.cert }),
        ...(access.key === undefined ? {} : { key: access.key }),
      },
    });
  }

  /** The API server's answer: undefined when it accepted, else its message. */
  async request(method: "POST" | "PATCH", path: string, body: unknown): Promise<string | undefined> {
    const token = this.access.token?.();
    const response = await fetch(`${this.access.server}${path}`, {
      method,
      dispatcher: this.dispatcher,
      signal: AbortSignal.timeout(30_000),
      headers: {
        accept: "application/json",
        "content-type": method === "PATCH" ? "application/apply-patch+yaml" : "application/json",
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    if (response.ok) return undefined;
    try {
      return `HTTP ${response.status}: ${(JSON.parse(text) as { message?: string }).message ?? text}`;
    } catch {
      return `HTTP ${response.status}: ${text}`;
    }
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }
}

// Unknown fields are refused, as kubectl's default --validate=strict asks; zod refuses them too.
const CREATE_QUERY = "dryRun=All&fieldValidation=Strict";

const PLURALS: Record<Kind, string> = {
  AgentType: "agenttypes",
  AgentTool: "agenttools",
  AgentHost: "agenthosts",
};

/** Where an object of a built kind is applied. */
function objectPath(
  object: { apiVersion?: string; kind?: string; metadata?: { name?: string } },
  namespace: string,
) {
  const plural = { ServiceAccount: "serviceaccounts", ConfigMap: "configmaps", Service: "services" }[
    object.kind as string
  ];
  const group = object.apiVersion === "v1" ? "/api/v1" : `/apis/${object.apiVersion}`;
  const resource = plural ?? `${String(object.kind).toLowerCase()}s`;
  return `${group}/namespaces/${namespace}/${resource}/${object.metadata?.name}`;
}

const zodErrors = (manifest: Manifest): string[] => {
  const result = validateManifest(manifest);
  return result.ok ? [] : result.errors.map((e) => `${e.path}: ${e.message}`);
};

/**
 * The one rule zod holds that the API server cannot: an AgentTool's input schema checked
 * against the JSON Schema meta-schema (a CRD cannot reach inside a schema it cannot type).
 */
const zodOnly = (errors: string[]) =>
  errors.length > 0 && errors.every((e) => e.startsWith("spec.inputSchema: must be a JSON Schema:"));

let server: ApiServer;

beforeAll(async () => {
  await installCrds(kubeconfigPath());
  server = new ApiServer(loadAccess({ KUBECONFIG: kubeconfigPath() }));
  return () => server.close();
});

describe("accepted means runnable", () => {
  test(`generated manifests (seed ${SEED}, ${RUNS} runs): the API server and zod agree, and every accepted AgentType is built and applied`, async ({
    namespace,
  }) => {
    console.log(
      `[accepted-runnable] seed=${SEED} runs=${RUNS}; reproduce with AGENTTYPE_PROPERTY_SEED=${SEED}`,
    );
    const random = seededRandom(SEED);
    const generator = new ManifestGenerator(random);
    const check = (m: Manifest) => zodErrors(m).map((e) => e.slice(0, e.indexOf(": ")));
    const failures: string[] = [];
    const counts = {
      generated: 0,
      accepted: 0,
      refused: 0,
      zodOnly: 0,
      runtimeNotAvailable: 0,
      built: 0,
      applied: 0,
    };
    const tools: AgentTool[] = [];

    const verdicts = async (kind: Kind, manifest: Manifest) => {
      const path =
        kind === "AgentHost"
          ? `/apis/${API_VERSION}/agenthosts?${CREATE_QUERY}`
          : `/apis/${API_VERSION}/namespaces/${namespace}/${PLURALS[kind]}?${CREATE_QUERY}`;
      return { byServer: await server.request("POST", path, manifest), byZod: zodErrors(manifest) };
    };

    for (let run = 0; run < RUNS; run++) {
      // Tools first, so that agents generated later can ask for them.
      const roll = run / RUNS;
      const kind: Kind = roll < 0.2 ? "AgentTool" : roll < 0.32 ? "AgentHost" : "AgentType";
      const { manifest, steps } = generator.manifest(kind, check);
      if (kind === "AgentType" && tools.length > 0 && random() < 0.6) {
        manifest.spec.tools = [{ name: toolName(pick(random, tools)), version: "*" }];
      }
      counts.generated++;
      const { byServer, byZod } = await verdicts(kind, manifest);
      const report = () => `run ${run} (${kind}; ${steps.join("; ")}):\n${JSON.stringify(manifest)}`;
      if (byServer !== undefined && byZod.length > 0) {
        counts.refused++;
        continue;
      }
      if (byServer === undefined && zodOnly(byZod)) {
        counts.zodOnly++;
        continue;
      }
      if (byServer !== undefined || byZod.length > 0) {
        failures.push(
          `${report()}\n  API server: ${byServer ?? "accepted"}\n  zod: ${byZod.join("; ") || "accepted"}`,
        );
        continue;
      }
      counts.accepted++;
      if (kind === "AgentTool")
        tools.push(agentTool.parse({ ...manifest, metadata: { ...manifest.metadata, namespace } }));
      if (kind !== "AgentType") continue;

      const agent: AgentType = agentType.parse({
        ...manifest,
        metadata: { ...manifest.metadata, namespace, uid: randomUUID() },
      });
      if (agent.spec.runtime.type !== "kubernetes") {
        counts.runtimeNotAvailable++;
        continue;
      }
      let objects: ReturnType<typeof buildObjects>;
      try {
        const { resolved } = resolveTools(agent.metadata.name, agent.spec.tools, tools);
        objects = buildObjects(agent, resolved, settings);
        counts.built++;
      } catch (error) {
        failures.push(`${report()}\n  the builders threw: ${(error as Error).message}`);
        continue;
      }
      for (const object of [
        objects.serviceAccount,
        objects.configMap,
        objects.metricsService,
        ...(objects.headlessService === undefined ? [] : [objects.headlessService]),
        ...(objects.disruptionBudget === undefined ? [] : [objects.disruptionBudget]),
        objects.workload,
      ]) {
        const path = `${objectPath(object, namespace)}?dryRun=All&fieldManager=${FIELD_MANAGER}&force=true`;
        const refused = await server.request("PATCH", path, object);
        if (refused === undefined) counts.applied++;
        else failures.push(`${report()}\n  applying ${object.kind} ${object.metadata?.name}: ${refused}`);
      }
    }

    console.log(`[accepted-runnable] ${JSON.stringify(counts)}`);
    expect(failures, `seed ${SEED}: reproduce with AGENTTYPE_PROPERTY_SEED=${SEED}`).toEqual([]);
    // The generator must reach past the edges and into what is valid, or the test proves little.
    expect(counts.refused).toBeGreaterThan(RUNS / 10);
    expect(counts.built).toBeGreaterThan(RUNS / 10);
  }, 600_000);

  test("the longest AgentType name runs as a StatefulSet: its controller creates the pod", async ({
    kc,
    namespace,
  }) => {
    const manifest = loadSample("agenttype_node-researcher.yaml");
    manifest.metadata = { name: `a${"b".repeat(MAX_AGENT_NAME_LENGTH - 1)}`, namespace };
    delete manifest.spec.tools;
    manifest.spec.replicas = 1;
    expect(zodErrors(manifest)).toEqual([]);
    const tooLong = { ...manifest, metadata: { name: `${manifest.metadata.name}c` } };
    const path = `/apis/${API_VERSION}/namespaces/${namespace}/agenttypes?${CREATE_QUERY}`;
    expect(await server.request("POST", path, tooLong)).toContain("metadata.name");
    expect(await server.request("POST", path, manifest)).toBeUndefined();

    const agent = agentType.parse({ ...manifest, metadata: { ...manifest.metadata, uid: randomUUID() } });
    const objects = buildObjects(agent, [], settings);
    expect(objects.workload.kind).toBe("StatefulSet");
    for (const object of [
      objects.serviceAccount,
      objects.configMap,
      objects.metricsService,
      objects.workload,
    ]) {
      // Owner references to an AgentType that does not exist would let the garbage collector
      // delete the objects at once.
      const { ownerReferences: _, ...metadata } = object.metadata ?? {};
      const path = `${objectPath(object, namespace)}?fieldManager=${FIELD_MANAGER}&force=true`;
      expect(await server.request("PATCH", path, { ...object, metadata })).toBeUndefined();
    }
    const core = kc.makeApiClient(CoreV1Api);
    const pod = await eventually(
      "the StatefulSet's pod",
      async () => (await core.listNamespacedPod({ namespace })).items[0],
      60_000,
    );
    expect(pod.metadata?.name).toBe(`${manifest.metadata.name}-0`);
    expect(pod.metadata?.labels?.["controller-revision-hash"]?.length).toBeLessThanOrEqual(63);
  });
});
