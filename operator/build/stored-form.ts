// Values in the form the API server stores them, for the parts of an owned object that it
// would otherwise rewrite: defaults inside atomic values (which our field manager then owns
// whole) and fields it drops. Applying the stored form lets the digest of what we would apply
// equal the digest of what we read back (controllers/agenttype/owned-fields.ts), so an
// unchanged object is never written again. Pure.
import type { V1EnvVar, V1PersistentVolumeClaim } from "@kubernetes/client-node";
import { canonicalQuantity } from "./quantity.ts";

/**
 * Environment variables as stored: an empty value is dropped (the field is omitted when
 * empty), a fieldRef gets its default apiVersion v1 and a resourceFieldRef's divisor its
 * canonical quantity (both selectors are atomic, so the defaults would be ours).
 */
export function storedEnv(env: readonly V1EnvVar[]): V1EnvVar[] {
  return env.map((variable) => {
    const { value, valueFrom, ...rest } = variable;
    const { fieldRef, resourceFieldRef } = valueFrom ?? {};
    return {
      ...rest,
      ...(value === undefined || value === "" ? {} : { value }),
      ...(valueFrom === undefined
        ? {}
        : {
            valueFrom: {
              ...valueFrom,
              ...(fieldRef === undefined ? {} : { fieldRef: { apiVersion: "v1", ...fieldRef } }),
              ...(resourceFieldRef?.divisor === undefined
                ? {}
                : {
                    resourceFieldRef: {
                      ...resourceFieldRef,
                      divisor: canonicalQuantity(resourceFieldRef.divisor as string | number),
                    },
                  }),
            },
          }),
    };
  });
}

/**
 * A StatefulSet's volume claim template as stored: the list is atomic, so the defaults the
 * API server fills in (kind, apiVersion, volumeMode, the Pending phase) would be ours.
 */
export function storedClaimTemplate(claim: V1PersistentVolumeClaim): V1PersistentVolumeClaim {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    ...claim,
    spec: { volumeMode: "Filesystem", ...claim.spec },
    status: { phase: "Pending", ...claim.status },
  };
}
