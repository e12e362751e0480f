// Packages that only AgentHosts need, loaded the first time a host uses them rather than when
// the operator starts: an operator with no AgentHost never holds them. Imported alone into a
// bare Node process, ssh2 adds 16 MiB resident (17 MiB of it external memory, its WebAssembly
// crypto); in the operator's idle process, ssh2 and gRPC together took 5-6 MiB.
import { createRequire } from "node:module";

const load = createRequire(import.meta.url);

let ssh2: typeof import("ssh2") | undefined;
let grpc: typeof import("@grpc/grpc-js") | undefined;
let protoLoader: typeof import("@grpc/proto-loader") | undefined;

/** The SSH client (every AgentHost and KVM guest connection). */
export function ssh2Package(): typeof import("ssh2") {
  ssh2 ??= load("ssh2") as typeof import("ssh2");
  return ssh2;
}

/** gRPC and its .proto loader (the CRI of containerd hosts). */
export function grpcPackages(): {
  grpc: typeof import("@grpc/grpc-js");
  protoLoader: typeof import("@grpc/proto-loader");
} {
  grpc ??= load("@grpc/grpc-js") as typeof import("@grpc/grpc-js");
  protoLoader ??= load("@grpc/proto-loader") as typeof import("@grpc/proto-loader");
  return { grpc, protoLoader };
}
