// The harness's Docker engine (tests/kind/docker.sh): paths of its own, containers that reach each
// other and a published port, the host's packet filter untouched, and a `down` that puts back
// everything it changed.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { describe, expect, onTestFinished, test } from "vitest";
import { eventually } from "../fixtures/eventually.ts";
import { exec, execOk } from "../fixtures/exec.ts";
import { docker, dockerRun, dockerSh, packetFilter } from "./docker-env.ts";

const STATE = process.env.AGENTTYPE_KIND_STATE ?? "/var/lib/agenttype-kind";
const CACHE = process.env.AGENTTYPE_CACHE ?? `${homedir()}/.cache/agenttype`;
const BRIDGE = process.env.AGENTTYPE_KIND_BRIDGE ?? "at-kind0";
const DATA_ROOT = process.env.AGENTTYPE_KIND_DOCKER_ROOT ?? `${CACHE}/docker`;
const NODE_IMAGE = "localhost/agenttype/node:24.21.0";

/** What docker.sh recorded before its first start: `name=value` lines. */
function found(): Record<string, string> {
  return Object.fromEntries(
    readFileSync(`${STATE}/found`, "utf8")
      .trim()
      .split("\n")
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
}

/** A process that is there and not a zombie (the machine's init may be slow to reap). */
function running(pid: string): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

const mountsUnder = (...dirs: string[]) =>
  readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[1] ?? "")
    .filter((mount) => dirs.some((dir) => mount.startsWith(`${dir}/`)));

describe("the kind tier's Docker engine", () => {
  test("runs with a socket, exec root and data root of its own", async () => {
    expect(process.env.DOCKER_HOST).toBe(`unix://${STATE}/docker.sock`);
    const info = JSON.parse(await docker(["info", "--format", "{{json .}}"]));
    expect(info.DockerRootDir).toBe(DATA_ROOT);
    expect(info.Driver).toBe("overlay2");
    expect(info.CgroupDriver).toBe("cgroupfs");
    // Nothing of a stock engine's packet filter: the policy as found, no DOCKER chains.
    const filter = await packetFilter();
    expect(filter.forwardPolicy).toBe(found().forward_policy);
    expect(filter.dockerChains.join(" ")).toBe((found().docker_chains ?? "").trim());
  });

  test("containers on one network reach each other by name, and the host reaches a published port", async () => {
    // The Node base image is the Dockerfile's (tests/kind/images.sh bases puts it in the engine).
    await execOk(`${import.meta.dirname}/images.sh`, ["bases"], { timeoutMs: 900_000 });
    const network = "agenttype-kind-test";
    await dockerRun(["rm", "-f", "at-kind-server"]);
    await dockerRun(["network", "rm", network]);
    await docker(["network", "create", network]);
    try {
      const server = 'require("http").createServer((q, r) => r.end("hello " + q.url)).listen(8000)';
      await docker([
        "run",
        "-d",
        "--name",
        "at-kind-server",
        "--network",
        network,
        "-p",
        "127.0.0.1::8000",
        NODE_IMAGE,
        "node",
        "-e",
        server,
      ]);
      const client = 'fetch("http://at-kind-server:8000/peer").then((r) => r.text()).then(console.log)';
      const peer = await eventually(
        "a container to reach its peer by name",
        async () => {
          const r = await dockerRun(["run", "--rm", "--network", network, NODE_IMAGE, "node", "-e", client]);
          return r.code === 0 && r.stdout.trim();
        },
        60_000,
        1000,
      );
      expect(peer).toBe("hello /peer");
      const published = (await docker(["port", "at-kind-server", "8000"])).trim().split("\n")[0] ?? "";
      expect(published).toMatch(/^127\.0\.0\.1:\d+$/);
      const host = await eventually("the host to reach the published port", async () => {
        const r = await fetch(`http://${published}/host`, { signal: AbortSignal.timeout(5000) });
        return r.ok && (await r.text());
      });
      expect(host).toBe("hello /host");
    } finally {
      await dockerRun(["rm", "-f", "at-kind-server"]);
      await dockerRun(["network", "rm", network]);
    }
    const filter = await packetFilter();
    expect(filter.forwardPolicy).toBe(found().forward_policy);
    expect(filter.dockerChains).toEqual([]);
  });

  test("down stops it and puts back what it changed", async () => {
    const before = found();
    // A network with its own bridge, which only the engine removes.
    const id = (await docker(["network", "create", "agenttype-kind-down"])).trim();
    const bridge = `br-${id.slice(0, 12)}`;
    expect(existsSync(`/sys/class/net/${bridge}`)).toBe(true);
    const pid = readFileSync(`${STATE}/run/dockerd.pid`, "utf8").trim();

    await execOk(dockerSh, ["down"], { timeoutMs: 300_000 });
    // Up again at the end, whatever the checks find, for the files that run after this one.
    onTestFinished(async () => {
      await execOk(dockerSh, ["up"], { timeoutMs: 300_000 });
    });
    expect(running(pid)).toBe(false);
    expect(existsSync(`${STATE}/docker.sock`)).toBe(false);
    expect(existsSync(`/sys/class/net/${bridge}`)).toBe(false);
    expect(existsSync(`/sys/class/net/${BRIDGE}`)).toBe(before.bridge_existed === "1");
    // The machine's /lib/modules stays while another engine of the harness (another state) runs.
    const otherEngine = (await exec("pgrep", ["-f", "--", "add-runtime agenttype-runc="])).code === 0;
    expect(existsSync("/lib/modules")).toBe(before.lib_modules_existed === "1" || otherEngine);
    expect(mountsUnder(STATE, DATA_ROOT)).toEqual([]);
    const filter = await packetFilter();
    expect(filter.forwardPolicy).toBe(before.forward_policy);
    expect(filter.dockerChains.join(" ")).toBe((before.docker_chains ?? "").trim());
    const status = await exec(dockerSh, ["status"]);
    expect([status.code, status.stdout.trim()]).toEqual([1, "dockerd: stopped"]);
  });

  test("up after down starts it again, with the images it had", async () => {
    expect(await docker(["version", "--format", "{{.Server.Version}}"])).toMatch(/^20\./);
    await docker(["image", "inspect", NODE_IMAGE]);
  });
});
