// Kubernetes resource quantities to numbers, for limits the sidecar enforces itself. Pure.

const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const DECIMAL: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

/** The value of a quantity such as 1Gi, 500m, 2 or 1e3; throws on anything else. */
export function parseQuantity(quantity: string | number): number {
  if (typeof quantity === "number") return quantity;
  const match = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([KMGTPE]i)|([numkMGTPE]?)|[eE]([+-]?\d+))$/.exec(
    quantity,
  );
  if (match === null) throw new Error(`"${quantity}" is not a Kubernetes quantity`);
  const [, number, binary, decimal, exponent] = match;
  const value = Number(number);
  if (binary !== undefined) return value * (BINARY[binary] ?? Number.NaN);
  if (exponent !== undefined) return value * 10 ** Number(exponent);
  return value * (DECIMAL[decimal ?? ""] ?? Number.NaN);
}

const BINARY_EXPONENT: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL_EXPONENT: Record<string, number> = {
  n: -9,
  u: -6,
  m: -3,
  "": 0,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};
const DECIMAL_SUFFIX = new Map(
  Object.entries(DECIMAL_EXPONENT).map(([suffix, exponent]) => [exponent, suffix]),
);
const BINARY_SUFFIX = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

/** Nano: what every quantity is rounded up to. Milli: what a ResourceList (requests, limits) is. */
export const NANO = -9;
export const MILLI = -3;

/**
 * Whether the API server keeps a quantity's text exactly as written: it does when the text
 * parses on its fast path (at most 18 digits, nothing finer than nano) and already looks
 * canonical by a quick test (decimal: a scale that is a multiple of 3 and digits that neither
 * start with 0 nor end in 000; binary: a whole number that is not a multiple of 8). That is
 * how "+2" or "1E6" stay as they are. Mirrors resource.ParseQuantity of apimachinery.
 */
function keptAsWritten(
  whole: string,
  fraction: string,
  binary: number | undefined,
  tens: number,
  scale: number,
): boolean {
  const digits = whole.replace(/^0+/, "") || "0";
  const shifted = `${digits}${fraction}`;
  if (binary !== undefined) {
    const precision = 15 - digits.length - Math.trunc((binary * 3) / 10) - 1;
    if (fraction !== "" || precision < 0) return false;
    const value = BigInt(shifted) * 2n ** BigInt(binary);
    return value < 2n ** 63n && (BigInt(shifted) & 7n) !== 0n;
  }
  if (18 - shifted.length < 0 || tens < NANO || tens < scale) return false;
  return tens % 3 === 0 && !shifted.endsWith("000") && !shifted.startsWith("0");
}

/**
 * A quantity as the API server stores it, so that what we apply compares equal to what we
 * read back: rounded up (away from zero) to 10^`scale`, in the format it was written in
 * (binary suffix, decimal suffix or exponent), with the largest suffix that keeps the number
 * whole. For example 0.5 → 500m, 1024Mi → 1Gi, 1000 → 1k, 1.5Gi → 1536Mi, 0.5Ki → 512.
 * Anything that is not a quantity is returned as given, for the API server to refuse.
 */
export function canonicalQuantity(quantity: string | number, scale: number = NANO): string {
  const text = String(quantity);
  const match = /^([+-]?)(\d*)(?:\.(\d*))?(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/.exec(text);
  if (match === null) return text;
  const [, sign = "", whole = "", fraction = "", suffix = ""] = match;
  if (whole === "" && fraction === "") return text;
  const binary = BINARY_EXPONENT[suffix];
  const exponentForm = /^[eE]/.test(suffix);
  const tens =
    -fraction.length +
    (binary !== undefined ? 0 : exponentForm ? Number(suffix.slice(1)) : (DECIMAL_EXPONENT[suffix] ?? 0));
  if (keptAsWritten(whole, fraction, binary, tens, scale)) return text;
  // value = digits × 10^tens × 2^binary, exactly, as numerator / denominator.
  let numerator = BigInt(`${whole}${fraction}` || "0") * 2n ** BigInt(binary ?? 0);
  let denominator = 1n;
  if (tens >= 0) numerator *= 10n ** BigInt(tens);
  else denominator = 10n ** BigInt(-tens);
  // In units of 10^scale, rounded up.
  numerator *= 10n ** BigInt(-scale);
  let units = (numerator + denominator - 1n) / denominator;
  if (units === 0n) return "0";
  const negative = sign === "-" ? "-" : "";
  const one = 10n ** BigInt(-scale);
  if (binary !== undefined && units >= 1024n * one && units % one === 0n) {
    let value = units / one;
    let power = 0;
    while (value % 1024n === 0n && power < BINARY_SUFFIX.length - 1) {
      value /= 1024n;
      power++;
    }
    return `${negative}${value}${BINARY_SUFFIX[power]}`;
  }
  let exponent = scale;
  while (units % 10n === 0n) {
    units /= 10n;
    exponent++;
  }
  while (exponent % 3 !== 0) {
    units *= 10n;
    exponent--;
  }
  if (exponentForm) return `${negative}${units}${exponent === 0 ? "" : `e${exponent}`}`;
  const decimal = DECIMAL_SUFFIX.get(exponent);
  return decimal === undefined ? text : `${negative}${units}${decimal}`;
}

/** Requests or limits as the API server stores them (a ResourceList is rounded up to milli). */
export function canonicalResourceList(
  list: Record<string, string | number> | undefined,
): Record<string, string> | undefined {
  if (list === undefined) return undefined;
  return Object.fromEntries(
    Object.entries(list).map(([name, value]) => [name, canonicalQuantity(value, MILLI)]),
  );
}

/** A container's resources as the API server stores them. */
export function canonicalResources<T extends { requests?: object; limits?: object }>(resources: T): T {
  const { requests, limits } = resources as {
    requests?: Record<string, string | number>;
    limits?: Record<string, string | number>;
  };
  return {
    ...resources,
    ...(requests === undefined ? {} : { requests: canonicalResourceList(requests) }),
    ...(limits === undefined ? {} : { limits: canonicalResourceList(limits) }),
  };
}
