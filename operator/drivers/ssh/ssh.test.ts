import { once } from "node:events";
import { createServer, type Socket } from "node:net";
import ssh2 from "ssh2";
import { describe, expect, it } from "vitest";
import { leadingZeroSeed } from "../../../tests/fixtures/ssh-keys.ts";
import { within } from "../call.ts";
import {
  AuthenticationError,
  AuthorizationError,
  CreationFailedError,
  NetworkError,
  NotFoundError,
  ResourceLimitError,
  TimeoutError,
} from "../errors.ts";
import { ChannelLimit } from "./channel-limit.ts";
import { PidReport, SshConnection, withPidReport } from "./connection.ts";
import { fingerprint, formatPublicKey, hostKeyAlgorithms, parsePublicKey } from "./host-key.ts";
import { type ClientKeypair, encodeEd25519Keypair, generateClientKeypair } from "./keypair.ts";
import { nextAttemptAt, reconnectStep } from "./reconnect.ts";
import { connectError, sftpError } from "./ssh-errors.ts";

// Keys made with ssh-keygen, and the fingerprints `ssh-keygen -lf` printed for them.
const vectors = [
  [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJvFD2ZJ1ErF4Ei3tg8srFrNrnHHYghnEgjUq730oQK0 vector",
    "SHA256:c8y3GH9A0J9ne/I7KYU9DqiNdjI6+9iKROKJOVTf9yg",
  ],
  [
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDJ099WHokYEsUqtQT/fwmsxYD+aCbtaEOGsg2UG4TT/Qpdyb6W05GZ9k3DUVxENa1tJn3lTfyKuIFL2bnHfH6rGpOTwjjEevPAN88J8/dyvYJtkdkW16zYo+7GFc3qkJCcfwPBSZ51okIo7mMWAikkRajxGr82/fV2PJu/a+KCbQ== rsavec",
    "SHA256:7kV9RHJS8FClKYBsDn5zLzz+gUzfRoaCh+u9TynSft4",
  ],
  [
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBH/d7JSY09899Jrzne0yE3Bidt2JMF6Jl50Xboaq5YZsXqnLsA7l9RSJY8zwE6QVqqGreTY8CB7GzjUfagYpins= ecvec",
    "SHA256:15uh9JeQ9RvHs/TCibFrrjGbCPEt9jUffNi4Y0Lyl4I",
  ],
] as const;

