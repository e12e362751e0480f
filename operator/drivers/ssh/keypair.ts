// The operator's SSH client key: an ed25519 keypair in OpenSSH formats, generated when an
// AgentHost's key Secret does not exist yet, so an admin authorizes it with one copy-paste.
import { ssh2Package } from "../on-demand.ts";
import { fingerprint, parsePublicKey } from "./host-key.ts";

export interface ClientKeypair {
  /** `-----BEGIN OPENSSH PRIVATE KEY-----` text, unencrypted (the Secret protects it). */
  privateKey: string;
  /** The authorized_keys line: `ssh-ed25519 AAAA... comment`. */
  publicKey: string;
  fingerprint: string;
}

export function generateClientKeypair(comment: string): ClientKeypair {
  if (/[\r\n]/.test(comment)) throw new Error("key comment must be one line");
  const pair = ssh2Package().utils.generateKeyPairSync("ed25519", { comment });
  const publicKey =
    comment === "" ? pair.public : `${pair.public.split(" ").slice(0, 2).join(" ")} ${comment}`;
  return { privateKey: pair.private, publicKey, fingerprint: fingerprint(parsePublicKey(publicKey).blob) };
}
