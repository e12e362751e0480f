// What the operator's last apply of an owned object produced, kept only while the digest of
// the cached object cannot answer "is it as we want it?" on its own: until the informer shows
// our write (a reconcile woken meanwhile would apply again), and for an object the API server
// stores differently than we built it (normalized values), which would otherwise be applied
// on every resync. Every other object needs no entry: its cached digest says it all, also
// after a restart. Entries go when the informer shows the object, when it is deleted, and
// when its AgentType goes.
//
// It also tells the informer's events of our own writes apart, which wake no reconcile: the
// reconcile that applied has the answer, the same state. An event can come before the answer
// does; while an apply is in flight, the object's events are held back and judged when the
// answer comes: one newer than the answer wakes the owner then. Pure, but for that wake.
import type { KubeObject } from "../../kube/client.ts";

export interface AppliedEntry {
  /** desiredDigest of what we applied. */
  desired: string;
  /**
   * What we applied (applyContent), kept until the informer shows our write, for the log line
   * that names a field the API server stores otherwise.
   */
  built: unknown;
  /**
   * The API server's answer, kept until the informer shows it: until then it is the newest
   * state of the object the operator knows.
   */
  answer: KubeObject | undefined;
  /**
   * The digest of our write as the API server stored it: the liveDigest of the informer's
   * object at the answer's resourceVersion. Undefined until the informer shows that version.
   * Not taken from the answer itself: the informer digests every version it caches anyway,
   * and the answer would be digested twice.
   */
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

/** What the informer showed of an object while our apply of it was in flight: the newest. */
interface HeldEvent {
  uid: string | undefined;
  resourceVersion: string | undefined;
  digest: string | undefined;
  deleted: boolean;
}

/** What became of an apply once its answer came. */
export interface AppliedVerdict {
  /**
   * The digest the server stored of our write, when the informer had shown it before the
   * answer came and it differs from what we applied (the log line's case); else undefined.
   */
  storedOtherwise: string | undefined;
}

/** Whether `version` is at least `than`; undefined when either is not an etcd revision. */
function compareVersions(version: string | undefined, than: string | undefined): number | undefined {
  // resourceVersions are etcd revisions on every API server we run against; anything else
  // cannot be ordered, which at worst costs one more apply or reconcile.
  if (version === undefined || than === undefined || !/^\d+$/.test(version) || !/^\d+$/.test(than))
    return undefined;
  const a = BigInt(version);
  const b = BigInt(than);
  return a === b ? 0 : a > b ? 1 : -1;
}

export class ApplyLedger {
  // AgentType key (namespace/name) → owned object key (resource/name) → entry.
  private readonly byOwner = new Map<string, Map<string, AppliedEntry>>();
  // `${owner} ${object}` of applies in flight → the newest event held back meanwhile.
  private readonly inFlight = new Map<string, HeldEvent | undefined>();

  private readonly wake: (owner: string) => void;