describe("host keys", () => {
  it("fingerprint as ssh-keygen does", () => {
    for (const [line, expected] of vectors) expect(fingerprint(parsePublicKey(line).blob)).toBe(expected);
  });

  it("parse the type and comment, and format back", () => {
    const [line] = vectors[0];
    const key = parsePublicKey(`  ${line}  `);
    expect(key.type).toBe("ssh-ed25519");
    expect(key.comment).toBe("vector");
    expect(formatPublicKey(key.blob, "vector")).toBe(line);
  });

  it("refuse what is not an OpenSSH public key, saying why", () => {
    expect(() => parsePublicKey("ssh-ed25519")).toThrow(/must be '<type> <base64>/);
    expect(() => parsePublicKey("ssh-dss AAAA")).toThrow(/ssh-dss is not one of/);
    expect(() => parsePublicKey("ssh-ed25519 not*base64")).toThrow(/not valid base64/);
    // An RSA blob labelled ed25519.
    expect(() => parsePublicKey(`ssh-ed25519 ${vectors[1][0].split(" ")[1]}`)).toThrow(
      /does not hold a ssh-ed25519 key/,
    );
  });

  it("offer only the pinned key's algorithms", () => {
    expect(hostKeyAlgorithms("ssh-ed25519")).toEqual(["ssh-ed25519"]);
    expect(hostKeyAlgorithms("ssh-rsa")).toEqual(["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]);
  });
});

describe("client keypair", () => {
  it("is ed25519 in OpenSSH formats, the public half matching the private", () => {
    const pair = generateClientKeypair("agenttype-operator@host-a");
    expect(pair.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    expect(pair.publicKey).toMatch(
      /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]+ agenttype-operator@host-a$/,
    );
    const parsed = ssh2.utils.parseKey(pair.privateKey);
    if (parsed instanceof Error) throw parsed;
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    expect(key.type).toBe("ssh-ed25519");
    expect(key.getPublicSSH().equals(parsePublicKey(pair.publicKey).blob)).toBe(true);
    expect(pair.fingerprint).toBe(fingerprint(key.getPublicSSH()));
    expect(generateClientKeypair("x").publicKey).not.toBe(generateClientKeypair("x").publicKey);
    expect(() => generateClientKeypair("a\nb")).toThrow(/one line/);
  });

  it("keeps a public key's leading zero bytes: the key stays readable and signs", () => {
    const seed = leadingZeroSeed();
    const pair = encodeEd25519Keypair(seed, "", 0x01020304);
    expect(pair.publicKey).toBe(
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAH4vqQrPHTFCqNYmxqgZfGWhX25enXkpUlT8JPmdy",
    );
    expectUsable(pair);
    expect(() => encodeEd25519Keypair(seed.subarray(1), "", 0)).toThrow(/32 bytes/);
  });

  it("comes out usable every time: 2,000 generated keys each parse and sign", () => {
    // With ssh2's generator about 1 in 200 did not parse: 2,000 would all but surely hit one.
    for (let i = 0; i < 2_000; i++) expectUsable(generateClientKeypair(`key-${i}`));
  });
});

/** Both halves parse with ssh2, and a signature by the private half verifies with the public. */
function expectUsable(pair: ClientKeypair): void {
  const privateKey = ssh2.utils.parseKey(pair.privateKey);
  const publicKey = ssh2.utils.parseKey(pair.publicKey);
  if (privateKey instanceof Error) throw new Error(`${privateKey.message}:\n${pair.privateKey}`);
  if (publicKey instanceof Error) throw new Error(`${publicKey.message}: ${pair.publicKey}`);
  const [mine, theirs] = [privateKey, publicKey].map((k) => (Array.isArray(k) ? k[0] : k));
  expect(mine.getPublicSSH().equals(theirs.getPublicSSH())).toBe(true);
  const data = Buffer.from(pair.fingerprint);
  expect(theirs.verify(data, mine.sign(data))).toBe(true);
}

describe("ChannelLimit", () => {
  it("lets `max` through, then queues first come first served", async () => {
    const limit = new ChannelLimit(2);
    const a = await limit.acquire(within(1000), "a");
    const b = await limit.acquire(within(1000), "b");
    const order: string[] = [];
    const queued = (name: string) =>
      limit.acquire(within(1000), name).then((release) => {
        order.push(name);
        return release;
      });
    const c = queued("c");
    const d = queued("d");
    expect(limit.inUse).toBe(2);
    a();
    a(); // a second release of the same permit is ignored
    (await c)();
    b();
    (await d)();
    expect(order).toEqual(["c", "d"]);
    expect(limit.inUse).toBe(0);
  });

  it("gives up at the deadline with a retryable ResourceLimitError, and on abort", async () => {
    const limit = new ChannelLimit(1);
    const held = await limit.acquire(within(1000), "held");
    await expect(limit.acquire(within(20), "exec x")).rejects.toBeInstanceOf(ResourceLimitError);
    const controller = new AbortController();
    const waiting = limit.acquire(within(1000, controller.signal), "y");
    controller.abort(new Error("cancelled"));
    await expect(waiting).rejects.toThrow("cancelled");
    held();
    expect(limit.inUse).toBe(0);
    expect(() => new ChannelLimit(0)).toThrow(/positive integer/);
  });
});

describe("SSH failures", () => {
  it("become the driver error a caller acts on", () => {
    const target = "root@10.0.0.1:22";
    expect(
      connectError(
        Object.assign(new Error("All configured authentication methods failed"), {
          level: "client-authentication",
        }),
        target,
        1000,
      ),
    ).toBeInstanceOf(AuthenticationError);
    expect(
      connectError(Object.assign(new Error("Timed out"), { level: "client-timeout" }), target, 1000),
    ).toBeInstanceOf(TimeoutError);
    const refused = connectError(
      Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED", level: "client-socket" }),
      target,
      1000,
    );
    expect(refused).toBeInstanceOf(NetworkError);
    expect(refused.retryable).toBe(true);
    expect(refused.message).toBe(`cannot reach ${target}: ECONNREFUSED`);
    expect(sftpError(Object.assign(new Error("No such file"), { code: 2 }), target, "/x")).toBeInstanceOf(
      NotFoundError,
    );
    expect(
      sftpError(Object.assign(new Error("Permission denied"), { code: 3 }), target, "/x"),
    ).toBeInstanceOf(AuthorizationError);
    expect(sftpError(Object.assign(new Error("Failure"), { code: 4 }), target, "/x")).toBeInstanceOf(
      CreationFailedError,
    );
    expect(sftpError(new Error("No response from server"), target, "/x")).toBeInstanceOf(NetworkError);
  });
});

describe("exec's pid report", () => {
  it("runs the command through eval after reporting the shell's pid on stderr", () => {
    expect(withPidReport("echo 'a b'")).toBe(
      String.raw`printf 'agenttype-exec-pid %s\n' "$$" >&2; eval 'echo '\''a b'\'''`,
    );
  });

  it("takes the report off the head of stderr, however the chunks fall, and passes the rest", () => {
    const report = new PidReport();
    expect(report.strip(Buffer.from("agenttype-exec-p")).toString()).toBe("");
    expect(report.strip(Buffer.from("id 4242\nfirst err")).toString()).toBe("first err");
    expect(report.strip(Buffer.from("\nmore")).toString()).toBe("\nmore");
    expect(report.value).toBe(4242);
    const none = new PidReport();
    expect(none.strip(Buffer.from("not a report\nrest")).toString()).toBe("not a report\nrest");
    expect(none.value).toBeUndefined();
  });
});

describe("reconnecting", () => {
  it("connects at once outside the backoff window, waits inside it, fails fast when the deadline ends first", () => {
    expect(reconnectStep(1_000, 0, 5_000, false)).toEqual({ action: "connect" });
    expect(reconnectStep(1_000, 1_000, 5_000, true)).toEqual({ action: "connect" });
    expect(reconnectStep(1_000, 1_800, 5_000, true)).toEqual({ action: "wait", ms: 800 });
    expect(reconnectStep(1_000, 6_000, 5_000, true)).toEqual({ action: "fail" });
    // Nothing to fail with yet: wait, and let the deadline decide.
    expect(reconnectStep(1_000, 6_000, 5_000, false)).toEqual({ action: "wait", ms: 5_000 });
  });

  it("spaces attempts by jittered backoff that grows with consecutive failures", () => {
    const policy = { initialMs: 500, maxMs: 30_000 };
    expect(nextAttemptAt(10_000, 1, policy, 0)).toBe(10_250);
    expect(nextAttemptAt(10_000, 1, policy, 1)).toBe(10_500);
    expect(nextAttemptAt(10_000, 4, policy, 0.5)).toBe(13_000);
    expect(nextAttemptAt(10_000, 20, policy, 1)).toBe(40_000);
  });
});

describe("closing a connection", () => {
  it("ends a handshake in flight at once, not at its timeout: the host sees the socket closed", async () => {
    // A host that accepts and never says a word: the handshake would wait its full minute.
    const accepted: Socket[] = [];
    const server = createServer((socket) => {
      accepted.push(socket);
      socket.resume(); // read on, so that the client's end is seen
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const port = (server.address() as { port: number }).port;
      const connection = new SshConnection(
        {
          host: "127.0.0.1",
          port,
          username: "agent",
          privateKey: generateClientKeypair("client").privateKey,
          hostKey: generateClientKeypair("host").publicKey,
        },
        { readyTimeoutMs: 60_000 },
      );
      const attempt = connection.connection(within(60_000));
      attempt.catch(() => {});
      while (accepted.length === 0) await new Promise((r) => setTimeout(r, 10));
      const socketClosed = once(accepted[0] as Socket, "close");
      const started = Date.now();
      connection.close();
      await expect(attempt).rejects.toThrow(/is closed/);
      await socketClosed;
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      for (const s of accepted) s.destroy();
      server.close();
    }
  });
});
