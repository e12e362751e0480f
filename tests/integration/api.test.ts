// The API on a real API server: the generated CRDs install, explain themselves, accept every
// sample and reject every bad manifest whose rule the server enforces, naming the field.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { ApiextensionsV1Api } from "@kubernetes/client-node";
import { dump } from "js-yaml";
import { beforeAll, describe, expect, inject } from "vitest";
import { badManifests, buildBadManifest, loadSample, sampleFiles } from "../fixtures/manifests.ts";
import { kubeconfigPath, test } from "./cluster.ts";
import { crdManifests, installCrds } from "./crds.ts";

const cluster = inject("cluster");

/** kubectl with the test cluster's kubeconfig; stdin optional. Resolves even on failure. */
function kubectl(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      join(cluster.binDir, "kubectl"),
      ["--kubeconfig", cluster.kubeconfig, ...args],
      { timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
    if (stdin !== undefined) {
      // A command that exits before reading its input (EPIPE) fails through its exit code.
      child.stdin?.on("error", () => undefined);
      child.stdin?.end(stdin);
    }
  });
}

beforeAll(async () => {
  await installCrds(kubeconfigPath());
});

describe("CRDs on the API server", () => {
  test("install and become Established, structural", async ({ kc }) => {
    const api = kc.makeApiClient(ApiextensionsV1Api);
    for (const crd of crdManifests()) {
      const served = await api.readCustomResourceDefinition({ name: crd.metadata.name });
      const conditions = Object.fromEntries((served.status?.conditions ?? []).map((c) => [c.type, c.status]));
      expect(conditions).toMatchObject({ Established: "True", NamesAccepted: "True" });
      expect(conditions.NonStructuralSchema).toBeUndefined();
    }
  });

  test("kubectl explain shows the field descriptions", async () => {
    // Discovery of a just-installed CRD can lag by a moment: retry briefly.
    let result = await kubectl(["explain", "agenttype.spec.llm"]);
    for (let i = 0; i < 50 && result.code !== 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
      result = await kubectl(["explain", "agenttype.spec.llm"]);
    }
    expect(result.stderr).toBe("");
    expect(result.stdout).toContain("LLM providers and routing; without it the agent gets no LLM proxy.");
    expect(result.stdout).toMatch(/fallback\s+<\[\]string>/);
    expect(result.stdout).toMatch(/providers\s+<\[\]Object> -required-/);
    const region = await kubectl(["explain", "agenttype.spec.llm.providers.region"]);
    expect(region.stdout).toContain("AWS region of a bedrock provider");
  });

  test("short names and the agents category work", async ({ namespace }) => {
    for (const name of ["at", "atool", "ahost", "agents"]) {
      const { code, stderr } = await kubectl(["get", name, "-n", namespace]);
      expect({ name, code, stderr: stderr.replace(/No resources found.*\n?/, "") }).toEqual({
        name,
        code: 0,
        stderr: "",
      });
    }
  });
});

describe("manifests on the API server", () => {
  test.for(sampleFiles())("sample %s passes kubectl apply --dry-run=server", async (file, { namespace }) => {
    const manifest = loadSample(file);
    const args = ["apply", "--dry-run=server", "--validate=strict", "-f", "-"];
    if (manifest.kind !== "AgentHost") args.push("-n", namespace);
    const { code, stdout, stderr } = await kubectl(args, dump(manifest));
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toContain("(server dry run)");
  });

  const enforcedByServer = badManifests.filter((bad) => bad.rule !== "client");
  test.for(enforcedByServer.map((bad) => [bad.name, bad] as const))(
    "%s is rejected by the server naming the field",
    async ([, bad], { namespace }) => {
      const manifest = buildBadManifest(bad);
      const args = ["apply", "--dry-run=server", "--validate=strict", "-f", "-"];
      if (manifest.kind !== "AgentHost") args.push("-n", namespace);
      const { code, stderr } = await kubectl(args, dump(manifest));
      expect(code).not.toBe(0);
      expect(stderr).toContain(bad.path);
    },
  );

  test("every CEL rule of the table is among them", () => {
    expect(badManifests.filter((b) => b.rule === "cel").length).toBeGreaterThanOrEqual(12);
  });
});

describe("status on the API server", () => {
  test("an observedGeneration older than the stored one is refused for every kind, naming the field; newer is stored", async ({
    namespace,
  }) => {
    for (const file of [
      "agenttype_node-researcher.yaml",
      "agenttool_calculator-http.yaml",
      "agenthost_containerd-edge.yaml",
    ]) {
      const manifest = loadSample(file) as { kind: string; metadata: { name: string; namespace?: string } };
      // AgentHosts are cluster-scoped: a name of this test's own.
      if (manifest.kind === "AgentHost") manifest.metadata.name = `status-${namespace}`;
      else manifest.metadata.namespace = namespace;
      const created = await kubectl(["apply", "--server-side", "-f", "-"], dump(manifest));
      expect(created, file).toMatchObject({ code: 0 });
      const target = [
        manifest.kind.toLowerCase(),
        manifest.metadata.name,
        ...(manifest.kind === "AgentHost" ? [] : ["-n", namespace]),
      ];
      const status = (generation: number) =>
        kubectl([
          "patch",
          ...target,
          "--subresource=status",
          "--type=merge",
          "-p",
          JSON.stringify({ status: { observedGeneration: generation } }),
        ]);
      expect(await status(3), file).toMatchObject({ code: 0 });
      expect(await status(3), `${file}: the same generation again`).toMatchObject({ code: 0 });
      const stale = await status(2);
      expect(stale.code, file).not.toBe(0);
      expect(stale.stderr).toContain("status.observedGeneration");
      expect(stale.stderr).toContain("observedGeneration must not go back");
      const stored = await kubectl(["get", ...target, "-o", "jsonpath={.status.observedGeneration}"]);
      expect(stored.stdout, `${file}: what was stored stays`).toBe("3");
      if (manifest.kind === "AgentHost") await kubectl(["delete", ...target]);
    }
  });
});
