import { describe, expect, it } from "vitest";
import { quantityAtMost, quantityNanos, quantityWithin } from "./quantity.ts";

describe("quantityNanos", () => {
  it.each([
    ["1", 10n ** 9n],
    [2, 2n * 10n ** 9n],
    ["100m", 10n ** 8n],
    ["0.1", 10n ** 8n],
    [".5", 5n * 10n ** 8n],
    ["5.", 5n * 10n ** 9n],
    ["+2", 2n * 10n ** 9n],
    ["-1.5", -15n * 10n ** 8n],
    ["1Ki", 1024n * 10n ** 9n],
    ["1.5Gi", 3n * 2n ** 29n * 10n ** 9n],
    ["1e3", 10n ** 12n],
    ["1E3", 10n ** 12n],
    ["1E", 10n ** 27n],
    ["1e-3", 10n ** 6n],
    // Rounded up to the nano, as the API server does: a request for some gets some.
    ["0.1n", 1n],
    ["1e-12", 1n],
    ["-0.1n", -1n],
    ["0", 0n],
    ["0Mi", 0n],
  ])("%s is %s nanos", (text, nanos) => {
    expect(quantityNanos(text)).toBe(nanos);
  });

  it.each(["", ".", "-", "1 Gi", "1gi", "1e1.5", "1e100", "1e4294967296", "lots", "1.5.5", "Mi", 1.5])(
    "%j is no quantity",
    (text) => {
      expect(quantityNanos(text)).toBeUndefined();
    },
  );
});

describe("quantityWithin", () => {
  const memory = { min: "4Mi", max: "1Ti" };
  it("reads bounds inclusively, in every notation", () => {
    expect(quantityWithin("4Mi", memory)).toBe(true);
    expect(quantityWithin(4 * 2 ** 20, memory)).toBe(true);
    expect(quantityWithin("4194304", memory)).toBe(true);
    expect(quantityWithin("4194303", memory)).toBe(false);
    expect(quantityWithin("1Ti", memory)).toBe(true);
    expect(quantityWithin("1025Gi", memory)).toBe(false);
    expect(quantityWithin("100m", memory)).toBe(false);
    expect(quantityWithin("0", memory)).toBe(false);
    expect(quantityWithin("-1Gi", memory)).toBe(false);
  });

  it("asks for whole numbers when told", () => {
    const whole = { min: "1", max: "8", integer: true };
    expect(quantityWithin("1000m", whole)).toBe(true);
    expect(quantityWithin("1500m", whole)).toBe(false);
  });
});

describe("quantityAtMost", () => {
  it("compares across notations, and leaves a non-quantity to its own rule", () => {
    expect(quantityAtMost("500m", 1)).toBe(true);
    expect(quantityAtMost("1Gi", "1G")).toBe(false);
    expect(quantityAtMost("1G", "1Gi")).toBe(true);
    expect(quantityAtMost("lots", "1")).toBe(true);
  });
});
