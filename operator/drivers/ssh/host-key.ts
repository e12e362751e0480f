// OpenSSH public keys as a pinned host key is written ("ssh-ed25519 AAAA... comment"), their
// SHA256 fingerprints as `ssh-keygen -l` prints them, and the algorithms that make a server
// present the pinned key's type. Pure.
import { createHash } from "node:crypto";

export interface PublicKey {
  /** Key type, for example ssh-ed25519. */
  type: string;
  /** The key in SSH wire format (the base64 part decoded). */
  blob: Buffer;
  comment: string;
}

const KEY_TYPES = [
  "ssh-ed25519",
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
] as const;

/** Parses one OpenSSH public key line; throws naming what is wrong. */
export function parsePublicKey(line: string): PublicKey {
  const [type, base64, ...comment] = line.trim().split(/\s+/);
  if (type === undefined || base64 === undefined)
    throw new Error("public key must be '<type> <base64> [comment]', as in a .pub file");
  if (!(KEY_TYPES as readonly string[]).includes(type))
    throw new Error(`public key type ${type} is not one of ${KEY_TYPES.join(", ")}`);
  if (!/^[A-Za-z0-9+/]+={0,3}$/.test(base64)) throw new Error("public key is not valid base64");
  const blob = Buffer.from(base64, "base64");
  // The blob starts with its own type as an SSH string: a mismatch is a mangled key.
  const length = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (length < 0 || 4 + length > blob.length || blob.subarray(4, 4 + length).toString() !== type)
    throw new Error(`public key data does not hold a ${type} key`);
  return { type, blob, comment: comment.join(" ") };
}

/** `SHA256:<base64 without padding>` of a key blob, as OpenSSH prints fingerprints. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** The OpenSSH line of a key blob. */
export function formatPublicKey(blob: Buffer, comment = ""): string {
  const type = blob.subarray(4, 4 + blob.readUInt32BE(0)).toString();
  return `${type} ${blob.toString("base64")}${comment === "" ? "" : ` ${comment}`}`;
}

/**
 * Host key algorithms to offer so the server signs with the pinned key's type; otherwise a
 * server with several host keys may present another one of its keys and be refused wrongly.
 */
export function hostKeyAlgorithms(type: string): string[] {
  return type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type];
}
