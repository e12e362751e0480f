import { describe, expect, it } from "vitest";
import { ApiError, explainApiError } from "./errors.ts";

describe("explainApiError", () => {
  it("names the verb and subresource the API server refused, and the user it refused", () => {
    const said =
      'pods "coder-0" is forbidden: User "system:serviceaccount:team-a:viewer" cannot create resource "pods/attach" in API group "" in the namespace "team-a"';
    const message = explainApiError(
      new ApiError(403, "Forbidden", said, { verb: "create", resource: "pods/attach", namespace: "team-a" }),
    ).message;
    expect(message).toMatch(/^not allowed: you cannot create pods\/attach in namespace "team-a"/);
    expect(message).toContain("system:serviceaccount:team-a:viewer");
  });

  it("falls back on the call's own verb when the message does not say", () => {
    const error = new ApiError(403, "Forbidden", "forbidden", {
      verb: "get",
      resource: "pods/log",
      namespace: "x",
    });
    expect(explainApiError(error).message).toMatch(/^not allowed: you cannot get pods\/log in namespace "x"/);
  });

  it("says which AgentType was not found, and where", () => {
    const error = new ApiError(404, "NotFound", 'agenttypes.agenttype.dev "nope" not found', {
      verb: "get",
      resource: "agenttypes.agenttype.dev",
      namespace: "team-a",
      name: "nope",
    });
    expect(explainApiError(error).message).toBe('AgentType "nope" not found in namespace "team-a"');
  });

  it("says the CRDs are missing when the API server does not know the kind", () => {
    const error = new ApiError(404, "NotFound", "the server could not find the requested resource", {
      verb: "list",
      resource: "agenttypes.agenttype.dev",
      namespace: "team-a",
    });
    expect(explainApiError(error).message).toContain("are the CRDs installed?");
  });

  it("marks throttling and server errors as worth a retry, and others not", () => {
    const call = { verb: "list", resource: "pods", namespace: "a" };
    expect(explainApiError(new ApiError(503, "ServiceUnavailable", "busy", call)).message).toContain(
      "transient",
    );
    expect(explainApiError(new ApiError(422, "Invalid", "bad", call)).message).not.toContain("transient");
  });
});
