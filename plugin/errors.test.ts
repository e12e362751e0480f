import { describe, expect, it } from "vitest";
import { ApiError, explainApiError, explainHostError } from "./errors.ts";

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

describe("explainHostError", () => {
  const call = { verb: "get", resource: "agenttypes/log", namespace: "team-a", name: "edge" };

  it("says the cluster does not serve the operator's aggregated API, and how to look", () => {
    const message = explainHostError(
      new ApiError(404, "NotFound", "the server could not find the requested resource", call),
    ).message;
    expect(message).toContain("this cluster does not serve the operator's aggregated API");
    expect(message).toContain("kubectl get apiservice v1alpha1.subresources.agenttype.dev");
    // What kube-apiserver 1.34 answers for a group it does not serve: text, no Status.
    expect(explainHostError(new ApiError(404, undefined, "404 page not found", call)).message).toBe(message);
  });

  it("tells an operator that does not answer from a host that does not", () => {
    expect(
      explainHostError(new ApiError(503, "ServiceUnavailable", "service unavailable", call)).message,
    ).toMatch(/aggregated API does not answer \(service unavailable\); is the operator running\?/);
    const host = "AgentHost edge-1 did not answer: connect ECONNREFUSED (AgentHost edge-1 Reachable=False)";
    expect(explainHostError(new ApiError(503, "ServiceUnavailable", host, call)).message).toBe(
      `agenttypes/log of AgentType "edge": ${host} (transient: try again)`,
    );
  });

  it("keeps the operator's own words, and RBAC refusals as for pods", () => {
    const range = 'replica 3 out of range: AgentType "edge" has replicas 0, 1 (status.hostReplicas)';
    expect(explainHostError(new ApiError(404, "NotFound", range, call)).message).toBe(
      `agenttypes/log of AgentType "edge": ${range}`,
    );
    const said =
      'agenttypes.subresources.agenttype.dev "edge" is forbidden: User "bob" cannot create resource "agenttypes/exec" in API group "subresources.agenttype.dev" in the namespace "team-a"';
    expect(
      explainHostError(new ApiError(403, "Forbidden", said, { ...call, resource: "agenttypes/exec" }))
        .message,
    ).toMatch(/^not allowed: you cannot create agenttypes\/exec in namespace "team-a"/);
  });
});
