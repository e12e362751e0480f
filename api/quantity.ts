// Kubernetes resource quantities read exactly as the API server reads them
// (resource.ParseQuantity, which the CEL quantity library also uses), so that zod and the CRD's
// CEL rules accept the same strings and order them the same way. Pure; no floating point.

/**
 * The grammar of a quantity (RE2 and JavaScript alike): the Kubernetes one, except that an
 * exponent is a whole number of at most two digits. Kubernetes also takes 1e1.5 in its
 * OpenAPI pattern (and then refuses it) and reads 1e4294967296 as 1 (the exponent is cut to 32
 * bits); nobody means either.
 */
export const QUANTITY_PATTERN =
  "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?[0-9]{1,2}))?$";
const PARTS_RE = /^([+-]?)([0-9]*)(?:\.([0-9]*))?(?:([KMGTPE]i)|([numkMGTPE])|[eE]([+-]?[0-9]{1,2}))?$/;

const NANO = 10n ** 9n;
const BINARY: Record<string, bigint> = { Ki: 10n, Mi: 20n, Gi: 30n, Ti: 40n, Pi: 50n, Ei: 60n };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

/**
 * The value of a quantity in nano units, as the API server holds it: rounded up (away from
 * zero) to the nano; the API server's cap at 2^63-1 is past every bound we set. Undefined when
 * it is no quantity of our grammar. Numbers are what YAML makes of `cpu: 2`.
 */
export function quantityNanos(quantity: string | number): bigint | undefined {
  if (typeof quantity === "number") {
    return Number.isSafeInteger(quantity) ? BigInt(quantity) * NANO : undefined;
  }
  const match = PARTS_RE.exec(quantity);
  // At least one digit, before or after the point.
  if (match === null || `${match[2]}${match[3] ?? ""}` === "") return undefined;
  const [, sign = "", whole = "", fraction = "", binary, decimal, exponentText] = match;
  const exponent =
    exponentText !== undefined ? Number(exponentText) : decimal !== undefined ? (DECIMAL[decimal] ?? 0) : 0;
  const digits = BigInt(`${whole}${fraction}` || "0");
  // value = digits × 10^(exponent - fraction.length) × 2^binary, in nanos, rounded up.
  const scale = exponent - fraction.length + 9;
  const shifted = binary === undefined ? digits : digits << (BINARY[binary] ?? 0n);
  const nanos = scale >= 0 ? shifted * 10n ** BigInt(scale) : ceilDiv(shifted, 10n ** BigInt(-scale));
  return sign === "-" ? -nanos : nanos;
}

/** A quantity's bounds, given as quantities such as 1Mi, with words for error messages. */
export interface QuantityBounds {
  min: string;
  max: string;
  /** Only whole numbers (after the suffix): 1000m is 1, 1500m is not. */
  integer?: boolean;
}

/** Whether a quantity is valid and within its bounds, by the API server's reading. */
export function quantityWithin(quantity: string | number, bounds: QuantityBounds): boolean {
  const nanos = quantityNanos(quantity);
  const min = quantityNanos(bounds.min);
  const max = quantityNanos(bounds.max);
  if (min === undefined || max === undefined) throw new Error(`bad bounds ${bounds.min}..${bounds.max}`);
  if (nanos === undefined || nanos < min || nanos > max) return false;
  return bounds.integer !== true || nanos % NANO === 0n;
}

/** A CEL string literal (JSON's escapes are CEL's). */
export function celString(text: string): string {
  return JSON.stringify(text);
}

/**
 * The same check in CEL, for an int-or-string value `value` (an expression). The pattern comes
 * first: ParseQuantity accepts a few strings the Kubernetes grammar does not, such as "-".
 */
export function quantityWithinCel(value: string, bounds: QuantityBounds): string {
  const q = `quantity(string(${value}))`;
  return [
    `(type(${value}) == int || string(${value}).matches(${celString(QUANTITY_PATTERN)}))`,
    `isQuantity(string(${value}))`,
    `${q}.compareTo(quantity(${celString(bounds.min)})) >= 0`,
    `${q}.compareTo(quantity(${celString(bounds.max)})) <= 0`,
    ...(bounds.integer === true ? [`${q}.isInteger()`] : []),
  ].join(" && ");
}

/** CEL: `a` and `b` are quantities (int-or-string expressions) and a <= b; true when either is no quantity. */
export function quantityAtMostCel(a: string, b: string): string {
  return `!isQuantity(string(${a})) || !isQuantity(string(${b})) || quantity(string(${a})).compareTo(quantity(string(${b}))) <= 0`;
}

/** a <= b for two quantities; true when either is no quantity (its own rule reports it). */
export function quantityAtMost(a: string | number, b: string | number): boolean {
  const x = quantityNanos(a);
  const y = quantityNanos(b);
  return x === undefined || y === undefined || x <= y;
}
