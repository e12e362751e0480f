// The certificates of the operator's aggregated API: a CA whose certificate goes into the
// APIService's caBundle, and serving certificates it signs for the operator's Service name.
// Keys come from node:crypto; node-forge writes the X.509 (Node can read certificates but not
// make them). No I/O.
import { generateKeyPairSync } from "node:crypto";
import forge from "node-forge";

export interface KeyAndCertificate {
  /** PEM, PKCS#1. */
  key: string;
  /** PEM. */
  certificate: string;
}

const DAY_MS = 86_400_000;
/** The CA outlives many serving certificates; an operator restart issues a new serving one. */
export const CA_VALIDITY_DAYS = 3650;
export const SERVING_VALIDITY_DAYS = 365;

function keyPair() {
  const pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    pem: pair.privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
    publicKey: forge.pki.publicKeyFromPem(pair.publicKey.export({ type: "spki", format: "pem" }).toString()),
  };
}

function serial(): string {
  // Positive (first bit clear), 16 random bytes, as RFC 5280 asks.
  const bytes = forge.random.getBytesSync(16);
  return `0${forge.util.bytesToHex(bytes).slice(1)}`;
}

/** A self-signed CA that may sign serving certificates only (pathlen 0). */
export function issueCa(commonName: string, now: Date): KeyAndCertificate {
  const { pem, publicKey } = keyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = new Date(now.getTime() + CA_VALIDITY_DAYS * DAY_MS);
  const subject = [{ name: "commonName", value: commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(pem), forge.md.sha256.create());
  return { key: pem, certificate: forge.pki.certificateToPem(cert) };
}

/** A serving certificate for `dnsNames` (the first is its common name), signed by `ca`. */
export function issueServingCertificate(
  ca: KeyAndCertificate,
  dnsNames: readonly string[],
  now: Date,
): KeyAndCertificate {
  if (dnsNames.length === 0) throw new Error("a serving certificate needs at least one DNS name");
  const caCert = forge.pki.certificateFromPem(ca.certificate);
  const { pem, publicKey } = keyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = new Date(now.getTime() + SERVING_VALIDITY_DAYS * DAY_MS);
  cert.setSubject([{ name: "commonName", value: dnsNames[0] as string }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    { name: "subjectAltName", altNames: dnsNames.map((value) => ({ type: 2, value })) },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.key), forge.md.sha256.create());
  return { key: pem, certificate: forge.pki.certificateToPem(cert) };
}

/** The DNS names a Service is reached by inside the cluster; the aggregator asks for `<name>.<namespace>.svc`. */
export function serviceDnsNames(namespace: string, name: string): string[] {
  return [`${name}.${namespace}.svc`, `${name}.${namespace}.svc.cluster.local`, `${name}.${namespace}`, name];
}
