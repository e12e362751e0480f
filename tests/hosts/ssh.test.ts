// The SSH transport against the test host's real sshd: pinned host key, login, exec with
// streamed output and exit codes, deadlines, SFTP, forwarded Unix sockets, the channel bound,
// and reconnecting after sshd went away.
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { connect as http2Connect } from "node:http2";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { within } from "../../operator/drivers/call.ts";
import {
  AuthenticationError,
  HostKeyMismatchError,
  NetworkError,
  NotFoundError,
  TimeoutError,
} from "../../operator/drivers/errors.ts";
import { fingerprint, parsePublicKey } from "../../operator/drivers/ssh/host-key.ts";
import { encodeEd25519Keypair, generateClientKeypair } from "../../operator/drivers/ssh/keypair.ts";
import { SocketBridge } from "../../operator/drivers/ssh/socket-bridge.ts";
import { shellCommand } from "../../operator/drivers/transport.ts";
import { eventually } from "../fixtures/eventually.ts";
import { leadingZeroSeed } from "../fixtures/ssh-keys.ts";
import { connect, hostCommand, testHost } from "./host-env.ts";

const host = testHost();
const ssh = connect(host);
afterAll(() => ssh.close());

/** GET / over HTTP/2 on an established session; the body as text. */
function get(session: ReturnType<typeof http2Connect>): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ":path": "/" });
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => {
      body += c;
    });
    req.on("end", () => resolve(body));
    req.on("error", reject);
    req.end();
  });
}

