// The operator's SSH client key: an ed25519 keypair in OpenSSH formats, generated when an
// AgentHost's key Secret does not exist yet, so an admin authorizes it with one copy-paste.
//
// Encoded here rather than by ssh2's generateKeyPairSync: that one strips leading zero bytes
// from the 32-byte public key (mscdex/ssh2#1390, #1513), so about one key in 200 came out
// unreadable, by ssh2 itself and by sshd alike.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { fingerprint, formatPublicKey } from "./host-key.ts";

export interface ClientKeypair {
  /** `-----BEGIN OPENSSH PRIVATE KEY-----` text, unencrypted (the Secret protects it). */
  privateKey: string;
  /** The authorized_keys line: `ssh-ed25519 AAAA... comment`. */
  publicKey: string;
  fingerprint: string;
}

const KEY_TYPE = "ssh-ed25519";
const ED25519_BYTES = 32;
/** PKCS#8 DER of an ed25519 private key, before its 32-byte seed (RFC 8410). */
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

export function generateClientKeypair(comment: string): ClientKeypair {
  const { privateKey } = generateKeyPairSync("ed25519");
  const seed = Buffer.from(privateKey.export({ format: "jwk" }).d as string, "base64url");
  return encodeEd25519Keypair(seed, comment, randomBytes(4).readUInt32BE(0));
}

/**
 * The keypair of an ed25519 seed in OpenSSH formats (PROTOCOL.key in OpenSSH's sources).
 * `checkint` is the private section's random check word: it only tells a wrong passphrase.
 */
export function encodeEd25519Keypair(seed: Buffer, comment: string, checkint: number): ClientKeypair {
  if (seed.length !== ED25519_BYTES) throw new Error(`ed25519 seed must be ${ED25519_BYTES} bytes`);
  if (/[\r\n]/.test(comment)) throw new Error("key comment must be one line");
  const publicBytes = ed25519PublicKey(seed);
  const blob = Buffer.concat([sshString(KEY_TYPE), sshString(publicBytes)]);
  const unpadded = Buffer.concat([
    uint32(checkint),
    uint32(checkint),
    sshString(KEY_TYPE),
    sshString(publicBytes),
    sshString(Buffer.concat([seed, publicBytes])),
    sshString(comment),
  ]);
  // Padded with 1, 2, 3, ... to the cipher's block size, 8 for "none".
  const padding = Buffer.from(Array.from({ length: (8 - (unpadded.length % 8)) % 8 }, (_, i) => i + 1));
  const body = Buffer.concat([
    Buffer.from("openssh-key-v1\0"),
    sshString("none"), // cipher
    sshString("none"), // kdf
    sshString(""), // kdf options
    uint32(1), // one key
    sshString(blob),
    sshString(Buffer.concat([unpadded, padding])),
  ]);
  const lines = body.toString("base64").match(/.{1,70}/g) ?? [];
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join("\n")}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: formatPublicKey(blob, comment),
    fingerprint: fingerprint(blob),
  };
}

function ed25519PublicKey(seed: Buffer): Buffer {
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: "der",
    type: "pkcs8",
  });
  return Buffer.from(createPublicKey(privateKey).export({ format: "jwk" }).x as string, "base64url");
}

function uint32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value >>> 0);
  return out;
}

function sshString(value: string | Buffer): Buffer {
  const bytes = typeof value === "string" ? Buffer.from(value) : value;
  return Buffer.concat([uint32(bytes.length), bytes]);
}
