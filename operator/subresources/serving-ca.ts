// The aggregated API's CA, kept in a Secret of the operator's namespace so that every replica
// (leader and standbys, which all serve the API) signs with the same one and the APIService's
// caBundle stays valid across restarts. The first replica to start creates it; one that loses
// that race reads the winner's.
import { isAlreadyExists, isNotFound, type KubeClient, type KubeObject } from "../kube/client.ts";
import { resources } from "../kube/resources.ts";
import { issueCa, type KeyAndCertificate } from "./certificates.ts";

export const CA_SECRET = "agenttype-subresources-ca";

interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

const b64 = (text: string) => Buffer.from(text).toString("base64");
const text = (data: string | undefined) => (data === undefined ? "" : Buffer.from(data, "base64").toString());

/** The CA in `namespace`'s Secret, created there when it does not exist yet. */
export async function servingCa(
  client: KubeClient,
  namespace: string,
  signal: AbortSignal,
): Promise<KeyAndCertificate> {
  const read = async () => {
    const secret = await client.get<SecretObject>(resources.secret, namespace, CA_SECRET, signal);
    const ca = { key: text(secret.data?.["tls.key"]), certificate: text(secret.data?.["tls.crt"]) };
    if (ca.key === "" || ca.certificate === "")
      throw new Error(
        `Secret ${namespace}/${CA_SECRET} lacks tls.crt or tls.key: delete it and the operator makes a new CA`,
      );
    return ca;
  };
  try {
    return await read();
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  const ca = issueCa("agenttype-subresources-ca", new Date());
  try {
    await client.create<SecretObject>(
      resources.secret,
      namespace,
      {
        apiVersion: "v1",
        kind: "Secret",
        type: "kubernetes.io/tls",
        metadata: {
          name: CA_SECRET,
          namespace,
          labels: { "app.kubernetes.io/managed-by": "agenttype-operator" },
        },
        data: { "tls.crt": b64(ca.certificate), "tls.key": b64(ca.key) },
      },
      signal,
    );
    return ca;
  } catch (error) {
    if (!isAlreadyExists(error)) throw error;
    return read();
  }
}
