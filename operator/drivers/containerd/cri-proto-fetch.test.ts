import { createHash } from "node:crypto";
import { deflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { moduleHash, proxyUrl, unzip } from "./cri-proto-fetch.ts";

/** A zip archive as module zips are: local headers, then the central directory, then its end. */
function zipOf(files: Record<string, { data: string; deflate: boolean }>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, { data, deflate }] of Object.entries(files)) {
    const body = deflate ? deflateRawSync(Buffer.from(data)) : Buffer.from(data);
    const nameBytes = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(deflate ? 8 : 0, 8);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(deflate ? 8 : 0, 10);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, body);
    centrals.push(central, nameBytes);
    offset += local.length + nameBytes.length + body.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(files).length, 8);
  end.writeUInt16LE(Object.keys(files).length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

describe("cri-proto-fetch", () => {
  it("takes stored and deflated files out of a zip", () => {
    const files = unzip(
      zipOf({
        "m@v1/a.proto": { data: "syntax = 'proto3';\n".repeat(20), deflate: true },
        "m@v1/LICENSE": { data: "text", deflate: false },
      }),
    );
    expect([...files.keys()]).toEqual(["m@v1/a.proto", "m@v1/LICENSE"]);
    expect(files.get("m@v1/a.proto")?.toString()).toBe("syntax = 'proto3';\n".repeat(20));
    expect(files.get("m@v1/LICENSE")?.toString()).toBe("text");
    expect(() => unzip(Buffer.from("not a zip"))).toThrow(/not a zip archive/);
  });

  it("hashes a module as go.sum's h1: does (sorted names, sha256 of each, sha256 of the list)", () => {
    const sha = (s: string) => createHash("sha256").update(s).digest("hex");
    const summary = `${sha("A")}  m@v1/a\n${sha("B")}  m@v1/b\n`;
    const expected = `h1:${createHash("sha256").update(summary).digest("base64")}`;
    const files = new Map([
      ["m@v1/b", Buffer.from("B")],
      ["m@v1/a", Buffer.from("A")],
    ]);
    expect(moduleHash(files)).toBe(expected);
  });

  it("asks GOPROXY's first URL, else the public proxy", () => {
    expect(proxyUrl(undefined)).toBe("https://proxy.golang.org");
    expect(proxyUrl("https://proxy.golang.org,direct")).toBe("https://proxy.golang.org");
    expect(proxyUrl("off")).toBe("https://proxy.golang.org");
    expect(proxyUrl("direct|https://mirror.example/go/")).toBe("https://mirror.example/go");
  });
});
