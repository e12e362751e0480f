// The connect timeout against a real socket that never completes its handshake: a listener in
// a stopped process whose accept queue is full, so the kernel drops further connection requests.
import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { send, target } from "./http-client.ts";

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const step of cleanup.splice(0)) step();
});

/** A port whose connection requests hang: its listener's backlog is full and never drained. */
async function blackHole(): Promise<number> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      "-e",
      `const s = require("node:net").createServer(); s.listen({ port: 0, host: "127.0.0.1", backlog: 1 }, () => console.log(s.address().port));`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  cleanup.push(() => child.kill("SIGKILL"));
  const port = Number(
    await new Promise<string>((resolve) => child.stdout?.once("data", (d) => resolve(String(d).trim()))),
  );
  // Stopped, it accepts nothing: the first connections fill the queue, the next ones hang.
  child.kill("SIGSTOP");
  for (let i = 0; i < 4; i++) {
    const filler = net.connect(port, "127.0.0.1");
    filler.on("error", () => undefined);
    cleanup.push(() => filler.destroy());
  }
  await new Promise((r) => setTimeout(r, 100));
  return port;
}

describe("send", () => {
  it("gives up connecting after the connect timeout, as a connection failure, long before the request's", async () => {
    const port = await blackHole();
    const started = Date.now();
    const error = await send(target(`http://127.0.0.1:${port}/api/chat`), {
      method: "POST",
      body: "{}",
      signal: AbortSignal.timeout(30_000),
      connectTimeoutMs: 300,
    }).catch((e: unknown) => e as Error & { code?: string });
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(Error);
    expect((error as { code?: string }).code).toBe("ETIMEDOUT");
    expect((error as Error).message).toBe(`could not connect to 127.0.0.1:${port} within 0.3 s`);
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(5_000);
  });
});
