// A local Unix socket that stands for a socket on the host: each local connection becomes one
// forwarded stream (openUnixSocket) on the host's transport. Clients that dial an address
// (gRPC) use it; the socket sits in a private directory only this process's user can enter.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { within } from "../call.ts";
import type { HostTransport } from "../transport.ts";

export interface SocketBridgeOptions {
  /** Time to open one forwarded stream. */
  openTimeoutMs?: number;
  /** Called when a local connection could not be forwarded (the client sees it closed). */
  onError?: (err: unknown) => void;
}

export class SocketBridge {
  /** The local socket's path: dial `unix:${path}`. */
  readonly path: string;
  readonly #dir: string;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #abort = new AbortController();

  private constructor(dir: string, server: Server) {
    this.#dir = dir;
    this.path = join(dir, "socket");
    this.#server = server;
  }

  static async open(
    transport: HostTransport,
    remotePath: string,
    options: SocketBridgeOptions = {},
  ): Promise<SocketBridge> {
    // mkdtemp creates the directory with mode 0700.
    const dir = mkdtempSync(join(tmpdir(), "agenttype-bridge-"));
    const server = createServer();
    const bridge = new SocketBridge(dir, server);
    server.on("connection", (local) => bridge.#forward(local, transport, remotePath, options));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(bridge.path, () => {
        server.off("error", reject);
        resolve();
      });
    });
    return bridge;
  }

  #forward(local: Socket, transport: HostTransport, remotePath: string, options: SocketBridgeOptions): void {
    this.#sockets.add(local);
    local.once("close", () => this.#sockets.delete(local));
    local.pause();
    transport.openUnixSocket(remotePath, within(options.openTimeoutMs ?? 15_000, this.#abort.signal)).then(
      (remote) => {
        if (local.destroyed) return void remote.destroy();
        local.pipe(remote).pipe(local);
        const close = () => {
          local.destroy();
          remote.destroy();
          // ssh2 reports a channel closed only once its readable side has ended: drain it.
          remote.resume();
        };
        local.once("close", close);
        remote.once("close", close);
        local.on("error", close);
        remote.on("error", close);
        local.resume();
      },
      (err: unknown) => {
        options.onError?.(err);
        local.destroy();
      },
    );
  }

  /** Stops listening, closes every forwarded connection and removes the socket's directory. */
  async close(): Promise<void> {
    this.#abort.abort(new Error("socket bridge closed"));
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
