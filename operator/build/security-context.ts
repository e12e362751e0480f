// The security contexts of an agent pod: the agent container's (its security.profile filled in
// where the user set nothing, the user's value always winning) and the pod's; and the fixed,
// restricted one of the containers we ship. Pure. Why restricted is the default:
// docs/adr/0009-agent-security-profile.md.
import type { V1PodSecurityContext, V1SecurityContext } from "@kubernetes/client-node";
import type { AgentTypeSpec } from "../../api/agenttype.ts";

// A uid no base image uses, so our containers never share an identity with the agent's.
export const OUR_UID = 65532;

/** The restricted Pod Security profile, for the containers we ship. */
export const RESTRICTED: V1SecurityContext = {
  runAsNonRoot: true,
  runAsUser: OUR_UID,
  runAsGroup: OUR_UID,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
};

/**
 * What each profile sets on the agent container. Neither sets a uid: the image's USER is the
 * agent's identity, and restricted only makes the kubelet refuse one that is root.
 */
const PROFILES: Record<AgentTypeSpec["security"]["profile"], V1SecurityContext> = {
  restricted: {
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  },
  baseline: {
    allowPrivilegeEscalation: false,
    seccompProfile: { type: "RuntimeDefault" },
  },
  none: {},
};

type Field = keyof V1SecurityContext;

/**
 * The agent container's security context: the user's fields as written, and the profile's
 * fields the user set neither on the container nor on the pod (where a pod value reaches the
 * container through the kubelet). A field is replaced whole: capabilities given by the user
 * replace the profile's drop of ALL.
 */
export function agentSecurityContext(spec: AgentTypeSpec): V1SecurityContext | undefined {
  const user = (spec.securityContext ?? {}) as V1SecurityContext;
  const pod = (spec.podSecurityContext ?? {}) as V1PodSecurityContext;
  const filled = Object.entries(PROFILES[spec.security.profile]).filter(
    ([field]) => user[field as Field] === undefined && pod[field as keyof V1PodSecurityContext] === undefined,
  );
  const context = { ...Object.fromEntries(filled), ...user };
  return Object.keys(context).length === 0 ? undefined : context;
}

/**
 * The pod's security context: fsGroup 65532, which lets the sidecar write the memory volume
 * whatever the volume's owner, unless the user chose a group (the sidecar, a member of every
 * fsGroup as each container is, writes it then too); the user's other fields as written.
 */
export function agentPodSecurityContext(spec: AgentTypeSpec): V1PodSecurityContext {
  return { fsGroup: OUR_UID, ...(spec.podSecurityContext as V1PodSecurityContext | undefined) };
}