describe("SSH transport on a real sshd", () => {
  it("logs in with the pinned host key and runs commands, streaming output and returning the exit code", async () => {
    const chunks: { text: string; at: number }[] = [];
    const started = Date.now();
    const result = await ssh.exec(
      "echo first; sleep 0.5; echo second; echo oops >&2; exit 3",
      { onStdout: (c) => chunks.push({ text: c.toString(), at: Date.now() - started }) },
      within(10_000),
    );
    expect(result).toEqual({ exitCode: 3, stdout: "first\nsecond\n", stderr: "oops\n" });
    // The first line arrived while the command was still running.
    expect(chunks[0]?.text).toBe("first\n");
    expect(chunks.at(-1)?.at ?? 0).toBeGreaterThanOrEqual((chunks[0]?.at ?? 0) + 400);
    const whoami = await ssh.exec(
      "id -u; cat /proc/self/net/fib_trie | grep -c 10.231.0.2 || true",
      {},
      within(10_000),
    );
    expect(whoami.stdout.split("\n")[0]).toBe("0");
    expect(ssh.connects).toBe(1);
  });

  it("feeds standard input and reports a death by signal", async () => {
    expect((await ssh.exec("wc -c", { stdin: "12345" }, within(10_000))).stdout.trim()).toBe("5");
    const killed = await ssh.exec("kill -TERM $$", {}, within(10_000));
    expect(killed.exitCode).toBeNull();
    expect(killed.signal).toBe("SIGTERM");
  });

  it("opens a session with its streams open: stdin to its end, stdout and stderr apart, or a terminal that takes a resize; a close ends it on the host", async () => {
    const piped = await ssh.openSession("tr a-z A-Z; echo done >&2; exit 6", {}, within(10_000));
    let out = "";
    let err = "";
    piped.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    piped.stderr.on("data", (c: Buffer) => {
      err += c.toString();
    });
    piped.stdin.end("typed\n");
    expect(await piped.ended).toEqual({ exitCode: 6 });
    expect([out, err]).toEqual(["TYPED\n", "done\n"]);

    const terminal = await ssh.openSession(
      "stty size; read line; stty size; echo got $line",
      { terminal: { rows: 30, cols: 100 } },
      within(10_000),
    );
    let screen = "";
    terminal.stdout.on("data", (c: Buffer) => {
      screen += c.toString();
    });
    await eventually("the first size", async () => screen.includes("30 100"), 10_000);
    terminal.resize({ rows: 50, cols: 132 });
    await new Promise((r) => setTimeout(r, 300));
    terminal.stdin.write("hello\r");
    expect(await terminal.ended).toEqual({ exitCode: 0 });
    expect(screen).toMatch(/30 100\r\n[\s\S]*50 132\r\ngot hello/);

    // Closing a session that runs on ends the command on the host and frees its channel.
    const marker = `agenttype-session-${process.pid}`;
    const lasting = await ssh.openSession(`exec -a ${marker} sleep 60`, {}, within(10_000));
    await eventually(
      "the command to run",
      async () =>
        (await ssh.exec(`pgrep -f -x '${marker} 60' || true`, {}, within(5_000))).stdout.trim() !== "",
      10_000,
    );
    lasting.close();
    expect((await lasting.ended).exitCode).not.toBe(0);
    await eventually(
      "the command to be killed",
      async () =>
        (await ssh.exec(`pgrep -f -x '${marker} 60' || true`, {}, within(5_000))).stdout.trim() === "",
      10_000,
    );
    await eventually("every channel to be freed", async () => ssh.channelsInUse === 0, 10_000);
  });

  it("multiplexes many concurrent calls over one connection, within the channel bound", async () => {
    let peak = 0;
    const calls = Array.from({ length: 24 }, (_, i) =>
      ssh.exec(`sleep 0.2; echo ${i}`, {}, within(30_000)).then((r) => {
        peak = Math.max(peak, ssh.channelsInUse);
        return r.stdout.trim();
      }),
    );
    const sampler = setInterval(() => {
      peak = Math.max(peak, ssh.channelsInUse);
    }, 5);
    const results = await Promise.all(calls);
    clearInterval(sampler);
    expect(results).toEqual(Array.from({ length: 24 }, (_, i) => String(i)));
    expect(peak).toBe(8);
    await eventually("every channel to be freed", async () => ssh.channelsInUse === 0, 10_000);
    expect(ssh.connects).toBe(1);
  });

  it("stops a command at its deadline, kills it on the host and frees the channel", async () => {
    const marker = `agenttype-deadline-${process.pid}`;
    const err = await ssh.exec(`exec -a ${marker} sleep 60`, {}, within(500)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).retryable).toBe(true);
    await eventually("the channel to be freed", async () => ssh.channelsInUse === 0, 10_000);
    await eventually(
      "the remote command to be killed",
      async () => {
        const ps = await ssh.exec(`pgrep -f -x '${marker} 60' || true`, {}, within(5_000));
        return ps.stdout.trim() === "";
      },
      10_000,
    );
  });

  it("closes a channel the host opens only after the call gave up on it: no command is left holding a session", async () => {
    // The connection's own socket, so that its sshd process on the host can be found and paused.
    let localPort = 0;
    const slow = connect(
      host,
      {},
      {
        connectStream: async () => {
          const socket = tcpConnect(host.port, host.address);
          await once(socket, "connect");
          localPort = socket.localPort ?? 0;
          return socket;
        },
      },
    );
    const marker = `agenttype-late-${process.pid}`;
    try {
      expect((await slow.exec("echo up", {}, within(10_000))).stdout).toBe("up\n");
      const owners = await ssh.exec(`ss -Htnp "dport = :${localPort}"`, {}, within(10_000));
      const pids = [...owners.stdout.matchAll(/pid=(\d+)/g)].map((m) => m[1]);
      expect(pids.length).toBeGreaterThan(0);
      // Paused, the host answers no channel request: the call gives up at its deadline. The
      // command (it runs until its standard input ends) starts once the host goes on.
      await ssh.exec(`kill -STOP ${pids.join(" ")}`, {}, within(10_000));
      const err = await slow
        .exec(`exec -a ${marker} cat`, {}, within(1_000))
        .catch((e: unknown) => e)
        .finally(() => ssh.exec(`kill -CONT ${pids.join(" ")}`, {}, within(10_000)));
      expect(err).toBeInstanceOf(TimeoutError);
      await eventually(
        "the late channel closed and its command ended",
        async () =>
          (await ssh.exec(`pgrep -f -x '${marker}' || true`, {}, within(5_000))).stdout.trim() === "",
        15_000,
      );
      expect(slow.channelsInUse).toBe(0);
      expect((await slow.exec("echo still", {}, within(10_000))).stdout).toBe("still\n");
    } finally {
      slow.close();
      await ssh.exec(`pkill -f -x '${marker}' || true`, {}, within(10_000)).catch(() => {});
    }
  });

  it("refuses a host that presents another key than the pinned one, naming both fingerprints", async () => {
    const other = generateClientKeypair("not-the-host").publicKey;
    const wrong = connect(host, {}, { hostKey: other });
    const err = await wrong
      .exec("touch /tmp/agenttype-must-not-exist", {}, within(10_000))
      .catch((e: unknown) => e);
    wrong.close();
    expect(err).toBeInstanceOf(HostKeyMismatchError);
    const mismatch = err as HostKeyMismatchError;
    const presented = fingerprint(parsePublicKey(host.hostKey).blob);
    expect(mismatch.expected).toBe(fingerprint(parsePublicKey(other).blob));
    expect(mismatch.presented).toBe(presented);
    expect(mismatch.message).toContain(mismatch.expected);
    expect(mismatch.message).toContain(presented);
    expect(mismatch.retryable).toBe(false);
    // ssh-keygen agrees on the host key's fingerprint.
    const keygen = execFileSync("ssh-keygen", ["-lf", "-"], { input: `${host.hostKey}\n` }).toString();
    expect(keygen).toContain(presented);
    expect((await ssh.exec("test -e /tmp/agenttype-must-not-exist", {}, within(10_000))).exitCode).toBe(1);
  });

  it("reports an unauthorized client key as an authentication failure, and accepts a generated key once authorized", async () => {
    const comment = `agenttype-test-${process.pid}`;
    const pair = generateClientKeypair(comment);
    const stranger = connect(host, {}, { privateKey: pair.privateKey });
    const err = await stranger.exec("true", {}, within(10_000)).catch((e: unknown) => e);
    stranger.close();
    expect(err).toBeInstanceOf(AuthenticationError);
    expect((err as AuthenticationError).retryable).toBe(false);

    // One key in 256 has a public key starting with a zero byte; sshd takes this one too.
    const leadingZero = encodeEd25519Keypair(leadingZeroSeed(), comment, 1);
    // What an admin does with the published public key: one line into authorized_keys.
    const lines = [pair.publicKey, leadingZero.publicKey].map((line) => shellCommand([line]));
    await ssh.exec(`printf '%s\\n' ${lines.join(" ")} >> ${host.authorizedKeys}`, {}, within(10_000));
    try {
      for (const authorized of [pair, leadingZero]) {
        const admitted = connect(host, {}, { privateKey: authorized.privateKey });
        expect((await admitted.exec("echo in", {}, within(10_000))).stdout).toBe("in\n");
        admitted.close();
        const file = join(tmpdir(), `agenttype-key-${process.pid}.pub`);
        writeFileSync(file, `${authorized.publicKey}\n`);
        expect(execFileSync("ssh-keygen", ["-lf", file]).toString()).toContain(authorized.fingerprint);
      }
    } finally {
      await ssh.exec(`sed -i '/${comment}$/d' ${host.authorizedKeys}`, {}, within(10_000));
    }
  });

  it("writes files over SFTP atomically with mode and owner, and reads them back whole or by tail", async () => {
    const dir = `/tmp/agenttype-sftp-${process.pid}`;
    await ssh.exec(`rm -rf ${dir} && mkdir -m 0700 ${dir}`, {}, within(10_000));
    const big = Buffer.alloc(1024 * 1024 + 17, 0);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) % 251;
    await ssh.writeFile(`${dir}/big.bin`, big, { mode: 0o640, uid: 65532, gid: 65533 }, within(30_000));
    const stat = await ssh.exec(
      `stat -c '%a %u %g %s' ${dir}/big.bin; sha256sum ${dir}/big.bin; ls ${dir}`,
      {},
      within(10_000),
    );
    const sha = (await import("node:crypto")).createHash("sha256").update(big).digest("hex");
    expect(stat.stdout).toBe(`640 65532 65533 ${big.length}\n${sha}  ${dir}/big.bin\nbig.bin\n`);
    expect((await ssh.readFile(`${dir}/big.bin`, {}, within(30_000))).equals(big)).toBe(true);
    expect(
      (await ssh.readFile(`${dir}/big.bin`, { tailBytes: 100 }, within(10_000))).equals(big.subarray(-100)),
    ).toBe(true);
    await ssh.writeFile(`${dir}/big.bin`, "replaced", {}, within(10_000));
    expect((await ssh.readFile(`${dir}/big.bin`, {}, within(10_000))).toString()).toBe("replaced");
    await expect(ssh.readFile(`${dir}/missing`, {}, within(10_000))).rejects.toBeInstanceOf(NotFoundError);
    await ssh.exec(`rm -rf ${dir}`, {}, within(10_000));
  });

  it("writes several files in order over one SFTP session, and stops at the first that fails, naming it", async () => {
    const dir = `/tmp/agenttype-sftp-many-${process.pid}`;
    await ssh.exec(`rm -rf ${dir} && mkdir -m 0700 ${dir}`, {}, within(10_000));
    await ssh.writeFiles(
      [
        { path: `${dir}/a`, data: "first", options: { mode: 0o400, uid: 65532, gid: 65532 } },
        { path: `${dir}/b`, data: Buffer.from("second"), options: {} },
      ],
      within(10_000),
    );
    const listed = await ssh.exec(`cd ${dir} && stat -c '%n %a %u' a b && cat a b`, {}, within(10_000));
    expect(listed.stdout).toBe("a 400 65532\nb 600 0\nfirstsecond");
    const failing = ssh.writeFiles(
      [
        { path: `${dir}/c`, data: "third", options: {} },
        { path: `${dir}/missing/d`, data: "fourth", options: {} },
        { path: `${dir}/e`, data: "fifth", options: {} },
      ],
      within(10_000),
    );
    await expect(failing).rejects.toThrow(`${dir}/missing/d`);
    // c is in place, e never begun, and no temporary file is left.
    expect((await ssh.exec(`ls -A ${dir}`, {}, within(10_000))).stdout).toBe("a\nb\nc\n");
    await ssh.exec(`rm -rf ${dir}`, {}, within(10_000));
  });

  it("forwards a Unix socket of the host as a stream an HTTP/2 client speaks over, directly and through a local socket", async () => {
    const socket = `/tmp/agenttype-h2-${process.pid}.sock`;
    const server = `require("node:http2").createServer((q, s) => s.end("hello from " + process.argv[1])).listen(process.argv[1])`;
    // The host shares this machine's file system: the test's node runs there too.
    const serving = ssh.exec(shellCommand([process.execPath, "-e", server, socket]), {}, within(60_000));
    try {
      await eventually(
        "the HTTP/2 server's socket",
        async () => (await ssh.exec(`test -S ${socket}`, {}, within(5_000))).exitCode === 0,
        10_000,
      );
      const stream = await ssh.openUnixSocket(socket, within(10_000));
      const session = http2Connect("http://host", { createConnection: () => stream });
      expect(await get(session)).toBe(`hello from ${socket}`);
      expect(await get(session)).toBe(`hello from ${socket}`);
      session.destroy();

      const bridge = await SocketBridge.open(ssh, socket);
      const viaBridge = http2Connect("http://host", { path: bridge.path } as never);
      expect(await get(viaBridge)).toBe(`hello from ${socket}`);
      viaBridge.destroy();
      await bridge.close();
      const missing = await ssh
        .openUnixSocket("/nonexistent/agenttype.sock", within(10_000))
        .catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(NetworkError);
    } finally {
      await ssh.exec(`pkill -f -- ${socket}; rm -f ${socket}`, {}, within(10_000));
      await serving.catch(() => {});
    }
    await eventually("forwarded channels to close", async () => ssh.channelsInUse === 0, 10_000);
  });
});

describe("SSH transport when sshd goes away", () => {
  it("fails with a retryable network error while sshd is down, and reconnects when it is back", async () => {
    const flaky = connect(host, { reconnect: { initialMs: 100, maxMs: 1_000 }, keepaliveIntervalMs: 1_000 });
    try {
      expect((await flaky.exec("echo up", {}, within(10_000))).stdout).toBe("up\n");
      hostCommand("sshd-stop");
      const err = await eventually(
        "a failing call",
        () =>
          flaky.exec("echo up", {}, within(5_000)).then(
            () => false,
            (e: unknown) => e,
          ),
        20_000,
      );
      expect(err).toBeInstanceOf(NetworkError);
      expect((err as NetworkError).retryable).toBe(true);
      expect(flaky.connected).toBe(false);
      hostCommand("sshd-start");
      const back = await eventually(
        "the reconnect",
        () => flaky.exec("echo back", {}, within(5_000)),
        20_000,
      );
      expect(back.stdout).toBe("back\n");
      expect(flaky.connects).toBe(2);
    } finally {
      flaky.close();
      hostCommand("sshd-start");
    }
  });
});
