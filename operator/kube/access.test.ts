import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dump } from "js-yaml";
import { afterAll, describe, expect, it } from "vitest";
import { accessFromKubeconfig, kubeconfigPaths, loadAccess, mergeKubeconfigs } from "./access.ts";

const root = mkdtempSync(join(tmpdir(), "agenttype-access-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Writes `files` (name → text) into a fresh directory under root; returns its path. */
let dirs = 0;
function dirWith(files: Record<string, string>): string {
  const dir = join(root, `d${dirs++}`);
  mkdirSync(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const b64 = (text: string) => Buffer.from(text).toString("base64");
const kubeconfig = (config: object) => dump({ apiVersion: "v1", kind: "Config", ...config });
const one = (config: object, path = "/k/config") =>
  accessFromKubeconfig(mergeKubeconfigs([{ path, text: kubeconfig(config) }]));

const basic = {
  "current-context": "dev",
  contexts: [{ name: "dev", context: { cluster: "c", user: "u" } }],
  clusters: [
    { name: "c", cluster: { server: "https://10.0.0.1:6443/", "certificate-authority-data": b64("CA") } },
  ],
  users: [{ name: "u", user: { token: "secret-token" } }],
};

describe("one kubeconfig", () => {
  it("gives the current context's server, CA and token", () => {
    const access = one(basic);
    expect(access.server).toBe("https://10.0.0.1:6443");
    expect(access.ca?.toString()).toBe("CA");
    expect(access.token?.()).toBe("secret-token");
    expect(access.cert).toBeUndefined();
    expect(access.insecureSkipTlsVerify).toBeUndefined();
  });

  it("uses a named context over the current one", () => {
    const config = mergeKubeconfigs([
      {
        path: "/k/config",
        text: kubeconfig({
          ...basic,
          contexts: [...basic.contexts, { name: "prod", context: { cluster: "p", user: "u" } }],
          clusters: [...basic.clusters, { name: "p", cluster: { server: "https://prod:443" } }],
        }),
      },
    ]);
    expect(accessFromKubeconfig(config, "prod").server).toBe("https://prod:443");
    expect(accessFromKubeconfig(config).server).toBe("https://10.0.0.1:6443");
  });

  it("reads certificate, key, CA and token files relative to the kubeconfig's directory", () => {
    const dir = dirWith({ "ca.crt": "CA-FILE", "client.crt": "CERT", "client.key": "KEY", token: "tok\n" });
    const path = join(dir, "config");
    writeFileSync(
      path,
      kubeconfig({
        "current-context": "x",
        contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
        clusters: [
          {
            name: "c",
            cluster: {
              server: "https://h",
              "certificate-authority": "ca.crt",
              "insecure-skip-tls-verify": true,
            },
          },
        ],
        users: [
          {
            name: "u",
            user: {
              "client-certificate": "client.crt",
              "client-key": join(dir, "client.key"),
              tokenFile: "token",
            },
          },
        ],
      }),
    );
    const access = loadAccess({ KUBECONFIG: path });
    expect(access.ca?.toString()).toBe("CA-FILE");
    expect(access.cert?.toString()).toBe("CERT");
    expect(access.key?.toString()).toBe("KEY");
    expect(access.token?.()).toBe("tok");
    expect(access.insecureSkipTlsVerify).toBe(true);
  });

  it("prefers inline data over a file path", () => {
    const access = one({
      ...basic,
      users: [
        {
          name: "u",
          user: {
            "client-certificate-data": b64("C"),
            "client-certificate": "/nonexistent",
            "client-key-data": b64("K"),
          },
        },
      ],
    });
    expect(access.cert?.toString()).toBe("C");
    expect(access.key?.toString()).toBe("K");
  });

  it("allows a context without a user (anonymous)", () => {
    const access = one({ ...basic, users: [] });
    expect(access.token).toBeUndefined();
  });
});

describe("bad kubeconfigs name what is wrong", () => {
  const cases: [string, object | string, RegExp][] = [
    ["no current context", { ...basic, "current-context": "" }, /\/k\/config: current-context is not set/],
    ["a missing context", { ...basic, "current-context": "nope" }, /no context "nope"/],
    [
      "a missing cluster",
      { ...basic, contexts: [{ name: "dev", context: { cluster: "gone", user: "u" } }] },
      /context "dev" names a missing cluster "gone"/,
    ],
    [
      "a cluster without server",
      { ...basic, clusters: [{ name: "c", cluster: {} }] },
      /cluster "c" has no server/,
    ],
    [
      "an exec plugin",
      { ...basic, users: [{ name: "u", user: { exec: { command: "aws" } } }] },
      /user "u" uses an exec or auth-provider plugin/,
    ],
    ["a list that is not one", { ...basic, clusters: { c: {} } }, /\/k\/config: clusters must be a list/],
    [
      "an entry without name",
      { ...basic, users: [{ user: {} }] },
      /\/k\/config: users\[0\]\.name must be a non-empty string/,
    ],
    ["a file that is not a mapping", "- a\n- b\n", /\/k\/config: must be a mapping/],
    ["a file that is not YAML", "a: [unclosed", /\/k\/config: not YAML/],
  ];
  for (const [what, config, message] of cases) {
    it(what, () => {
      const text = typeof config === "string" ? config : kubeconfig(config);
      expect(() => accessFromKubeconfig(mergeKubeconfigs([{ path: "/k/config", text }]))).toThrow(message);
    });
  }
});

describe("KUBECONFIG with several files, merged as kubectl merges them", () => {
  const first = {
    "current-context": "a",
    contexts: [{ name: "a", context: { cluster: "shared", user: "ua" } }],
    clusters: [{ name: "shared", cluster: { server: "https://first" } }],
    users: [{ name: "ua", user: { token: "token-a" } }],
  };
  const second = {
    "current-context": "b",
    contexts: [
      { name: "a", context: { cluster: "other", user: "ub" } },
      { name: "b", context: { cluster: "own", user: "ub" } },
    ],
    clusters: [
      { name: "shared", cluster: { server: "https://second" } },
      { name: "own", cluster: { server: "https://own", "certificate-authority": "ca.crt" } },
    ],
    users: [{ name: "ub", user: { tokenFile: "token" } }],
  };
  const firstDir = dirWith({ config: kubeconfig(first) });
  const secondDir = dirWith({ config: kubeconfig(second), "ca.crt": "SECOND-CA", token: "token-b" });
  const list = [join(firstDir, "config"), join(secondDir, "config")].join(":");

  it("takes current-context and every name from the first file that sets it", () => {
    const access = loadAccess({ KUBECONFIG: list });
    expect(access.server).toBe("https://first");
    expect(access.token?.()).toBe("token-a");
  });

  it("offers what only a later file defines, its paths relative to that file", () => {
    const merged = mergeKubeconfigs([
      { path: join(firstDir, "config"), text: kubeconfig(first) },
      { path: join(secondDir, "config"), text: kubeconfig(second) },
    ]);
    const access = accessFromKubeconfig(merged, "b");
    expect(access.server).toBe("https://own");
    expect(access.ca?.toString()).toBe("SECOND-CA");
    expect(access.token?.()).toBe("token-b");
    expect([...merged.contexts.keys()]).toEqual(["a", "b"]);
  });

  it("takes current-context from a later file when the first leaves it unset", () => {
    const merged = mergeKubeconfigs([
      { path: "/1", text: kubeconfig({ ...first, "current-context": "" }) },
      { path: "/2", text: "" },
      { path: "/3", text: kubeconfig(second) },
    ]);
    expect(merged.currentContext).toBe("b");
  });

  it("skips files that do not exist, empty entries and repeats", () => {
    const exists = (p: string) => !p.includes("missing");
    expect(kubeconfigPaths({ KUBECONFIG: "/a::/missing:/b:/a" }, exists)).toEqual(["/a", "/b"]);
    expect(loadAccess({ KUBECONFIG: `${join(root, "missing")}:${list}` }).server).toBe("https://first");
  });

  it("falls back to ~/.kube/config without KUBECONFIG", () => {
    expect(kubeconfigPaths({}, () => true)).toEqual([join(process.env.HOME ?? "", ".kube", "config")]);
  });

  it("says where it looked when there are no credentials at all", () => {
    expect(() => loadAccess({ KUBECONFIG: join(root, "missing") })).toThrow(
      /no Kubernetes credentials: no kubeconfig at .*missing and this is not a pod/,
    );
  });
});
