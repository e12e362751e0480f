// The operator's SSH client key for an AgentHost, from the Secret the AgentHost names. When
// that Secret does not exist, the operator generates an ed25519 keypair and stores it there,
// so an admin authorizes the public key (published in status and an Event) with one copy-paste.
import type { AgentHost } from "../../api/agenthost.ts";
import { ssh2Package } from "../drivers/on-demand.ts";
import { generateClientKeypair } from "../drivers/ssh/keypair.ts";
import { isNotFound, type KubeClient, type KubeObject } from "../kube/client.ts";
import { resources } from "../kube/resources.ts";

/** The Secret key beside the private key where a generated public key is kept. */
export const PUBLIC_KEY_SUFFIX = ".pub";
export const GENERATED_LABEL = "agenttype.dev/generated-ssh-key";

interface SecretObject extends KubeObject {
  data?: Record<string, string>;
}

export interface ClientKey {
  privateKey: string;
  /** Set when the operator generated the key (now or earlier). */
  publicKey?: string;
  /** True when this call generated it. */
  generated: boolean;
}

/** The AgentHost's key Secret exists but gives no usable key; `reason` is the condition's. */
export class ClientKeyError extends Error {
  override name = "ClientKeyError";
  readonly reason: "ClientKeyMissing" | "ClientKeyInvalid";
  constructor(reason: ClientKeyError["reason"], message: string) {
    super(message);
    this.reason = reason;
  }
}

/** Reads the AgentHost's client key, generating and storing one when its Secret does not exist. */
export async function clientKey(
  client: KubeClient,
  host: AgentHost,
  signal: AbortSignal,
  options: { generate: false },
): Promise<ClientKey | undefined>;
export async function clientKey(client: KubeClient, host: AgentHost, signal: AbortSignal): Promise<ClientKey>;
export async function clientKey(
  client: KubeClient,
  host: AgentHost,
  signal: AbortSignal,
  options: { generate: boolean } = { generate: true },
): Promise<ClientKey | undefined> {
  const ref = host.spec.ssh.privateKeySecretRef;
  const where = `Secret ${ref.namespace}/${ref.name}`;
  let secret: SecretObject;
  try {
    secret = await client.get<SecretObject>(resources.secret, ref.namespace, ref.name, signal);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    // Only the AgentHost controller generates keys: one writer, no race between controllers.
    if (!options.generate) return undefined;
    const pair = generateClientKeypair(`agenttype-operator@${host.metadata.name}`);
    await client.create<SecretObject>(
      resources.secret,
      ref.namespace,
      {
        apiVersion: "v1",
        kind: "Secret",
        metadata: {
          name: ref.name,
          namespace: ref.namespace,
          labels: { [GENERATED_LABEL]: "true", "app.kubernetes.io/managed-by": "agenttype-operator" },
        },
        type: "Opaque",
        data: {
          [ref.key]: Buffer.from(pair.privateKey).toString("base64"),
          [`${ref.key}${PUBLIC_KEY_SUFFIX}`]: Buffer.from(pair.publicKey).toString("base64"),
        },
      } as SecretObject,
      signal,
    );
    return { privateKey: pair.privateKey, publicKey: pair.publicKey, generated: true };
  }
  const encoded = secret.data?.[ref.key];
  if (encoded === undefined)
    throw new ClientKeyError(
      "ClientKeyMissing",
      `${where} has no key ${JSON.stringify(ref.key)} (spec.ssh.privateKeySecretRef.key)`,
    );
  const privateKey = Buffer.from(encoded, "base64").toString("utf8");
  const unreadable = unreadableKey(privateKey);
  if (unreadable !== undefined) {
    const generated = secret.metadata.labels?.[GENERATED_LABEL] === "true";
    throw new ClientKeyError(
      "ClientKeyInvalid",
      `${where} key ${JSON.stringify(ref.key)} (spec.ssh.privateKeySecretRef.key) is not an SSH private key the operator can use: ${unreadable}; ${
        generated
          ? "the operator generated it: delete the Secret, and the operator generates a new key to authorize on the host"
          : "store an unencrypted OpenSSH or PEM private key there"
      }`,
    );
  }
  const publicKey = secret.data?.[`${ref.key}${PUBLIC_KEY_SUFFIX}`];
  return {
    privateKey,
    ...(publicKey === undefined
      ? {}
      : { publicKey: Buffer.from(publicKey, "base64").toString("utf8").trim() }),
    generated: false,
  };
}

/** Why ssh2 cannot use a private key, or undefined when it can. */
function unreadableKey(privateKey: string): string | undefined {
  const parsed = ssh2Package().utils.parseKey(privateKey);
  // ssh2's messages may quote bytes of the damaged key: keep them printable.
  if (parsed instanceof Error)
    return parsed.message
      .replace(/[^\x20-\x7e]+/g, " ")
      .replace(/ +/g, " ")
      .trim();
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key === undefined || !key.isPrivateKey()) return "it holds no private key";
  return undefined;
}
