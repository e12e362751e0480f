// What the operator's last apply of an owned object produced, kept only while the digest of
// the cached object cannot answer "is it as we want it?" on its own: until the informer shows
// our write (a reconcile woken meanwhile would apply again), and for an object the API server
// stores differently than we built it (normalized values), which would otherwise be applied
// on every resync. Every other object needs no entry: its cached digest says it all, also
// after a restart. Entries go when the informer shows the object, when it is deleted, and
// when its AgentType goes. Pure.

export interface AppliedEntry {
  /** desiredDigest of what we applied. */
  desired: string;
  /** liveDigest of what the API server answered. */
  live: string | undefined;
  uid: string | undefined;
  resourceVersion: string | undefined;
  /** The informer has shown this write (or a later state of the object). */
  seen: boolean;
}

/** The part of a cached owned object the ledger reads. */
export interface LedgerObject {
  metadata: { uid?: string; resourceVersion?: string };
  appliedDigest?: string;
}

function notOlder(version: string | undefined, than: string | undefined): boolean {
  // resourceVersions are etcd revisions on every API server we run against; anything else
  // counts as not older, which at worst costs one more apply.
  if (version === undefined || than === undefined || !/^\d+$/.test(version) || !/^\d+$/.test(than))
    return true;
  return BigInt(version) >= BigInt(than);
}

export class ApplyLedger {
  // AgentType key (namespace/name) → owned object key (resource/name) → entry.
  private readonly byOwner = new Map<string, Map<string, AppliedEntry>>();

  /** Whether `cached` (undefined: not in the cache) needs an apply to become `desired`. */
  needsApply(owner: string, object: string, desired: string, cached: LedgerObject | undefined): boolean {
    if (cached !== undefined && cached.appliedDigest === desired) return false;
    const entry = this.byOwner.get(owner)?.get(object);
    if (entry === undefined || entry.desired !== desired) return true;
    // Our write of exactly this is on its way to the cache.
    if (!entry.seen) return false;
    // As our last apply left it: the server merely stores some value in its own form.
    return !(
      cached !== undefined &&
      cached.metadata.uid === entry.uid &&
      cached.appliedDigest === entry.live
    );
  }

  /** Records an apply and what the API server answered. */
  applied(
    owner: string,
    object: string,
    desired: string,
    answer: { metadata: { uid?: string; resourceVersion?: string } },
    live: string | undefined,
  ): void {
    let entries = this.byOwner.get(owner);
    if (entries === undefined) {
      entries = new Map();
      this.byOwner.set(owner, entries);
    }
    const { uid, resourceVersion } = answer.metadata;
    entries.set(object, { desired, live, uid, resourceVersion, seen: false });
  }

  /**
   * The informer's view of an owned object changed. Once it shows our write, an entry whose
   * answer matched what we applied is no longer needed; a deleted object keeps none.
   */
  observed(owner: string, object: string, cached: LedgerObject, deleted: boolean): void {
    const entries = this.byOwner.get(owner);
    const entry = entries?.get(object);
    // An event about another incarnation of the object (deleted and created again) says
    // nothing about our write; the deletion of that one came, or comes, as its own event.
    if (entries === undefined || entry === undefined || cached.metadata.uid !== entry.uid) return;
    if (deleted) {
      entries.delete(object);
    } else if (notOlder(cached.metadata.resourceVersion, entry.resourceVersion)) {
      entry.seen = true;
      if (entry.live === entry.desired) entries.delete(object);
    }
    if (entries.size === 0) this.byOwner.delete(owner);
  }

  /** The AgentType is gone; so is everything recorded for it. */
  forget(owner: string): void {
    this.byOwner.delete(owner);
  }

  /** Objects with an entry, for tests and for a gauge of how many the server stores differently. */
  get size(): number {
    let count = 0;
    for (const entries of this.byOwner.values()) count += entries.size;
    return count;
  }
}
