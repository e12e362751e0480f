import { describe, expect, it } from "vitest";
import { Redactor } from "./redact.ts";

const TOKEN = "tok_9f8e7d6c5b4a/+=x";
const redactor = new Redactor([TOKEN, "AKIDTESTKEY", "abc"]);

describe("Redactor", () => {
  it("removes a secret raw, URL-encoded and JSON-escaped", () => {
    for (const form of [
      TOKEN,
      encodeURIComponent(TOKEN),
      JSON.stringify(TOKEN).slice(1, -1),
      "tok_9f8e7d6c5b4a\\/+=x",
    ]) {
      const out = redactor.text(`upstream said: Authorization: Bearer ${form} (denied)`);
      expect(out).toBe("upstream said: Authorization: Bearer [redacted] (denied)");
    }
  });

  it("removes a secret base64-encoded inside a longer text at every alignment, both alphabets", () => {
    for (const prefix of ["", "B", "Be", "Bearer ", "Basic user:"]) {
      const encoded = Buffer.from(`${prefix}${TOKEN} trailing`).toString("base64");
      const out = redactor.text(`header was ${encoded}`);
      expect(
        Buffer.from(out.replace("header was ", "").replace("[redacted]", ""), "base64").toString(),
      ).not.toContain(TOKEN);
      expect(out).toContain("[redacted]");
      const url = Buffer.from(`${prefix}${TOKEN}`).toString("base64url");
      expect(redactor.text(url)).toContain("[redacted]");
    }
  });

  it("removes SigV4 authorization values and leaves short values and other text alone", () => {
    const sig =
      "AWS4-HMAC-SHA256 Credential=AKIDTESTKEY/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=0123abcd";
    expect(redactor.text(`bad: ${sig}.`)).toBe("bad: [redacted].");
    expect(redactor.text("abc is fine")).toBe("abc is fine");
  });

  it("redacts every string of a JSON value, keys included", () => {
    expect(redactor.value({ error: { message: `got ${TOKEN}`, [TOKEN]: [1, `x${TOKEN}`] } })).toEqual({
      error: { message: "got [redacted]", "[redacted]": [1, "x[redacted]"] },
    });
  });
});
