import { describe, expect, it } from "vitest";
import type { SidecarStatus } from "../../../api/sidecarstatus.ts";
import { trimPod } from "./pods-status.ts";
import {
  modelsVerdict,
  providersVerdict,
  READ_INTERVAL_MS,
  ReadMemo,
  troubledSidecar,
} from "./providers-status.ts";

const sidecar = (ready: boolean, running = true) => ({
  name: "agenttype-sidecar",
  ready,
  restartCount: 0,
  state: running
    ? { running: { startedAt: "2026-01-01T00:00:00Z" } }
    : { waiting: { reason: "CrashLoopBackOff" } },
});

function pod(name: string, container: object, extra: { podIP?: string; deletionTimestamp?: string } = {}) {
  return trimPod({
    metadata: {
      name,
      namespace: "ns",
      ...(extra.deletionTimestamp === undefined ? {} : { deletionTimestamp: extra.deletionTimestamp }),
    },
    status: {
      phase: "Running",
      ...(extra.podIP === undefined ? {} : { podIP: extra.podIP }),
      initContainerStatuses: [container],
      containerStatuses: [{ name: "agent", ready: true, restartCount: 0, state: { running: {} } }],
    },
  } as Parameters<typeof trimPod>[0]);
}

const failing: SidecarStatus = {
  agent: { name: "a", namespace: "ns" },
  ready: false,
  providers: [
    {
      name: "local",
      type: "ollama",
      where: "http://10.96.0.5:11434",
      model: "llama3.2",
      state: "unreachable",
      since: "2026-01-01T00:00:00.000Z",
      consecutiveFailures: 3,
      lastError: { errorClass: "connection", message: "connect ECONNREFUSED 10.96.0.5:11434", at: "x" },
    },
    {
      name: "cloud",
      type: "bedrock",
      where: "region us-east-1",
      model: "claude",
      state: "unauthorized",
      consecutiveFailures: 1,
      lastError: { errorClass: "auth", message: "UnrecognizedClientException", at: "x" },
    },
  ],
};

describe("troubledSidecar", () => {
  it("picks the first pod by name whose sidecar runs but is not ready, with its address", () => {
    const pods = [
      pod("a-2", sidecar(false), { podIP: "10.0.0.2" }),
      pod("a-1", sidecar(false), { podIP: "10.0.0.1" }),
      pod("a-0", sidecar(true), { podIP: "10.0.0.3" }),
    ];
    expect(troubledSidecar(pods)).toEqual({ pod: "a-1", ip: "10.0.0.1" });
  });

  it("asks no pod whose sidecars are ready, waiting, addressless or being deleted", () => {
    expect(troubledSidecar([pod("a", sidecar(true), { podIP: "10.0.0.1" })])).toBeUndefined();
    expect(troubledSidecar([pod("a", sidecar(false, false), { podIP: "10.0.0.1" })])).toBeUndefined();
    expect(troubledSidecar([pod("a", sidecar(false))])).toBeUndefined();
    expect(
      troubledSidecar([
        pod("a", sidecar(false), { podIP: "10.0.0.1", deletionTimestamp: "2026-01-01T00:00:00Z" }),
      ]),
    ).toBeUndefined();
    expect(troubledSidecar([])).toBeUndefined();
  });
});

describe("providersVerdict", () => {
  it("is True with no read while no sidecar reports trouble", () => {
    expect(providersVerdict({ sidecarsReady: true })).toMatchObject({
      status: "True",
      reason: "SidecarsReady",
    });
  });

  it("is False naming every failing provider, its state and last error; the reason is the first one's", () => {
    const verdict = providersVerdict({ sidecarsReady: false, read: { pod: "a-1", at: 0, status: failing } });
    expect(verdict.status).toBe("False");
    expect(verdict.reason).toBe("ProviderUnreachable");
    expect(verdict.message).toBe(
      "pod a-1: every LLM provider is failing: provider local (ollama http://10.96.0.5:11434, model llama3.2): unreachable since 2026-01-01T00:00:00.000Z: connect ECONNREFUSED 10.96.0.5:11434; provider cloud (bedrock region us-east-1, model claude): unauthorized: UnrecognizedClientException",
    );
  });

  it("has a reason for each failing state", () => {
    const reasonFor = (state: SidecarStatus["providers"][number]["state"]) =>
      providersVerdict({
        sidecarsReady: false,
        read: {
          pod: "p",
          at: 0,
          status: {
            ...failing,
            providers: [{ ...(failing.providers[0] as SidecarStatus["providers"][number]), state }],
          },
        },
      }).reason;
    expect(
      ["unreachable", "timeout", "unauthorized", "model-missing", "unavailable"].map((s) =>
        reasonFor(s as never),
      ),
    ).toEqual([
      "ProviderUnreachable",
      "ProviderTimeout",
      "ProviderUnauthorized",
      "ModelMissing",
      "ProviderUnavailable",
    ]);
  });

  it("is Unknown when the sidecar cannot be read, and True when it says a provider still serves", () => {
    expect(
      providersVerdict({ sidecarsReady: false, read: { pod: "p", at: 0, error: "no answer within 2 s" } }),
    ).toEqual({
      status: "Unknown",
      reason: "StatusUnreadable",
      message: "pod p: the sidecar is not ready and its /status could not be read: no answer within 2 s",
    });
    expect(
      providersVerdict({
        sidecarsReady: false,
        read: { pod: "p", at: 0, status: { ...failing, ready: true } },
      }),
    ).toMatchObject({ status: "True", reason: "ProvidersAnswering" });
  });
});

