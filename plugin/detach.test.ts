import { describe, expect, it } from "vitest";
import { DetachFilter } from "./detach.ts";

async function typed(chunks: number[][]): Promise<{ passed: number[]; detached: boolean }> {
  let detached = false;
  const filter = new DetachFilter(() => {
    detached = true;
  });
  const passed: number[] = [];
  filter.on("data", (b: Buffer) => passed.push(...b));
  for (const c of chunks) filter.write(Buffer.from(c));
  filter.end();
  await new Promise((resolve) => filter.on("finish", resolve));
  return { passed, detached };
}

describe("DetachFilter", () => {
  it("passes keys through, and detaches at Ctrl-P Ctrl-Q without sending them", async () => {
    expect(await typed([[0x61, 0x62, 0x10, 0x11, 0x63]])).toEqual({ passed: [0x61, 0x62], detached: true });
  });

  it("finds the sequence split across reads", async () => {
    expect(await typed([[0x61, 0x10], [0x11]])).toEqual({ passed: [0x61], detached: true });
  });

  it("sends a Ctrl-P not followed by Ctrl-Q, and a lone Ctrl-Q", async () => {
    expect(await typed([[0x10, 0x61], [0x11], [0x10], [0x10, 0x62]])).toEqual({
      passed: [0x10, 0x61, 0x11, 0x10, 0x10, 0x62],
      detached: false,
    });
  });
});
