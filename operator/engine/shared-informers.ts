// One informer per kind and label selector, whichever controllers ask for it: each watch costs
// the API server an event stream and the operator a JSON parse of every event, and the
// AgentType, AgentHost and AgentTool controllers ask for the same kinds. Handlers and indexes
// of every asker go on the one informer; a transform (what the cache keeps) must be the same
// for all, since they read the same cached objects.
import type { KubeObject, ResourceType } from "../kube/client.ts";
import type { InformerExtras } from "./controller-context.ts";
import type { InformerGroup } from "./informer.ts";

interface Entry {
  group: InformerGroup<KubeObject>;
  transform: unknown;
}

export class SharedInformers {
  readonly #entries = new Map<string, Entry>();
  readonly #make: <T extends KubeObject>(type: ResourceType, extras: InformerExtras<T>) => InformerGroup<T>;

  /** `make`: a new informer group, for the first asker of a kind and selector. */
  constructor(
    make: <T extends KubeObject>(type: ResourceType, extras: InformerExtras<T>) => InformerGroup<T>,
  ) {
    this.#make = make;
  }

  /** The informer of `type` with `extras.labelSelector`, made on the first call, shared after. */
  informer<T extends KubeObject>(type: ResourceType, extras: InformerExtras<T> = {}): InformerGroup<T> {
    const key = `${type.group}/${type.version}/${type.plural}?${extras.labelSelector ?? ""}`;
    const entry = this.#entries.get(key);
    if (entry === undefined) {
      const group = this.#make(type, extras);
      this.#entries.set(key, {
        group: group as unknown as InformerGroup<KubeObject>,
        transform: extras.transform,
      });
      return group;
    }
    if (entry.transform !== extras.transform)
      throw new Error(
        `the informer of ${type.plural}${extras.labelSelector === undefined ? "" : ` (${extras.labelSelector})`} is shared: a second asker cannot keep other fields (transform) in its cache`,
      );
    const group = entry.group as unknown as InformerGroup<T>;
    group.addIndexers(extras.indexers ?? {});
    return group;
  }

  /** Every informer made, once each: to run and to await. */
  all(): InformerGroup<KubeObject>[] {
    return [...this.#entries.values()].map((e) => e.group);
  }
}
