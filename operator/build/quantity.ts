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
