import { describe, expect, it } from "vitest";
import { Redactor } from "../redact.ts";
import {
  classifyBedrockException,
  classifyHttpStatus,
  classifyTransportError,
  isRetryable,
  ProviderError,
  RateLimitedError,
} from "./errors.ts";
import { describeFailure } from "./failure.ts";

const redact = new Redactor(["provider-token-123"]);

describe("error classification", () => {
  it("retries throttling, 5xx, timeouts and connection errors, never client errors", () => {
    expect([429, 500, 502, 503, 504, 408].map(classifyHttpStatus).map(isRetryable)).toEqual([
      true,
      true,
      true,
      true,
      true,
      true,
    ]);
    expect([400, 401, 403, 404, 422].map(classifyHttpStatus).map(isRetryable)).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
  });

  it("knows Bedrock's exceptions by name", () => {
    expect(classifyBedrockException("ModelNotReadyException", 429)).toBe("unavailable");
    expect(classifyBedrockException("ServiceUnavailableException", 503)).toBe("unavailable");
    expect(classifyBedrockException("ThrottlingException", 429)).toBe("throttled");
    expect(classifyBedrockException("ValidationException", 400)).toBe("invalid_request");
    expect(classifyBedrockException("AccessDeniedException", 403)).toBe("auth");
    expect(classifyBedrockException("SomethingNew", 502)).toBe("unavailable");
  });

  it("finds connection errors in an error's causes", () => {
    expect(classifyTransportError(new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } }))).toBe(
      "connection",
    );
    expect(classifyTransportError(new Error("plain"))).toBeUndefined();
  });
});

describe("describeFailure", () => {
  it("tells the agent when to come back after a rate limit", () => {
    expect(describeFailure(new RateLimitedError("agent", 1500, "budget used up"), redact)).toMatchObject({
      status: 429,
      retryAfterSeconds: 2,
    });
  });

  it("maps provider failures to statuses the client libraries treat right", () => {
    const status = (c: ConstructorParameters<typeof ProviderError>[1]) =>
      describeFailure(new ProviderError("p", c, "m"), redact).status;
    expect(status("invalid_request")).toBe(400);
    expect(status("throttled")).toBe(429);
    expect(status("auth")).toBe(502);
    expect(status("timeout")).toBe(504);
    expect(status("connection")).toBe(503);
  });

  it("strips the credentials the sidecar holds from what the provider said", () => {
    const failure = describeFailure(
      new ProviderError("p", "auth", 'provider "p" answered 401: bad token provider-token-123'),
      redact,
    );
    expect(failure.message).toContain("bad token [redacted]");
    expect(failure.message).not.toContain("provider-token-123");
  });
});