  /** `wake(owner)`: an event held back during an apply showed a state newer than its answer. */
  constructor(wake: (owner: string) => void = () => {}) {
    this.wake = wake;
  }

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
      entry.live !== undefined &&
      cached.metadata.uid === entry.uid &&
      cached.appliedDigest === entry.live
    );
  }

  /** An apply is about to be sent: the object's events wait for its answer. */
  applying(owner: string, object: string): void {
    this.inFlight.set(`${owner} ${object}`, undefined);
  }

  /** The apply failed: its reconcile fails too and is retried, and reads the cache afresh. */
  applyFailed(owner: string, object: string): void {
    this.inFlight.delete(`${owner} ${object}`);
  }

  /** Records an apply's answer, and judges the events held back while it was in flight. */
  applied(
    owner: string,
    object: string,
    desired: string,
    built: unknown,
    answer: KubeObject,
  ): AppliedVerdict {
    const flightKey = `${owner} ${object}`;
    const held = this.inFlight.get(flightKey);
    this.inFlight.delete(flightKey);
    let entries = this.byOwner.get(owner);
    if (entries === undefined) {
      entries = new Map();
      this.byOwner.set(owner, entries);
    }
    const { uid, resourceVersion } = answer.metadata;
    const entry: AppliedEntry = {
      desired,
      built,
      answer,
      live: undefined,
      uid,
      resourceVersion,
      seen: false,
    };
    entries.set(object, entry);
    const verdict: AppliedVerdict = { storedOtherwise: undefined };
    if (held === undefined) return verdict;
    const order = compareVersions(held.resourceVersion, resourceVersion);
    if (held.uid !== uid || held.deleted || order === undefined || order > 0) {
      // Deleted, another incarnation, or changed after our write: the reconcile that applied
      // did not see that state.
      this.wake(owner);
      if (held.uid === uid && !held.deleted) this.#seen(owner, entries, object, entry, held.digest);
      return verdict;
    }
    if (order === 0) {
      // Our write, shown before its answer came.
      entry.live = held.digest;
      if (held.digest !== desired) verdict.storedOtherwise = held.digest;
      this.#seen(owner, entries, object, entry, held.digest);
    }
    // Older: the state before our write; the write itself is still to come.
    return verdict;
  }

  /** The answer to our last apply of the object while the informer has not shown it yet. */
  unseenAnswer(owner: string, object: string): KubeObject | undefined {
    const entry = this.byOwner.get(owner)?.get(object);
    return entry === undefined || entry.seen ? undefined : entry.answer;
  }

  /**
   * The write of ours whose answer was exactly this version of the object, when the informer
   * has not shown it yet; undefined otherwise.
   */
  unseenWrite(owner: string, object: string, cached: LedgerObject): AppliedEntry | undefined {
    const entry = this.byOwner.get(owner)?.get(object);
    if (entry === undefined || entry.seen || cached.metadata.resourceVersion === undefined) return undefined;
    const same =
      cached.metadata.uid === entry.uid && cached.metadata.resourceVersion === entry.resourceVersion;
    return same ? entry : undefined;
  }

  /**
   * The informer's view of an owned object changed. Once it shows our write, an entry is no
   * longer needed when the cached digest says it all; a deleted object keeps none. True when
   * the change needs no reconcile from its event: it is exactly the answer to our last apply,
   * which the reconcile that applied it has seen, or it came while an apply of the object was
   * in flight (judged when the answer comes).
   */
  observed(owner: string, object: string, cached: LedgerObject, deleted: boolean): boolean {
    const flightKey = `${owner} ${object}`;
    if (this.inFlight.has(flightKey)) {
      const held = this.inFlight.get(flightKey);
      const order = compareVersions(cached.metadata.resourceVersion, held?.resourceVersion);
      if (held === undefined || deleted || order === undefined || order >= 0) {
        this.inFlight.set(flightKey, {
          uid: cached.metadata.uid,
          resourceVersion: cached.metadata.resourceVersion,
          digest: cached.appliedDigest,
          deleted: deleted || (held?.deleted ?? false),
        });
      }
      return true;
    }
    const entries = this.byOwner.get(owner);
    const entry = entries?.get(object);
    // An event about another incarnation of the object (deleted and created again) says
    // nothing about our write; the deletion of that one came, or comes, as its own event.
    if (entries === undefined || entry === undefined || cached.metadata.uid !== entry.uid) return false;
    if (deleted) {
      entries.delete(object);
      if (entries.size === 0) this.byOwner.delete(owner);
      return false;
    }
    const order = compareVersions(cached.metadata.resourceVersion, entry.resourceVersion);
    if (order !== undefined && order < 0) return false;
    const ours = !entry.seen && order === 0;
    if (ours) entry.live = cached.appliedDigest;
    this.#seen(owner, entries, object, entry, cached.appliedDigest);
    return ours;
  }

  /** The informer has shown our write or a later state; the entry goes when the digest says it all. */
  #seen(
    owner: string,
    entries: Map<string, AppliedEntry>,
    object: string,
    entry: AppliedEntry,
    digest: string | undefined,
  ): void {
    entry.seen = true;
    entry.built = undefined;
    entry.answer = undefined;
    if (digest === entry.desired) entries.delete(object);
    if (entries.size === 0) this.byOwner.delete(owner);
  }

  /** The AgentType is gone; so is everything recorded for it. */
  forget(owner: string): void {
    this.byOwner.delete(owner);
    for (const flightKey of this.inFlight.keys()) {
      if (flightKey.startsWith(`${owner} `)) this.inFlight.delete(flightKey);
    }
  }

  /** Objects with an entry, for tests and for a gauge of how many the server stores differently. */
  get size(): number {
    let count = 0;
    for (const entries of this.byOwner.values()) count += entries.size;
    return count;
  }
}
