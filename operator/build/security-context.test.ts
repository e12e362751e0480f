import { describe, expect, it } from "vitest";
import { agentType } from "../../api/agenttype.ts";
import { loadSample } from "../../tests/fixtures/manifests.ts";
import { agentPodSecurityContext, agentSecurityContext } from "./security-context.ts";

function specWith(fields: Record<string, unknown>) {
  const manifest = loadSample("agenttype_python-summarizer.yaml");
  Object.assign(manifest.spec, fields);
  return agentType.parse(manifest).spec;
}

describe("the agent container's security context", () => {
  it("is the restricted profile by default, without choosing a uid", () => {
    expect(agentSecurityContext(specWith({}))).toEqual({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
  });

  it("baseline lets an image run as root; none sets nothing at all", () => {
    expect(agentSecurityContext(specWith({ security: { profile: "baseline" } }))).toEqual({
      allowPrivilegeEscalation: false,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(agentSecurityContext(specWith({ security: { profile: "none" } }))).toBeUndefined();
  });

  it("keeps every field the user set, whole, and fills in only the others", () => {
    const context = agentSecurityContext(
      specWith({
        securityContext: {
          runAsUser: 4242,
          readOnlyRootFilesystem: true,
          capabilities: { add: ["NET_BIND_SERVICE"], drop: ["ALL"] },
          seccompProfile: { type: "Localhost", localhostProfile: "profiles/agent.json" },
        },
      }),
    );
    expect(context).toEqual({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      runAsUser: 4242,
      readOnlyRootFilesystem: true,
      capabilities: { add: ["NET_BIND_SERVICE"], drop: ["ALL"] },
      seccompProfile: { type: "Localhost", localhostProfile: "profiles/agent.json" },
    });
  });

  it("leaves to the pod what the user set on the pod: the kubelet applies it to the agent", () => {
    const spec = specWith({
      podSecurityContext: { runAsNonRoot: false, seccompProfile: { type: "Unconfined" } },
    });
    expect(agentSecurityContext(spec)).toEqual({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    expect(agentPodSecurityContext(spec)).toEqual({
      fsGroup: 65532,
      runAsNonRoot: false,
      seccompProfile: { type: "Unconfined" },
    });
  });

  it("the pod's fsGroup is 65532 unless the user chose one", () => {
    expect(agentPodSecurityContext(specWith({}))).toEqual({ fsGroup: 65532 });
    expect(agentPodSecurityContext(specWith({ podSecurityContext: { fsGroup: 2000 } }))).toEqual({
      fsGroup: 2000,
    });
  });
});
