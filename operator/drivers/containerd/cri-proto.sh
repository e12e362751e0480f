#!/usr/bin/env bash
# Puts the CRI protocol definition (runtime.v1 api.proto of the Go module k8s.io/cri-api) into a
# cache outside the repo and prints its path. The module comes from the Go module proxy, checked
# against its pinned go.sum hash (cri-proto-fetch.ts, which the operator's image build runs too);
# nothing of it is copied into the repo.
#
#   operator/drivers/containerd/cri-proto.sh     prints the path of api.proto (fetched on first use)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# cri-api-pin.ts pins the version (CRI_API_VERSION) and its hash.
version=$(sed -n 's/^export const CRI_API_VERSION = "\(v[0-9.]*\)";$/\1/p' "$HERE/cri-api-pin.ts")
[ -n "$version" ] || { echo "cri-proto.sh: no CRI_API_VERSION in $HERE/cri-api-pin.ts" >&2; exit 1; }
CACHE=${AGENTTYPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agenttype}
OUT=$CACHE/proto/cri-api-$version/api.proto

[ -s "$OUT" ] || node "$HERE/cri-proto-fetch.ts" "$OUT"
echo "$OUT"
