import { describe, expect, it } from "vitest";
import { KubeApiError } from "../../kube/client.ts";
import { classifyFailure } from "./failure.ts";

const action = "applying Deployment web";

describe("classifyFailure", () => {
  it("treats a 500 for a malformed apply as the object's fault, not the server's", () => {
    // The API server's answer to a server-side apply whose body does not fit the schema.
    const error = new KubeApiError(
      500,
      "InternalError",
      "failed to create typed patch object (ns/web; apps/v1, Kind=Deployment): .spec.template.spec.affinity: expected map, got &{[a]}",
    );
    expect(classifyFailure(error, action)).toMatchObject({ reason: "ApplyFailed", transient: false });
    expect(classifyFailure(error, action).message).toContain(
      "applying Deployment web: the API server rejected",
    );
  });

  it("retries what can succeed unchanged: no answer, timeouts, conflicts, throttling, a server error", () => {
    expect(classifyFailure(new KubeApiError(0, "Timeout", "no answer within 30 s"), action)).toMatchObject({
      reason: "APIServerUnavailable",
      transient: true,
    });
    expect(
      classifyFailure(new KubeApiError(409, "Conflict", "the object has been modified"), action),
    ).toMatchObject({
      reason: "APIServerBusy",
      transient: true,
    });
    expect(classifyFailure(new KubeApiError(429, "TooManyRequests", "slow down"), action).transient).toBe(
      true,
    );
    expect(
      classifyFailure(new KubeApiError(503, "ServiceUnavailable", "etcdserver: leader changed"), action),
    ).toMatchObject({
      reason: "APIServerUnavailable",
      transient: true,
    });
  });

  it("says what a user or admin must change: an invalid object, a missing permission, a builder's refusal", () => {
    expect(
      classifyFailure(new KubeApiError(422, "Invalid", "spec.selector: field is immutable"), action),
    ).toMatchObject({
      reason: "ApplyFailed",
      transient: false,
    });
    const forbidden = classifyFailure(new KubeApiError(403, "Forbidden", "cannot patch deployments"), action);
    expect(forbidden).toMatchObject({ reason: "Forbidden", transient: false });
    expect(forbidden.message).toContain("RBAC");
    expect(classifyFailure(new RangeError("memory size 0 is below 1Mi"), "building the objects")).toEqual({
      reason: "ReconcileFailed",
      message: "building the objects: memory size 0 is below 1Mi",
      transient: false,
    });
  });
});
