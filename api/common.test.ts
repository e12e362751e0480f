import { validRange } from "semver";
import { describe, expect, it } from "vitest";
import { sampleMatching, seededRandom } from "../tests/fixtures/regex-sampler.ts";
import { agentTypeSpec, IMAGE } from "./agenttype.ts";
import { HTTP_URL, httpUrl, labelKey, labelValue, SEMVER_RANGE, semverRange } from "./common.ts";

const random = seededRandom(20_251_125);
const samples = (pattern: string, count: number) =>
  Array.from({ length: count }, () => sampleMatching(random, pattern));

describe("httpUrl", () => {
  it("every URL it accepts is one a URL parser takes, with the same port", () => {
    for (const url of samples(HTTP_URL, 500)) {
      if (url.length > 2048) continue;
      expect(httpUrl.safeParse(url).success, url).toBe(true);
      const parsed = new URL(url);
      const port = /^https?:\/\/(\[[^\]]*\]|[^/:?#]*)(:([0-9]+))?/.exec(url)?.[3];
      const defaultPort = url.startsWith("https") ? "443" : "80";
      expect(parsed.port, url).toBe(port === undefined || port === defaultPort ? "" : String(Number(port)));
    }
  });

  it.each([
    "http://ollama.models.svc:11434",
    "https://bedrock-runtime.us-east-1.amazonaws.com/",
    "http://10.0.0.1:8080/v1?x=1#y",
    "http://[fd00::1]:11434",
    "http://localhost",
    "http://ollama.models.svc.cluster.local.:11434/api",
  ])("accepts %s", (url) => {
    expect(httpUrl.safeParse(url).success).toBe(true);
  });

  it.each([
    "http://ollama:99999",
    "http://ollama:0",
    "http://ollama:",
    "ollama:11434",
    "ftp://ollama",
    "http://user:secret@ollama",
    "http://ollama /x",
    "http://999.1.1.1",
    "http://1.2.3",
    "http://010.0.0.1",
    "http://host.123",
    "http://[fd00::1::2]",
    "http://ollama/ä",
  ])("refuses %s", (url) => {
    const result = httpUrl.safeParse(url);
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toContain("port from 1 to 65535");
  });
});

describe("semverRange", () => {
  it("every range it accepts is one the resolver reads", () => {
    for (const range of samples(SEMVER_RANGE, 500)) {
      if (range.length > 256) continue;
      expect(validRange(range), range).not.toBeNull();
    }
  });

  it.each([
    "^1.2.0",
    "~1.4",
    "1.x",
    "1",
    "*",
    "x",
    ">=1.0.0 <2.0.0",
    ">1.2.3",
    "<=1.2.3",
    "1.2 - 2.0.0",
    "^1.2.0 || ^2.0.0",
    "2.0.0-beta.1",
    "v1.2.3",
  ])("accepts %s", (range) => {
    expect(semverRange.safeParse(range).success).toBe(true);
  });

  // Each of these semver reads otherwise than a user would, or not at all.
  it.each([
    [">1.2", "semver reads it as >=1.3.0"],
    ["<=1.2", "semver reads it as <1.3.0, all of 1.2.x"],
    ["1.2.3 - 2.3", "semver reads it as <2.4.0"],
    ["1.x.3", "semver ignores the 3"],
    [">= 1.2.0", "a space after the operator"],
    ["~>1.2", "Ruby's pessimistic operator"],
    ["1.2.3,2.0.0", "a comma list"],
    ["latest", "not a range"],
  ])("refuses %s (%s)", (range) => {
    expect(semverRange.safeParse(range).success).toBe(false);
  });
});

describe("image", () => {
  const image = agentTypeSpec.shape.image;
  it("every reference it accepts is a valid reference", () => {
    for (const reference of samples(IMAGE, 300)) {
      if (reference.length > 512 || /^[a-f0-9]{64}$/.test(reference)) continue;
      const result = image.safeParse(reference);
      if (!result.success) expect(result.error.issues[0]?.message, reference).toContain("at most 237");
    }
  });

  it.each([
    "ghcr.io/acme/researcher:1.4.2",
    "python:3.12-slim",
    "localhost:5000/agent",
    `registry.example.com:443/team/agent@sha256:${"a".repeat(64)}`,
    "[fd00::1]:5000/agent:1",
  ])("accepts %s", (reference) => {
    expect(image.safeParse(reference).success).toBe(true);
  });

  it.each([
    "acme/Agent",
    "acme/agent :1",
    "acme/agent:",
    "acme/agent@sha256:abc",
    "a".repeat(64).replaceAll("a", "f"),
    `acme/${"a".repeat(240)}`,
    "-acme/agent",
    "acme//agent",
  ])("refuses %s", (reference) => {
    expect(image.safeParse(reference).success).toBe(false);
  });
});

describe("labels", () => {
  it.each(["app", "app.kubernetes.io/name", "a_b.c-D", `${"p".repeat(253)}/${"n".repeat(63)}`])(
    "accepts the key %s",
    (key) => {
      expect(labelKey.safeParse(key).success).toBe(true);
    },
  );

  it.each(["", "-app", "app-", "Example.com/app", "a/b/c", `${"p".repeat(254)}/n`, "n".repeat(64)])(
    "refuses the key %j",
    (key) => {
      expect(labelKey.safeParse(key).success).toBe(false);
    },
  );

  it("values stop at 63 characters", () => {
    expect(labelValue.safeParse("v".repeat(63)).success).toBe(true);
    expect(labelValue.safeParse("v".repeat(64)).success).toBe(false);
    expect(labelValue.safeParse("").success).toBe(true);
  });
});
