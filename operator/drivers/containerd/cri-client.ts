// The CRI runtime and image services of a host's containerd, over a forwarded socket: gRPC
// (grpc-js) dials a local socket bridge whose connections are SSH-forwarded streams to the
// host's containerd socket. The protocol definition is loaded from api.proto of the Go module
// k8s.io/cri-api, put in the cache by cri-proto.sh (or in the operator's image at build time),
// never copied into the repo.
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { type Call, remainingMs } from "../call.ts";
import { grpcPackages } from "../on-demand.ts";
import { SocketBridge } from "../ssh/socket-bridge.ts";
import type { HostTransport } from "../transport.ts";
import { CRI_API_VERSION } from "./cri-api-pin.ts";
import { criError } from "./cri-errors.ts";

/** Where api.proto is: $AGENTTYPE_CRI_PROTO, else cri-proto.sh's cache path. */
export function criProtoPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AGENTTYPE_CRI_PROTO) return env.AGENTTYPE_CRI_PROTO;
  const cache = env.AGENTTYPE_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "agenttype");
  return join(cache, "proto", `cri-api-${CRI_API_VERSION}`, "api.proto");
}

type Unary = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response: unknown) => void,
) => grpc.ClientUnaryCall;

type ServiceClient = grpc.Client & Record<string, Unary>;

let loaded: { runtime: grpc.ServiceClientConstructor; image: grpc.ServiceClientConstructor } | undefined;

function services(protoPath: string) {
  if (loaded) return loaded;
  if (!existsSync(protoPath))
    throw new Error(
      `CRI protocol definition ${protoPath} is missing: run operator/drivers/containerd/cri-proto.sh (or set AGENTTYPE_CRI_PROTO)`,
    );
  const { grpc, protoLoader } = grpcPackages();
  const definition = protoLoader.loadSync(protoPath, {
    keepCase: false,
    // int64 fields (timestamps in ns, sizes) as strings: nanoseconds do not fit a double.
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    runtime: {
      v1: { RuntimeService: grpc.ServiceClientConstructor; ImageService: grpc.ServiceClientConstructor };
    };
  };
  loaded = { runtime: pkg.runtime.v1.RuntimeService, image: pkg.runtime.v1.ImageService };
  return loaded;
}

export class CriClient {
  readonly #bridge: SocketBridge;
  readonly #runtime: ServiceClient;
  readonly #image: ServiceClient;

  private constructor(bridge: SocketBridge, protoPath: string) {
    const { runtime, image } = services(protoPath);
    this.#bridge = bridge;
    const options: grpc.ChannelOptions = {
      "grpc.max_receive_message_length": 16 * 1024 * 1024,
      // A lost SSH connection drops the bridged socket: come back quickly once it returns.
      "grpc.initial_reconnect_backoff_ms": 250,
      "grpc.max_reconnect_backoff_ms": 5_000,
      // The target is a Unix socket path; containerd ignores :authority.
      "grpc.default_authority": "localhost",
    };
    const address = `unix:${bridge.path}`;
    const { credentials } = grpcPackages().grpc;
    this.#runtime = new runtime(address, credentials.createInsecure(), options) as ServiceClient;
    // One channel for both services: the image client shares the runtime client's connection.
    this.#image = new image(address, credentials.createInsecure(), {
      ...options,
      channelOverride: this.#runtime.getChannel(),
    }) as ServiceClient;
  }

  /** A client of the CRI at `socketPath` on the host behind `transport`. */
  static async open(
    transport: HostTransport,
    socketPath: string,
    protoPath = criProtoPath(),
  ): Promise<CriClient> {
    services(protoPath);
    const bridge = await SocketBridge.open(transport, socketPath);
    return new CriClient(bridge, protoPath);
  }

  runtime<T>(method: string, request: unknown, call: Call, what = method): Promise<T> {
    return this.#unary<T>(this.#runtime, method, request, call, what);
  }

  image<T>(method: string, request: unknown, call: Call, what = method): Promise<T> {
    return this.#unary<T>(this.#image, method, request, call, what);
  }

  #unary<T>(client: ServiceClient, method: string, request: unknown, call: Call, what: string): Promise<T> {
    const fn = client[method];
    if (typeof fn !== "function") throw new Error(`CRI has no method ${method}`);
    call.signal.throwIfAborted();
    const budget = remainingMs(call);
    return new Promise<T>((resolve, reject) => {
      const pending = fn.call(
        client,
        request,
        new (grpcPackages().grpc.Metadata)(),
        { deadline: new Date(Date.now() + budget) },
        (err, response) => {
          call.signal.removeEventListener("abort", onAbort);
          if (err) reject(call.signal.aborted ? call.signal.reason : criError(err, what, budget));
          else resolve(response as T);
        },
      );
      const onAbort = () => pending.cancel();
      call.signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  async close(): Promise<void> {
    this.#image.close();
    this.#runtime.close();
    await this.#bridge.close();
  }
}
