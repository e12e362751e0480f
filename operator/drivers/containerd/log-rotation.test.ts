// The rotation commands run by a real shell on a real directory, as the driver runs them on a host.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { logRotation } from "../../hosts/host-connections.ts";
import {
  oversizedLogsCommand,
  parseOversizedLogs,
  rotatedLogPaths,
  rotateLogCommand,
} from "./log-rotation.ts";

const run = promisify(execFile);
const sh = (command: string) => run("sh", ["-c", command]);

describe("log rotation", () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "agenttype-logs-"));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("finds only the log files past the size, in every group's directory; none when no log is there yet", async () => {
    const logs = join(root, "logs");
    expect((await sh(oversizedLogsCommand(logs, 10))).stdout).toBe("");
    await mkdir(join(logs, "group a_0"), { recursive: true });
    await mkdir(join(logs, "b_1"), { recursive: true });
    await writeFile(join(logs, "group a_0", "agent_0.log"), "x".repeat(11));
    await writeFile(join(logs, "group a_0", "sidecar_0.log"), "x".repeat(10));
    await writeFile(join(logs, "b_1", "agent_0.log.1"), "x".repeat(100));
    await writeFile(join(logs, "b_1", "agent_0.log"), "x".repeat(12));
    const found = parseOversizedLogs((await sh(oversizedLogsCommand(logs, 10))).stdout).sort();
    expect(found).toEqual([join(logs, "b_1", "agent_0.log"), join(logs, "group a_0", "agent_0.log")]);
  });

  it("shifts the rotated files up, keeps maxFiles in all, and drops those a larger maxFiles left", async () => {
    const live = join(root, "agent's_0.log");
    const write = (text: string) => writeFile(live, text);
    const state = async () =>
      Object.fromEntries(
        await Promise.all(
          (await readdir(root)).sort().map(async (f) => [f, await readFile(join(root, f), "utf8")] as const),
        ),
      );
    await write("first");
    await sh(rotateLogCommand(live, 3));
    expect(await state()).toEqual({ "agent's_0.log.1": "first" });
    await write("second");
    await sh(rotateLogCommand(live, 3));
    await write("third");
    await sh(rotateLogCommand(live, 3));
    await write("fourth");
    expect(await state()).toEqual({
      "agent's_0.log": "fourth",
      "agent's_0.log.1": "third",
      "agent's_0.log.2": "second",
    });
    await sh(rotateLogCommand(live, 2));
    expect(await state()).toEqual({ "agent's_0.log.1": "fourth" });
  });

  it("fails, moving nothing, when the live file is gone", async () => {
    await writeFile(`${join(root, "a.log")}.1`, "kept");
    await expect(sh(rotateLogCommand(join(root, "a.log"), 3))).rejects.toThrow(/a\.log: no such file/);
    expect((await readdir(root)).sort()).toEqual(["a.log.1"]);
  });

  it("reads the rotated files newest first", () => {
    expect(rotatedLogPaths("/l/a.log", 2)).toEqual(["/l/a.log.1", "/l/a.log.2"]);
    expect(rotatedLogPaths("/l/a.log")).toHaveLength(9);
  });

  it("takes the kubelet's defaults (10Mi, 3 files) when the AgentHost says nothing", () => {
    const host = (containerLogs?: object) =>
      ({ spec: { driver: "containerd", ...(containerLogs ? { containerLogs } : {}) } }) as never;
    expect(logRotation(host())).toEqual({ maxBytes: 10 * 1024 * 1024, maxFiles: 3 });
    expect(logRotation(host({ maxSize: "64Ki", maxFiles: 2 }))).toEqual({ maxBytes: 65536, maxFiles: 2 });
  });
});
