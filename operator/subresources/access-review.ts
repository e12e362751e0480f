// The second check of every request to the aggregated API: the aggregator has authorized the
// HTTP verb already; a SubjectAccessReview asks RBAC again for the verb the action means
// (`create` for attach and exec, as kube-apiserver asks for pods/exec), before any SSH channel
// opens.
import type { KubeClient, KubeObject } from "../kube/client.ts";
import { resources } from "../kube/resources.ts";
import type { RemoteUser } from "./front-proxy.ts";

export const SUBRESOURCE_GROUP = "subresources.agenttype.dev";

export interface AccessRequest {
  verb: "get" | "create";
  subresource: string;
  namespace: string;
  name: string;
}

interface Review extends KubeObject {
  status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string };
}

/** Whether RBAC lets `user` do `request`; `reason` is the authorizer's when it says no. */
export async function reviewAccess(
  client: KubeClient,
  user: RemoteUser,
  request: AccessRequest,
  signal: AbortSignal,
): Promise<{ allowed: boolean; reason?: string }> {
  const review = await client.create<Review>(
    resources.subjectAccessReview,
    undefined,
    {
      apiVersion: "authorization.k8s.io/v1",
      kind: "SubjectAccessReview",
      metadata: { name: "" },
      spec: {
        user: user.username,
        groups: user.groups,
        extra: user.extra,
        resourceAttributes: {
          group: SUBRESOURCE_GROUP,
          resource: "agenttypes",
          subresource: request.subresource,
          verb: request.verb,
          namespace: request.namespace,
          name: request.name,
        },
      },
    } as KubeObject,
    signal,
  );
  const status = review.status ?? {};
  return status.allowed === true
    ? { allowed: true }
    : { allowed: false, ...(status.reason ? { reason: status.reason } : {}) };
}
