// Where the API server is and how to authenticate to it, found the way kubectl finds it:
// $KUBECONFIG (first file), else ~/.kube/config, else the pod's service account. Our own
// code rather than client-node's KubeConfig because importing client-node costs the process
// about 80 MiB of memory, over half the operator's budget; the operator uses its types only.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
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

interface Kubeconfig {
  "current-context"?: string;
  contexts?: { name: string; context: { cluster: string; user: string } }[];
  clusters?: {
    name: string;
    cluster: {
      server: string;
      "certificate-authority"?: string;
      "certificate-authority-data"?: string;
      "insecure-skip-tls-verify"?: boolean;
    };
  }[];
  users?: {
    name: string;
    user: {
      "client-certificate"?: string;
      "client-certificate-data"?: string;
      "client-key"?: string;
      "client-key-data"?: string;
      token?: string;
      tokenFile?: string;
      exec?: unknown;
      "auth-provider"?: unknown;
    };
  }[];
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

/** Access from a kubeconfig file's text; relative paths in it are relative to `dir`. */
export function parseKubeconfig(text: string, dir: string, contextName?: string): ApiServerAccess {
  const config = (load(text) ?? {}) as Kubeconfig;
  const name = contextName ?? config["current-context"];
  const context = config.contexts?.find((c) => c.name === name)?.context;
  if (context === undefined) throw new Error(`kubeconfig: no context "${name ?? ""}"`);
  const cluster = config.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (cluster === undefined)
    throw new Error(`kubeconfig: context "${name}" names a missing cluster "${context.cluster}"`);
  const user = config.users?.find((u) => u.name === context.user)?.user ?? {};
  if (user.exec !== undefined || user["auth-provider"] !== undefined) {
    throw new Error(
      `kubeconfig: user "${context.user}" uses an exec or auth-provider plugin, which the operator does not run; use a token or client certificate`,
    );
  }
  const file = (path: string | undefined, data: string | undefined): Buffer | undefined => {
    if (data !== undefined) return Buffer.from(data, "base64");
    if (path !== undefined) return readFileSync(isAbsolute(path) ? path : join(dir, path));
    return undefined;
  };
  const access: ApiServerAccess = { server: cluster.server.replace(/\/$/, "") };
  const ca = file(cluster["certificate-authority"], cluster["certificate-authority-data"]);
  const cert = file(user["client-certificate"], user["client-certificate-data"]);
  const key = file(user["client-key"], user["client-key-data"]);
  if (ca !== undefined) access.ca = ca;
  if (cert !== undefined) access.cert = cert;
  if (key !== undefined) access.key = key;
  if (cluster["insecure-skip-tls-verify"] === true) access.insecureSkipTlsVerify = true;
  if (user.token !== undefined) {
    const token = user.token;
    access.token = () => token;
  } else if (user.tokenFile !== undefined) {
    access.token = tokenFile(isAbsolute(user.tokenFile) ? user.tokenFile : join(dir, user.tokenFile));
  }
  return access;
}

/** Access the way kubectl and client-node's loadFromDefault find it. */
export function loadAccess(env: NodeJS.ProcessEnv = process.env): ApiServerAccess {
  const candidates = env.KUBECONFIG
    ? env.KUBECONFIG.split(":").filter(Boolean)
    : [join(homedir(), ".kube", "config")];
  const path = candidates.find((p) => existsSync(p));
  if (path !== undefined) return parseKubeconfig(readFileSync(path, "utf8"), dirname(path));
  const host = env.KUBERNETES_SERVICE_HOST;
  if (host !== undefined && existsSync(`${SERVICE_ACCOUNT}/token`)) {
    const hostPart = host.includes(":") ? `[${host}]` : host;
    return {
      server: `https://${hostPart}:${env.KUBERNETES_SERVICE_PORT ?? "443"}`,
      ca: readFileSync(`${SERVICE_ACCOUNT}/ca.crt`),
      token: tokenFile(`${SERVICE_ACCOUNT}/token`),
    };
  }
  throw new Error(
    `no Kubernetes credentials: none of ${candidates.join(", ")} exists and this is not a pod with a service account`,
  );
}
