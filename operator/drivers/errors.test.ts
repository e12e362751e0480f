import { describe, expect, it } from "vitest";
import { jitteredBackoff } from "./backoff.ts";
import { bounded, remainingMs, sleep, subCall, within } from "./call.ts";
import { InvalidConfigError } from "./config.ts";
import { errorCondition } from "./error-condition.ts";
import {
  AlreadyExistsError,
  AuthenticationError,
  AuthorizationError,
  CreationFailedError,
  DriverError,
  HostKeyMismatchError,
  NetworkError,
  NotFoundError,
  ResourceLimitError,
  TimeoutError,
  UnsupportedBackendVersionError,
} from "./errors.ts";

describe("driver errors", () => {
  it("carry a code and whether retrying can help", () => {
    const cases: [DriverError, string, boolean][] = [
      [new NotFoundError("container abc"), "NotFound", false],
      [new AlreadyExistsError("group g"), "AlreadyExists", false],
      [new CreationFailedError("bad image"), "CreationFailed", false],
      [new ResourceLimitError("disk full"), "ResourceLimit", true],
      [new NetworkError("connection refused"), "Network", true],
      [new TimeoutError("exec", 100), "Timeout", true],
      [new AuthenticationError("key refused"), "Authentication", false],
      [new AuthorizationError("socket denied"), "Authorization", false],
      [new HostKeyMismatchError("h:22", "SHA256:a", "SHA256:b"), "HostKeyMismatch", false],
      [
        new UnsupportedBackendVersionError("containerd", "1.5.0", ">= 1.6"),
        "UnsupportedBackendVersion",
        false,
      ],
    ];
    for (const [err, code, retryable] of cases) {
      expect(err).toBeInstanceOf(DriverError);
      expect(err).toBeInstanceOf(Error);
      expect([err.code, err.retryable]).toEqual([code, retryable]);
      expect(err.name).toBe(`${code}Error`);
    }
    expect(new CreationFailedError("pull failed", { retryable: true }).retryable).toBe(true);
    expect(new NotFoundError("container abc").message).toBe("container abc not found");
  });
});

describe("errorCondition", () => {
  it("names both fingerprints of a host key mismatch and comes back slowly", () => {
    const c = errorCondition(new HostKeyMismatchError("10.0.0.1:22", "SHA256:expected", "SHA256:presented"));
    expect(c.reason).toBe("HostKeyMismatch");
    expect(c.message).toContain("SHA256:expected");
    expect(c.message).toContain("SHA256:presented");
    expect(c.retryable).toBe(false);
    expect(c.requeueAfterMs).toBe(300_000);
  });

  it("maps each code to its own reason", () => {
    const reasons = [
      new NotFoundError("x"),
      new AlreadyExistsError("x"),
      new CreationFailedError("x"),
      new ResourceLimitError("x"),
      new NetworkError("x"),
      new TimeoutError("x", 1),
      new AuthenticationError("x"),
      new AuthorizationError("x"),
      new HostKeyMismatchError("h", "a", "b"),
      new UnsupportedBackendVersionError("b", "1", "2"),
    ].map((e) => errorCondition(e).reason);
    expect(reasons).toEqual([
      "NotFound",
      "AlreadyExists",
      "CreationFailed",
      "ResourceLimit",
      "HostUnreachable",
      "Timeout",
      "AuthenticationFailed",
      "Forbidden",
      "HostKeyMismatch",
      "UnsupportedVersion",
    ]);
  });

  it("retries transient failures sooner than ones an admin must fix", () => {
    const network = errorCondition(new NetworkError("refused"));
    const auth = errorCondition(new AuthenticationError("denied"));
    expect(network.retryable).toBe(true);
    expect(network.requeueAfterMs).toBeLessThan(auth.requeueAfterMs);
    expect(errorCondition(new CreationFailedError("pull", { retryable: true })).requeueAfterMs).toBe(30_000);
  });

  it("reports bad input and unforeseen errors with their message", () => {
    expect(errorCondition(new InvalidConfigError("group", "name: required"))).toMatchObject({
      reason: "InvalidConfig",
      retryable: false,
    });
    const other = errorCondition(new Error("boom"));
    expect(other).toEqual({
      reason: "DriverFailed",
      message: "boom",
      retryable: true,
      requeueAfterMs: 30_000,
    });
    expect(errorCondition("x".repeat(5000)).message.length).toBe(1024);
  });
});

describe("jitteredBackoff", () => {
  const policy = { initialMs: 100, maxMs: 2000 };
  it("doubles per attempt within the upper half, capped", () => {
    expect(jitteredBackoff(1, policy, 0)).toBe(50);
    expect(jitteredBackoff(1, policy, 0.999999)).toBe(100);
    expect(jitteredBackoff(3, policy, 0)).toBe(200);
    expect(jitteredBackoff(3, policy, 0.5)).toBe(300);
    expect(jitteredBackoff(10, policy, 0)).toBe(1000);
    expect(jitteredBackoff(10, policy, 1)).toBe(2000);
  });
});

describe("calls", () => {
  it("turns a passed deadline into a TimeoutError naming the work", async () => {
    const call = within(30);
    const err = await bounded(call, "exec sleep", () => new Promise(() => {})).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toMatch(/^exec sleep did not finish within \d+ ms$/);
  });

  it("rejects with the caller's reason on abort, and passes results and errors through", async () => {
    const controller = new AbortController();
    const pending = bounded(within(10_000, controller.signal), "x", () => new Promise(() => {}));
    controller.abort(new Error("shutting down"));
    await expect(pending).rejects.toThrow("shutting down");
    await expect(bounded(within(1000), "x", async () => 7)).resolves.toBe(7);
    await expect(bounded(within(1000), "x", async () => Promise.reject(new Error("no")))).rejects.toThrow(
      "no",
    );
  });

  it("gives parts of a call no more time than the whole", () => {
    const call = within(1000);
    expect(subCall(call, 10_000).deadline).toBe(call.deadline);
    expect(remainingMs(subCall(call, 10))).toBeLessThanOrEqual(10);
    expect(remainingMs({ signal: call.signal, deadline: 0 })).toBe(0);
  });

  it("sleeps until aborted", async () => {
    const controller = new AbortController();
    const s = sleep(10_000, controller.signal);
    controller.abort(new Error("stop"));
    await expect(s).rejects.toThrow("stop");
  });
});
