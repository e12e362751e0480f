// The KVM driver's GuestKeyStore in the cluster: the keys of an AgentType's guests in one Secret
// owned by the AgentType (`<name>-guest-keys`, garbage-collected with it), never mounted into
// any pod. Each guest's four keys are written by a field manager of that guest's own through
// server-side apply, so guests booting at once never overwrite each other's keys; removing a
// guest's keys is a JSON patch, since a key edited by hand is no longer its manager's alone.
import { createHash } from "node:crypto";
import { API_VERSION } from "../../api/common.ts";
import { bounded, type Call } from "../drivers/call.ts";
import type { GuestKeyStore, GuestKeys, GuestRef } from "../drivers/kvm/guest-keys.ts";
import { LABEL_NAME, LABEL_NAMESPACE, LABEL_UID, MANAGED_BY } from "../drivers/labels.ts";
import { isNotFound, KubeApiError, type KubeClient, type KubeObject } from "../kube/client.ts";
import { resources } from "../kube/resources.ts";

interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

const FIELDS: (keyof GuestKeys)[] = [
  "clientPrivateKey",
  "clientPublicKey",
  "hostPrivateKey",
  "hostPublicKey",
];
/** Secret data keys of a guest's keys: `<guest>.<field>` (guest names fit a data key). */
const dataKey = (guest: string, field: keyof GuestKeys) => `${guest}.${field}`;

/** The Secret of an AgentType's guest keys: its name plus a suffix, shortened by a hash when long. */
export function guestKeysSecretName(agentTypeName: string): string {
  const name = `${agentTypeName}-guest-keys`;
  if (name.length <= 253) return name;
  const hash = createHash("sha256").update(agentTypeName).digest("hex").slice(0, 10);
  return `${agentTypeName.slice(0, 253 - 22)}-${hash}-guest-keys`;
}

/** A field manager per guest, so that each guest's apply owns its keys alone. */
function fieldManager(guest: string): string {
  return `agenttype-guest-${createHash("sha256").update(guest).digest("hex").slice(0, 16)}`;
}

export class SecretGuestKeyStore implements GuestKeyStore {
  readonly #client: KubeClient;

  constructor(client: KubeClient) {
    this.#client = client;
  }

  /** The owning AgentType's namespace, name and uid from the guest's labels. */
  async #owner(guest: GuestRef, call: Call): Promise<{ namespace: string; name: string; uid: string }> {
    const namespace = guest.labels[LABEL_NAMESPACE];
    const label = guest.labels[LABEL_NAME];
    const uid = guest.labels[LABEL_UID];
    if (namespace === undefined || label === undefined || uid === undefined)
      throw new Error(`guest ${guest.name} has no AgentType labels: its keys have no owner`);
    // A name of 63 characters may be a long name's prefix and hash (labels.ts labelValue).
    if (label.length < 63) return { namespace, name: label, uid };
    const list = await bounded(call, "listing AgentTypes", (signal) =>
      this.#client.list(resources.agentType, namespace, {}, signal),
    );
    const owner = list.items.find((a) => a.metadata.uid === uid);
    if (owner === undefined) throw new Error(`the AgentType of guest ${guest.name} (uid ${uid}) is gone`);
    return { namespace, name: owner.metadata.name, uid };
  }

  async #apply(guest: GuestRef, data: Record<string, string>, call: Call): Promise<void> {
    const owner = await this.#owner(guest, call);
    const secret: SecretObject = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: guestKeysSecretName(owner.name),
        namespace: owner.namespace,
        labels: { "app.kubernetes.io/managed-by": MANAGED_BY, [LABEL_NAME]: guest.labels[LABEL_NAME] ?? "" },
        ownerReferences: [{ apiVersion: API_VERSION, kind: "AgentType", name: owner.name, uid: owner.uid }],
      },
      type: "Opaque",
      // Without data the guest's manager applies none, and what it wrote before is removed.
      ...(Object.keys(data).length > 0 ? { data } : {}),
    };
    await bounded(call, `writing the keys of guest ${guest.name}`, (signal) =>
      this.#client.apply(resources.secret, secret, fieldManager(guest.name), undefined, signal),
    );
  }

  async #secret(guest: GuestRef, call: Call): Promise<SecretObject | undefined> {
    const owner = await this.#owner(guest, call);
    try {
      return await bounded(call, `reading the keys of guest ${guest.name}`, (signal) =>
        this.#client.get<SecretObject>(
          resources.secret,
          owner.namespace,
          guestKeysSecretName(owner.name),
          signal,
        ),
      );
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async get(guest: GuestRef, call: Call): Promise<GuestKeys | undefined> {
    const secret = await this.#secret(guest, call);
    const values = FIELDS.map((f) => secret?.data?.[dataKey(guest.name, f)]);
    if (values.some((v) => v === undefined)) return undefined;
    const [clientPrivateKey, clientPublicKey, hostPrivateKey, hostPublicKey] = values.map((v) =>
      Buffer.from(v ?? "", "base64").toString("utf8"),
    ) as [string, string, string, string];
    return { clientPrivateKey, clientPublicKey, hostPrivateKey, hostPublicKey };
  }

  put(guest: GuestRef, keys: GuestKeys, call: Call): Promise<void> {
    return this.#apply(
      guest,
      Object.fromEntries(
        FIELDS.map((f) => [dataKey(guest.name, f), Buffer.from(keys[f]).toString("base64")]),
      ),
      call,
    );
  }

  /**
   * Removes the guest's keys whoever last wrote them (a key re-pinned by hand belongs to that
   * editor's field manager, which an apply of nothing would leave): a JSON patch of the keys
   * read, read again when one went meanwhile (the patch then fails whole).
   */
  async remove(guest: GuestRef, call: Call): Promise<void> {
    try {
      for (let attempt = 1; ; attempt++) {
        const secret = await this.#secret(guest, call);
        const present = FIELDS.map((f) => dataKey(guest.name, f)).filter(
          (k) => secret?.data?.[k] !== undefined,
        );
        if (secret === undefined || present.length === 0) return;
        try {
          await bounded(call, `removing the keys of guest ${guest.name}`, (signal) =>
            this.#client.jsonPatch(
              resources.secret,
              secret.metadata.namespace,
              secret.metadata.name,
              present.map((k) => ({ op: "remove" as const, path: `/data/${k.replaceAll("~", "~0")}` })),
              signal,
            ),
          );
          return;
        } catch (error) {
          // A key to remove was gone (422) or the write conflicted: read again, a few times.
          if (
            !(error instanceof KubeApiError && (error.status === 422 || error.status === 409)) ||
            attempt >= 5
          )
            throw error;
        }
      }
    } catch (error) {
      // The AgentType is gone: its Secret goes with it (garbage collection).
      if (/is gone/.test(String(error)) || isNotFound(error)) return;
      throw error;
    }
  }
}
