// Where the API server is and how to authenticate to it, found the way kubectl finds it:
// every file in $KUBECONFIG merged, else ~/.kube/config, else the pod's service account. Our
// own code rather than client-node's KubeConfig because importing client-node costs the process
// about 80 MiB of memory, over half the operator's budget; the operator uses its types only.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, isAbsolute, join } from "node:path";
import { load } from "js-yaml";

export interface ApiServerAccess {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecureSkipTlsVerify?: boolean;
  /** The bearer token for the next request, if any; read again as tokens rotate. */
  token?: () => string | undefined;
}

const SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";
const TOKEN_TTL_MS = 60_000;

interface Cluster {
  server?: string;
  "certificate-authority"?: string;
  "certificate-authority-data"?: string;
  "insecure-skip-tls-verify"?: boolean;
}

interface User {
  "client-certificate"?: string;
  "client-certificate-data"?: string;
  "client-key"?: string;
  "client-key-data"?: string;
  token?: string;
  tokenFile?: string;
  exec?: unknown;
  "auth-provider"?: unknown;
}

interface Context {
  cluster?: string;
  user?: string;
}

/** An entry of a kubeconfig, with the directory its relative paths are relative to. */
interface Entry<T> {
  value: T;
  dir: string;
}

/** The kubeconfig files of a KUBECONFIG list, merged as kubectl merges them. */
export interface Kubeconfig {
  /** Where it came from, for error messages. */
  files: string[];
  currentContext?: string;
  contexts: Map<string, Entry<Context>>;
  clusters: Map<string, Entry<Cluster>>;
  users: Map<string, Entry<User>>;
}

export interface KubeconfigFile {
  path: string;
  text: string;
}

/** A kubeconfig file's named list (`clusters`, `users` or `contexts`), checked. */
function namedList<T>(config: Record<string, unknown>, list: string, field: string, path: string) {
  const items = config[list] ?? [];
  if (!Array.isArray(items)) throw new Error(`kubeconfig ${path}: ${list} must be a list`);
  return items.map((item: unknown, index) => {
    const named = item as { name?: unknown } & Record<string, unknown>;
    if (typeof named?.name !== "string" || named.name === "") {
      throw new Error(`kubeconfig ${path}: ${list}[${index}].name must be a non-empty string`);
    }
    return { name: named.name, value: (named[field] ?? {}) as T };
  });
}

/**
 * Merges kubeconfig files as kubectl does: the first file to define a cluster, user or context
 * of a name wins (entries are not merged field by field), and current-context is the first
 * one set. Relative paths stay relative to the file that defined the entry.
 */
