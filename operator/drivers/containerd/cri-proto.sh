#!/usr/bin/env bash
# Puts the CRI protocol definition (runtime.v1 api.proto of the Go module k8s.io/cri-api) into a
# cache outside the repo and prints its path. The module comes from the Go module proxy at build
# time, as the cluster harness's Kubernetes does; nothing of it is copied into the repo.
#
#   operator/drivers/containerd/cri-proto.sh     prints the path of api.proto (fetched on first use)
set -euo pipefail

# cri-api follows Kubernetes' minor: the same as tests/cluster/lib.sh's K8S_VERSION (v1.34.x).
CRI_API_VERSION=${AGENTTYPE_CRI_API_VERSION:-v0.34.4}
CACHE=${AGENTTYPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agenttype}
OUT=$CACHE/proto/cri-api-$CRI_API_VERSION/api.proto

if [ ! -s "$OUT" ]; then
  command -v go >/dev/null || { echo "cri-proto.sh: go is needed to fetch k8s.io/cri-api@$CRI_API_VERSION from the Go module proxy" >&2; exit 1; }
  export GOTOOLCHAIN=local GOFLAGS=-mod=mod
  dir=$(go mod download -json "k8s.io/cri-api@$CRI_API_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  src=$dir/pkg/apis/runtime/v1/api.proto
  [ -s "$src" ] || { echo "cri-proto.sh: no $src in k8s.io/cri-api@$CRI_API_VERSION" >&2; exit 1; }
  mkdir -p "$(dirname "$OUT")"
  cp "$src" "$OUT.tmp"
  chmod 0644 "$OUT.tmp"
  mv "$OUT.tmp" "$OUT"
fi
echo "$OUT"
