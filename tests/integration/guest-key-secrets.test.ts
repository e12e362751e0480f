// The KVM driver's guest keys in a Secret the AgentType owns (operator/hosts/guest-key-secrets.ts),
// against the real API server: each guest's keys are its own field manager's, and removing a
// guest's keys removes all four, even one an administrator re-pinned by hand (which server-side
// apply alone would leave behind, owned by the editor), without touching another guest's.
import { beforeAll, describe, expect } from "vitest";
import { within } from "../../operator/drivers/call.ts";
import type { GuestKeys } from "../../operator/drivers/kvm/guest-keys.ts";
import { LABEL_NAME, LABEL_NAMESPACE, LABEL_UID } from "../../operator/drivers/labels.ts";
import { guestKeysSecretName, SecretGuestKeyStore } from "../../operator/hosts/guest-key-secrets.ts";
import { loadAccess } from "../../operator/kube/access.ts";
import { KubeClient, type KubeObject } from "../../operator/kube/client.ts";
import { resources } from "../../operator/kube/resources.ts";
import { kubeconfigPath, simpleAgent, test } from "./cluster.ts";
import { installCrds } from "./crds.ts";

interface SecretObject extends KubeObject {
  data?: Record<string, string>;
}

const keysOf = (guest: string): GuestKeys => ({
  clientPrivateKey: `client private of ${guest}`,
  clientPublicKey: `client public of ${guest}`,
  hostPrivateKey: `host private of ${guest}`,
  hostPublicKey: `host public of ${guest}`,
});

beforeAll(() => installCrds(kubeconfigPath()));

describe("guest keys in the AgentType's Secret", () => {
  test("a guest's keys are removed whole, a hand-edited one too, and another guest's stay", async ({
    namespace,
  }) => {
    const client = new KubeClient(loadAccess({ KUBECONFIG: kubeconfigPath() }));
    const owner = await client.create(resources.agentType, namespace, {
      ...simpleAgent("kvm-agent"),
      metadata: { name: "kvm-agent", namespace },
    } as KubeObject);
    const labels = {
      [LABEL_NAMESPACE]: namespace,
      [LABEL_NAME]: "kvm-agent",
      [LABEL_UID]: owner.metadata.uid ?? "",
    };
    const old = { name: "kvm-agent_0_old", labels };
    const next = { name: "kvm-agent_0_new", labels };
    const store = new SecretGuestKeyStore(client);
    const call = () => within(30_000);

    expect(await store.get(old, call())).toBeUndefined();
    await store.put(old, keysOf(old.name), call());
    await store.put(next, keysOf(next.name), call());
    expect(await store.get(old, call())).toEqual(keysOf(old.name));
    expect(await store.get(next, call())).toEqual(keysOf(next.name));

    // An administrator re-pins the old guest's host key with a plain update (another manager).
    const read = () =>
      client.get<SecretObject>(resources.secret, namespace, guestKeysSecretName("kvm-agent"));
    const secret = await read();
    const repinned = Buffer.from("host public, re-pinned").toString("base64");
    await client.replace(resources.secret, {
      ...secret,
      data: { ...secret.data, [`${old.name}.hostPublicKey`]: repinned },
    } as SecretObject);
    expect((await store.get(old, call()))?.hostPublicKey).toBe("host public, re-pinned");

    await store.remove(old, call());
    const after = await read();
    expect(Object.keys(after.data ?? {}).sort()).toEqual(
      ["clientPrivateKey", "clientPublicKey", "hostPrivateKey", "hostPublicKey"].map(
        (f) => `${next.name}.${f}`,
      ),
    );
    expect(await store.get(old, call())).toBeUndefined();
    expect(await store.get(next, call())).toEqual(keysOf(next.name));
    // Removing what is gone is no error.
    await store.remove(old, call());
    expect(after.metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: "AgentType", name: "kvm-agent", uid: owner.metadata.uid }),
    ]);
  });
});