export function mergeKubeconfigs(files: KubeconfigFile[]): Kubeconfig {
  const merged: Kubeconfig = {
    files: files.map((f) => f.path),
    contexts: new Map(),
    clusters: new Map(),
    users: new Map(),
  };
  for (const { path, text } of files) {
    let parsed: unknown;
    try {
      parsed = load(text) ?? {};
    } catch (error) {
      throw new Error(`kubeconfig ${path}: not YAML: ${(error as Error).message}`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new Error(`kubeconfig ${path}: must be a mapping`);
    }
    const config = parsed as Record<string, unknown>;
    const dir = dirname(path);
    const current = config["current-context"];
    if (merged.currentContext === undefined && typeof current === "string" && current !== "") {
      merged.currentContext = current;
    }
    const addNew = <T>(into: Map<string, Entry<T>>, entries: { name: string; value: T }[]) => {
      for (const { name, value } of entries) if (!into.has(name)) into.set(name, { value, dir });
    };
    addNew(merged.contexts, namedList<Context>(config, "contexts", "context", path));
    addNew(merged.clusters, namedList<Cluster>(config, "clusters", "cluster", path));
    addNew(merged.users, namedList<User>(config, "users", "user", path));
  }
  return merged;
}

/** A token file read at most once a minute, as kubelet-rotated tokens expect. */
function tokenFile(path: string): () => string {
  let cached = { value: "", at: 0 };
  return () => {
    if (Date.now() - cached.at > TOKEN_TTL_MS)
      cached = { value: readFileSync(path, "utf8").trim(), at: Date.now() };
    return cached.value;
  };
}

/** Access through a context of a (merged) kubeconfig: the current one unless named. */
export function accessFromKubeconfig(config: Kubeconfig, contextName?: string): ApiServerAccess {
  const where = `kubeconfig ${config.files.join(delimiter)}`;
  const name = contextName ?? config.currentContext;
  if (name === undefined) throw new Error(`${where}: current-context is not set and no context was named`);
  const context = config.contexts.get(name)?.value;
  if (context === undefined) throw new Error(`${where}: no context "${name}"`);
  const clusterEntry = config.clusters.get(context.cluster ?? "");
  if (clusterEntry === undefined) {
    throw new Error(`${where}: context "${name}" names a missing cluster "${context.cluster ?? ""}"`);
  }
  const cluster = clusterEntry.value;
  if (typeof cluster.server !== "string" || cluster.server === "") {
    throw new Error(`${where}: cluster "${context.cluster}" has no server`);
  }
  const userEntry = config.users.get(context.user ?? "") ?? { value: {}, dir: clusterEntry.dir };
  const user: User = userEntry.value;
  if (user.exec !== undefined || user["auth-provider"] !== undefined) {
    throw new Error(
      `${where}: user "${context.user}" uses an exec or auth-provider plugin, which the operator does not run; use a token or client certificate`,
    );
  }
  const file = (dir: string, path: string | undefined, data: string | undefined): Buffer | undefined => {
    if (data !== undefined) return Buffer.from(data, "base64");
    if (path !== undefined) return readFileSync(isAbsolute(path) ? path : join(dir, path));
    return undefined;
  };
  const access: ApiServerAccess = { server: cluster.server.replace(/\/$/, "") };
  const ca = file(clusterEntry.dir, cluster["certificate-authority"], cluster["certificate-authority-data"]);
  const cert = file(userEntry.dir, user["client-certificate"], user["client-certificate-data"]);
  const key = file(userEntry.dir, user["client-key"], user["client-key-data"]);
  if (ca !== undefined) access.ca = ca;
  if (cert !== undefined) access.cert = cert;
  if (key !== undefined) access.key = key;
  if (cluster["insecure-skip-tls-verify"] === true) access.insecureSkipTlsVerify = true;
  if (user.token !== undefined) {
    const token = user.token;
    access.token = () => token;
  } else if (user.tokenFile !== undefined) {
    const path = user.tokenFile;
    access.token = tokenFile(isAbsolute(path) ? path : join(userEntry.dir, path));
  }
  return access;
}

/**
 * The kubeconfig files kubectl would read: every existing file of $KUBECONFIG in order
 * (missing ones and repeats skipped, as kubectl does), else ~/.kube/config if it exists.
 */
export function kubeconfigPaths(env: NodeJS.ProcessEnv, exists: (path: string) => boolean): string[] {
  const listed = env.KUBECONFIG ? env.KUBECONFIG.split(delimiter) : [join(homedir(), ".kube", "config")];
  return [...new Set(listed.filter((p) => p !== "" && exists(p)))];
}

/** Access the way kubectl and client-node's loadFromDefault find it. */
export function loadAccess(env: NodeJS.ProcessEnv = process.env): ApiServerAccess {
  const paths = kubeconfigPaths(env, existsSync);
  if (paths.length > 0) {
    return accessFromKubeconfig(
      mergeKubeconfigs(paths.map((path) => ({ path, text: readFileSync(path, "utf8") }))),
    );
  }
  const host = env.KUBERNETES_SERVICE_HOST;
  if (host !== undefined && existsSync(`${SERVICE_ACCOUNT}/token`)) {
    const hostPart = host.includes(":") ? `[${host}]` : host;
    return {
      server: `https://${hostPart}:${env.KUBERNETES_SERVICE_PORT ?? "443"}`,
      ca: readFileSync(`${SERVICE_ACCOUNT}/ca.crt`),
      token: tokenFile(`${SERVICE_ACCOUNT}/token`),
    };
  }
  const looked = env.KUBECONFIG ? env.KUBECONFIG : join(homedir(), ".kube", "config");
  throw new Error(
    `no Kubernetes credentials: no kubeconfig at ${looked} and this is not a pod with a service account`,
  );
}
