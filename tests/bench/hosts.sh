#!/usr/bin/env bash
# `make bench-hosts`: brings up what tests/bench/hosts.ts measures on, runs it, and takes down
# what it brought up. A host of its own (tests/hosts/host.sh with its own namespace, addresses
# and state, so it never meets the host tier's) and a control plane of its own (own state and
# ports), the CRI protocol definition from the Go module proxy, the project's images imported
# into the host's containerd. Whatever was running before is left running.
#   tests/bench/hosts.sh [--rounds N]
# The last line of stdout is the benchmark's machine-readable line.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

export AGENTTYPE_HOST_STATE=${AGENTTYPE_BENCH_HOST_STATE:-/var/lib/agenttype-bench-host}
export AGENTTYPE_HOST_NETNS=agenttype-bench-host AGENTTYPE_HOST_VETH=atbench0 \
  AGENTTYPE_HOST_GATEWAY_IP=10.199.0.1 AGENTTYPE_HOST_IP=10.199.0.2 \
  AGENTTYPE_HOST_POD_CIDR=10.199.1.0/24 AGENTTYPE_HOST_POD_GATEWAY=10.199.1.1 AGENTTYPE_HOST_POD_BRIDGE=atbpods0
export AGENTTYPE_STATE=${AGENTTYPE_BENCH_CLUSTER_STATE:-/var/lib/agenttype-bench-hosts-cluster}
export AGENTTYPE_APISERVER_PORT=6943 AGENTTYPE_ETCD_CLIENT_PORT=2979 AGENTTYPE_ETCD_PEER_PORT=2980 \
  AGENTTYPE_KCM_PORT=10957

host_was_up=""
cluster_was_up=""
if "$REPO/tests/hosts/host.sh" status >/dev/null 2>&1; then host_was_up=yes; fi
if "$REPO/tests/cluster/cluster.sh" status control-plane >/dev/null 2>&1; then cluster_was_up=yes; fi
cleanup() {
  [ -n "$cluster_was_up" ] || "$REPO/tests/cluster/cluster.sh" down control-plane >&2 || true
  [ -n "$host_was_up" ] || "$REPO/tests/hosts/host.sh" down >&2 || true
}
trap cleanup EXIT

AGENTTYPE_CRI_PROTO=$("$REPO/operator/drivers/containerd/cri-proto.sh")
export AGENTTYPE_CRI_PROTO
"$REPO/tests/hosts/host.sh" up >&2
kubeconfig=$("$REPO/tests/cluster/cluster.sh" up control-plane | tail -n 1)
node "$REPO/tests/bench/hosts.ts" --kubeconfig "$kubeconfig" --host-env "$AGENTTYPE_HOST_STATE/host.env" "$@"
