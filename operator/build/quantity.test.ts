import { describe, expect, it } from "vitest";
import { canonicalQuantity, canonicalResources, MILLI } from "./quantity.ts";

describe("canonicalQuantity", () => {
  // Each pair as kube-apiserver v1.34 stores it (tests/integration/idle-writes.test.ts checks
  // the same table against the real API server).
  it.each([
    ["0", "0"],
    ["0Mi", "0"],
    ["0.000", "0"],
    ["100m", "100m"],
    ["0.1", "100m"],
    ["0.5", "500m"],
    ["1", "1"],
    ["1000", "1k"],
    ["1000m", "1"],
    ["1500m", "1500m"],
    ["1.5", "1500m"],
    [".5", "500m"],
    ["5.", "5."],
    ["+2", "+2"],
    ["+2.5", "2500m"],
    ["010", "010"],
    ["+1Ki", "+1Ki"],
    ["+8Ki", "8Ki"],
    ["-1.5", "-1500m"],
    ["64Mi", "64Mi"],
    ["1024Mi", "1Gi"],
    ["1.5Gi", "1536Mi"],
    ["0.5Ki", "512"],
    ["1Ki", "1Ki"],
    ["1.1Ki", "1126400m"],
    ["2048Ki", "2Mi"],
    ["1536", "1536"],
    ["1e3", "1e3"],
    ["1.5e3", "1500"],
    ["12e3", "12e3"],
    ["1E6", "1E6"],
    ["1.0E6", "1e6"],
    ["1e-3", "1e-3"],
    ["1G", "1G"],
    ["1000M", "1G"],
    ["0.1m", "100u"],
    ["1n", "1n"],
    ["0.1n", "1n"],
    [1, "1"],
    [0.5, "500m"],
    [2048, "2048"],
  ])("%s → %s", (input, stored) => {
    expect(canonicalQuantity(input)).toBe(stored);
  });

  it("rounds up to milli where the API server does (requests and limits)", () => {
    expect(canonicalQuantity("0.1m", MILLI)).toBe("1m");
    expect(canonicalQuantity("100u", MILLI)).toBe("1m");
    expect(canonicalQuantity("1.0001", MILLI)).toBe("1001m");
    expect(canonicalQuantity("64Mi", MILLI)).toBe("64Mi");
  });

  it("returns what is not a quantity as given, for the API server to refuse", () => {
    expect(canonicalQuantity("abc")).toBe("abc");
    expect(canonicalQuantity("1Xi")).toBe("1Xi");
    expect(canonicalQuantity("")).toBe("");
  });
});

describe("canonicalResources", () => {
  it("rewrites requests and limits and keeps the rest", () => {
    expect(
      canonicalResources({
        requests: { cpu: "0.5", memory: "1024Mi" },
        limits: { cpu: 2 },
        claims: [{ name: "gpu" }],
      }),
    ).toEqual({ requests: { cpu: "500m", memory: "1Gi" }, limits: { cpu: "2" }, claims: [{ name: "gpu" }] });
  });
});
