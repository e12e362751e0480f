// A guest's sshd reached through its host: a direct-tcpip channel on the host's SSH connection
// to the guest's address on the host's libvirt network, which ssh2 uses as the guest
// connection's socket. Nothing listens on the host's network for the guest.
import type { Duplex } from "node:stream";
import { bounded, type Call } from "../call.ts";
import { NetworkError } from "../errors.ts";
import type { SshConnection } from "../ssh/connection.ts";

export const GUEST_SSH_PORT = 22;

/** A byte stream to `address:port` as the host sees it, carried by the host's connection. */
export async function openThroughHost(
  host: SshConnection,
  address: string,
  port: number,
  call: Call,
): Promise<Duplex> {
  const client = await host.connection(call);
  const what = `forward to ${address}:${port} through ${host.target}`;
  // A channel the host opens after the call gave up on it is closed at once, not left open.
  let abandoned = false;
  try {
    return await bounded(
      call,
      what,
      () =>
        new Promise<Duplex>((resolve, reject) => {
          client.forwardOut("127.0.0.1", 0, address, port, (err, stream) => {
            if (err) return reject(new NetworkError(`${what}: ${err.message}`, { cause: err }));
            if (abandoned) return stream.close();
            resolve(stream);
          });
        }),
    );
  } catch (err) {
    abandoned = true;
    throw err;
  }
}