describe("modelsVerdict", () => {
  type Lifecycle = NonNullable<SidecarStatus["providers"][number]["modelLifecycle"]>;
  const withModels = (...lifecycles: Partial<Lifecycle>[]) => ({
    sidecarsReady: false as const,
    read: {
      pod: "a-1",
      at: 0,
      status: {
        agent: { name: "a", namespace: "ns" },
        ready: false,
        providers: lifecycles.map((l, i) => ({
          name: `p${i}`,
          type: "ollama",
          where: "http://10.96.0.5:11434",
          model: `m${i}`,
          state: "unknown" as const,
          consecutiveFailures: 0,
          modelLifecycle: {
            phase: "ready" as const,
            pull: "IfNotPresent" as const,
            message: "m is on the server",
            since: "t",
            failures: 0,
            ...l,
          },
        })),
      },
    },
  });

  it("is True with no read while the sidecars are ready: a ready sidecar has every model", () => {
    expect(modelsVerdict({ sidecarsReady: true })).toMatchObject({ status: "True", reason: "SidecarsReady" });
  });

  it("is False naming the model and Ollama's error when a pull failed", () => {
    const verdict = modelsVerdict(
      withModels(
        {},
        {
          phase: "failed",
          message: "cannot pull m1 into http://10.96.0.5:11434: pull model manifest: file does not exist",
        },
      ),
    );
    expect(verdict).toEqual({
      status: "False",
      reason: "ModelPullFailed",
      message:
        "pod a-1: provider p1 (ollama http://10.96.0.5:11434), model m1: cannot pull m1 into http://10.96.0.5:11434: pull model manifest: file does not exist",
    });
  });

  it("says ModelNotPresent for a missing model under pull: Never, and ModelsPulling with the progress", () => {
    expect(
      modelsVerdict(withModels({ phase: "failed", pull: "Never", message: "m0 is not on …" })).reason,
    ).toBe("ModelNotPresent");
    const pulling = modelsVerdict(
      withModels({ phase: "pulling", message: "pulling m0: pulling abc: 45 % of 2.0 GB" }),
    );
    expect(pulling).toMatchObject({
      status: "False",
      reason: "ModelsPulling",
      message:
        "pod a-1: provider p0 (ollama http://10.96.0.5:11434), model m0: pulling m0: pulling abc: 45 % of 2.0 GB",
    });
  });

  it("is Unknown when the Ollama server cannot be reached: whether the model is there is not known", () => {
    expect(
      modelsVerdict(withModels({ phase: "unreachable", message: "cannot list … ECONNREFUSED" })),
    ).toMatchObject({
      status: "Unknown",
      reason: "ModelServerUnreachable",
    });
  });

  it("is True when the not-ready sidecar has every model, and Unknown when it cannot be read", () => {
    expect(modelsVerdict(withModels({}, {}))).toMatchObject({ status: "True", reason: "ModelsPresent" });
    expect(
      modelsVerdict({ sidecarsReady: false, read: { pod: "a-1", at: 0, error: "timeout" } }),
    ).toMatchObject({
      status: "Unknown",
      reason: "StatusUnreadable",
    });
  });
});

describe("ReadMemo", () => {
  it("holds a read for the interval, keeps the last one after it, and forgets on request", () => {
    const memo = new ReadMemo();
    const read = { pod: "p", at: 1000, error: "x" };
    memo.remember("ns/a", read);
    expect(memo.fresh("ns/a", 1000 + READ_INTERVAL_MS - 1)).toBe(read);
    expect(memo.fresh("ns/a", 1000 + READ_INTERVAL_MS)).toBeUndefined();
    expect(memo.last("ns/a")).toBe(read);
    memo.forget("ns/a");
    expect(memo.last("ns/a")).toBeUndefined();
    expect(memo.size).toBe(0);
  });
});
