import pino from "pino";
import { describe, expect, it } from "vitest";
import type { KubeClient, KubeObject, ResourceType } from "../kube/client.ts";
import { resources } from "../kube/resources.ts";
import type { InformerExtras } from "./controller-context.ts";
import { InformerGroup } from "./informer.ts";
import { SharedInformers } from "./shared-informers.ts";

// Informers made but never run: nothing here talks to an API server.
const client = {} as KubeClient;

function registry() {
  const made: string[] = [];
  const shared = new SharedInformers(
    <T extends KubeObject>(type: ResourceType, extras: InformerExtras<T>) => {
      made.push(`${type.plural}?${extras.labelSelector ?? ""}`);
      return new InformerGroup<T>(
        {
          client,
          type,
          resyncMs: 60_000,
          watchTimeoutSeconds: 60,
          silenceMs: 120_000,
          retryBaseMs: 200,
          retryMaxMs: 30_000,
          logger: pino({ level: "silent" }),
          ...extras,
        },
        [],
      );
    },
  );
  return { shared, made };
}

describe("SharedInformers", () => {
  it("makes one informer per kind and label selector, whoever asks", () => {
    const { shared, made } = registry();
    const first = shared.informer(resources.agentType);
    const second = shared.informer(resources.agentType);
    const selected = shared.informer(resources.deployment, { labelSelector: "a=b" });
    const other = shared.informer(resources.deployment, { labelSelector: "a=c" });
    expect(second).toBe(first);
    expect(other).not.toBe(selected);
    expect(made).toEqual(["agenttypes?", "deployments?a=b", "deployments?a=c"]);
    expect(shared.all()).toHaveLength(3);
  });

  it("gives the one informer the indexes of every asker, and refuses one name twice", () => {
    const { shared } = registry();
    const byHost = () => ["h"];
    shared.informer(resources.agentType, { indexers: { tools: () => ["t"] } });
    const informer = shared.informer(resources.agentType, { indexers: { host: byHost } });
    // Both askers' indexes are on the one informer: a third naming either is refused.
    expect(() => informer.addIndexers({ host: byHost })).toThrow(
      "informer of agenttypes: a second index named host",
    );
    expect(() => informer.addIndexers({ tools: () => [] })).toThrow("a second index named tools");
  });

  it("refuses a second asker that would keep other fields of the objects", () => {
    const { shared } = registry();
    shared.informer(resources.agentType);
    expect(() => shared.informer(resources.agentType, { transform: (o) => o })).toThrow(
      "the informer of agenttypes is shared: a second asker cannot keep other fields (transform) in its cache",
    );
    const trim = (o: KubeObject) => o;
    shared.informer(resources.pod, { labelSelector: "x", transform: trim });
    expect(shared.informer(resources.pod, { labelSelector: "x", transform: trim })).toBeDefined();
  });
});
