// Fetches the CRI protocol definition (runtime.v1 api.proto of the Go module k8s.io/cri-api) from
// the Go module proxy and writes it to the path given: the module's zip, checked against its
// pinned go.sum hash (h1:, the hash of every file of the module) before one file is taken out.
// No Go toolchain needed, so the operator's image build runs it too (Dockerfile, stage cri-proto).
//   node operator/drivers/containerd/cri-proto-fetch.ts OUT     ($GOPROXY's first URL, else proxy.golang.org)
import { createHash } from "node:crypto";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { inflateRawSync } from "node:zlib";
import { CRI_API_SUM, CRI_API_VERSION } from "./cri-api-pin.ts";

const MODULE = "k8s.io/cri-api";
const PROTO_IN_MODULE = "pkg/apis/runtime/v1/api.proto";

/** Every file of a zip archive by name (stored or deflated entries, as module zips hold). */
export function unzip(zip: Buffer): Map<string, Buffer> {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error("not a zip archive: no end of central directory");
  const entries = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const files = new Map<string, Buffer>();
  for (let i = 0; i < entries; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error(`zip central directory entry ${i} is damaged`);
    const method = zip.readUInt16LE(at + 10);
    const size = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const skip = nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.toString("utf8", at + 46, at + 46 + nameLength);
    const data = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const raw = zip.subarray(data, data + size);
    if (method !== 0 && method !== 8) throw new Error(`zip entry ${name}: compression method ${method}`);
    if (!name.endsWith("/")) files.set(name, method === 0 ? Buffer.from(raw) : inflateRawSync(raw));
    at += 46 + skip;
  }
  return files;
}

/** Go's dirhash Hash1 of a module's files: what go.sum records as h1:. */
export function moduleHash(files: Map<string, Buffer>): string {
  const summary = [...files.keys()]
    .sort()
    .map(
      (name) =>
        `${createHash("sha256")
          .update(files.get(name) as Buffer)
          .digest("hex")}  ${name}\n`,
    )
    .join("");
  return `h1:${createHash("sha256").update(summary).digest("base64")}`;
}

/** The proxy to ask: the first URL of GOPROXY (a comma or pipe separated list), else the public one. */
export function proxyUrl(goproxy: string | undefined): string {
  const first = (goproxy ?? "").split(/[,|]/).find((p) => /^https?:\/\//.test(p));
  return (first ?? "https://proxy.golang.org").replace(/\/$/, "");
}

async function main(out: string | undefined): Promise<void> {
  if (!out) throw new Error("usage: cri-proto-fetch.ts OUT");
  const url = `${proxyUrl(process.env.GOPROXY)}/${MODULE}/@v/${CRI_API_VERSION}.zip`;
  const response = await fetch(url, { signal: AbortSignal.timeout(120_000) });
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${response.statusText}`);
  const files = unzip(Buffer.from(await response.arrayBuffer()));
  const sum = moduleHash(files);
  if (sum !== CRI_API_SUM)
    throw new Error(
      `${MODULE}@${CRI_API_VERSION} from ${url} has hash ${sum}, not the pinned ${CRI_API_SUM}`,
    );
  const proto = files.get(`${MODULE}@${CRI_API_VERSION}/${PROTO_IN_MODULE}`);
  if (proto === undefined) throw new Error(`${MODULE}@${CRI_API_VERSION} has no ${PROTO_IN_MODULE}`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(`${out}.tmp`, proto, { mode: 0o644 });
  renameSync(`${out}.tmp`, out);
}

if (import.meta.main) await main(process.argv[2]);
