// Events as the operator records them, against the real API server: a repeated event is one
// Event whose count and lastTimestamp grow (client-go's recorder does the same), not one more
// Event each time.
import { CoreV1Api, type CoreV1Event } from "@kubernetes/client-node";
import { pino } from "pino";
import { describe, expect } from "vitest";
import { loadAccess } from "../../operator/kube/access.ts";
import { KubeClient, type KubeObject } from "../../operator/kube/client.ts";
import { EventRecorder } from "../../operator/kube/events.ts";
import { kubeconfigPath, test } from "./cluster.ts";

/** A recorder as the operator makes it, and what it logged. */
function recorder(options: { windowMs?: number } = {}) {
  const logged: string[] = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => logged.push(line) });
  const client = new KubeClient(loadAccess({ KUBECONFIG: kubeconfigPath() }));
  return { events: new EventRecorder(client, "agenttype-operator", logger, options), logged };
}

/** A real object to record events on. */
async function involved(core: CoreV1Api, namespace: string, name: string): Promise<KubeObject> {
  const created = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name } } });
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name,
      namespace,
      uid: created.metadata?.uid,
      resourceVersion: created.metadata?.resourceVersion,
    },
  };
}

async function eventsOn(core: CoreV1Api, namespace: string, name: string): Promise<CoreV1Event[]> {
  const list = await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
  return list.items.sort((a, b) => (a.message ?? "").localeCompare(b.message ?? ""));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("Events", () => {
  test("an event repeated N times is one Event with count N and a later lastTimestamp", async ({
    kc,
    namespace,
  }) => {
    const core = kc.makeApiClient(CoreV1Api);
    const object = await involved(core, namespace, "repeated");
    const { events, logged } = recorder();
    for (let i = 0; i < 5; i++) {
      await events.record(object, "Warning", "ApplyFailed", "the API server rejected it");
      if (i === 0) await sleep(1100); // timestamps have a resolution of one second
    }
    // Another message is another Event.
    await events.record(object, "Warning", "ApplyFailed", "something else");
    const recorded = await eventsOn(core, namespace, "repeated");
    expect(recorded.map((e) => [e.message, e.count, e.type, e.reason])).toEqual([
      ["something else", 1, "Warning", "ApplyFailed"],
      ["the API server rejected it", 5, "Warning", "ApplyFailed"],
    ]);
    const [, repeated] = recorded;
    expect(repeated?.involvedObject.uid).toBe(object.metadata.uid);
    expect(repeated?.source?.component).toBe("agenttype-operator");
    expect(new Date(repeated?.lastTimestamp ?? 0).getTime()).toBeGreaterThan(
      new Date(repeated?.firstTimestamp ?? 0).getTime(),
    );
    expect(logged).toEqual([]);
  });

  test("concurrent repeats count each one; the create comes first", async ({ kc, namespace }) => {
    const core = kc.makeApiClient(CoreV1Api);
    const object = await involved(core, namespace, "concurrent");
    const { events, logged } = recorder();
    await Promise.all(
      Array.from({ length: 10 }, () => events.record(object, "Normal", "Created", "created Deployment x")),
    );
    expect((await eventsOn(core, namespace, "concurrent")).map((e) => e.count)).toEqual([10]);
    expect(logged).toEqual([]);
  });

  test("after the window, or once the Event expired on the server, the event is recorded again", async ({
    kc,
    namespace,
  }) => {
    const core = kc.makeApiClient(CoreV1Api);
    const object = await involved(core, namespace, "windowed");
    const short = recorder({ windowMs: 0 });
    await short.events.record(object, "Normal", "Ready", "ready");
    await sleep(5);
    await short.events.record(object, "Normal", "Ready", "ready");
    expect((await eventsOn(core, namespace, "windowed")).map((e) => e.count)).toEqual([1, 1]);

    const other = await involved(core, namespace, "expired");
    const { events, logged } = recorder();
    await events.record(other, "Normal", "Ready", "ready");
    const [first] = await eventsOn(core, namespace, "expired");
    await core.deleteNamespacedEvent({ namespace, name: first?.metadata?.name ?? "" });
    await events.record(other, "Normal", "Ready", "ready");
    const again = await eventsOn(core, namespace, "expired");
    expect(again.map((e) => [e.metadata?.name, e.count, e.involvedObject.uid])).toEqual([
      [first?.metadata?.name, 2, other.metadata.uid],
    ]);
    expect(logged.concat(short.logged)).toEqual([]);
  });
});
