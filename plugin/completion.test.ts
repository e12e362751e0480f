import { describe, expect, it } from "vitest";
import { complete, completionAnswer } from "./completion.ts";

const names = async (namespace: string | undefined) =>
  namespace === "other" ? ["far"] : ["coder", "critic"];

describe("complete", () => {
  it.each([
    [[""], ["list", "describe", "logs", "attach", "exec", "completion", "help"]],
    [["l"], ["list", "logs"]],
    [
      ["logs", "c"],
      ["coder", "critic"],
    ],
    [["-n", "other", "attach", ""], ["far"]],
    [
      ["logs", "coder", "-c", ""],
      ["agent", "sidecar"],
    ],
    [["list", "-o", "y"], ["yaml"]],
    [["logs", "coder", "--f"], ["--follow"]],
    [["logs", "coder", "--replica", ""], []],
    [["exec", "coder", "--", "s"], []],
    [
      ["completion", ""],
      ["bash", "zsh"],
    ],
  ])("after %j offers %j", async (words, expected) => {
    expect(await complete(words, names)).toEqual(expected);
  });

  it("answers as cobra does, ending with the no-file directive", () => {
    expect(completionAnswer(["a", "b"])).toBe("a\nb\n:4");
  });
});
