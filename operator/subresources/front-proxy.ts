// Who is asking: kube-apiserver's aggregator authenticates the user, then proxies the request
// to us over TLS with its front-proxy client certificate and the user in headers. We trust
// those headers only from a client whose certificate chains to the request-header CA and
// carries an allowed name, as kube-apiserver publishes both in
// kube-system/extension-apiserver-authentication (what every aggregated API server reads).
import type { KubeClient, KubeObject } from "../kube/client.ts";
import { resources } from "../kube/resources.ts";

export const AUTHENTICATION_CONFIG_MAP = {
  namespace: "kube-system",
  name: "extension-apiserver-authentication",
};

export interface FrontProxyConfig {
  /** PEM bundle the front proxy's client certificate must chain to. */
  clientCa: string;
  /** Common names a front-proxy certificate may carry; empty: any that chains to the CA. */
  allowedNames: string[];
  usernameHeaders: string[];
  groupHeaders: string[];
  extraHeaderPrefixes: string[];
}

export interface RemoteUser {
  username: string;
  groups: string[];
  extra: Record<string, string[]>;
}

const list = (value: string | undefined, fallback: string[]): string[] => {
  if (value === undefined || value.trim() === "") return fallback;
  const parsed: unknown = JSON.parse(value);
  if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === "string"))
    throw new Error(`expected a JSON array of strings, got ${value}`);
  return parsed;
};

/** The front-proxy settings from the ConfigMap's data. Pure; throws naming what is missing. */
export function frontProxyConfig(data: Record<string, string> | undefined): FrontProxyConfig {
  const where = `ConfigMap ${AUTHENTICATION_CONFIG_MAP.namespace}/${AUTHENTICATION_CONFIG_MAP.name}`;
  const clientCa = data?.["requestheader-client-ca-file"];
  if (clientCa === undefined || clientCa.trim() === "")
    throw new Error(
      `${where} has no requestheader-client-ca-file: kube-apiserver runs without --requestheader-client-ca-file, so it cannot proxy to an aggregated API`,
    );
  return {
    clientCa,
    allowedNames: list(data?.["requestheader-allowed-names"], []),
    usernameHeaders: list(data?.["requestheader-username-headers"], ["X-Remote-User"]),
    groupHeaders: list(data?.["requestheader-group-headers"], ["X-Remote-Group"]),
    extraHeaderPrefixes: list(data?.["requestheader-extra-headers-prefix"], ["X-Remote-Extra-"]),
  };
}

export async function readFrontProxyConfig(
  client: KubeClient,
  signal: AbortSignal,
): Promise<FrontProxyConfig> {
  const cm = await client.get<KubeObject & { data?: Record<string, string> }>(
    resources.configMap,
    AUTHENTICATION_CONFIG_MAP.namespace,
    AUTHENTICATION_CONFIG_MAP.name,
    signal,
  );
  return frontProxyConfig(cm.data);
}

/** Each header's values, one per header line (node:http's `headersDistinct`), names in lower case. */
export type HeaderValues = Record<string, string[] | undefined>;

const values = (headers: HeaderValues, name: string): string[] =>
  (headers[name.toLowerCase()] ?? []).map((s) => s.trim()).filter((s) => s !== "");

/**
 * The user of a request whose TLS client certificate chained to the front-proxy CA (checked by
 * the TLS server) and whose common name is `clientName`. Pure; a string says why it is refused.
 */
export function remoteUser(
  config: FrontProxyConfig,
  clientName: string | undefined,
  headers: HeaderValues,
): RemoteUser | string {
  if (clientName === undefined)
    return "no client certificate: only kube-apiserver's front proxy may call this API";
  if (config.allowedNames.length > 0 && !config.allowedNames.includes(clientName))
    return `client certificate ${clientName} is not an allowed front proxy (${config.allowedNames.join(", ")})`;
  const username = config.usernameHeaders.map((h) => values(headers, h)[0]).find((u) => u !== undefined);
  if (username === undefined) return `no user in ${config.usernameHeaders.join(" or ")}`;
  const groups = config.groupHeaders.flatMap((h) => values(headers, h));
  const extra: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const prefix = config.extraHeaderPrefixes.find((p) => name.startsWith(p.toLowerCase()));
    if (prefix === undefined || value === undefined) continue;
    const key = decodeURIComponent(name.slice(prefix.length));
    extra[key] = [...(extra[key] ?? []), ...value];
  }
  return { username, groups, extra };
}
