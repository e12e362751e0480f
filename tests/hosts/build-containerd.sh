#!/usr/bin/env bash
# Builds a containerd 2.x (containerd, containerd-shim-runc-v2, ctr) from the Go module proxy into
# the cache, for running the host tier against it as well as against Debian's containerd 1.6.
# Prints the directory of the binaries. Reused while the pinned version is unchanged.
#
#   tests/hosts/build-containerd.sh        AGENTTYPE_CONTAINERD2_VERSION overrides the pin
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../cluster/lib.sh
. "$HERE/../cluster/lib.sh"

# A 2.x release whose go.mod our Go builds (go list -m -versions github.com/containerd/containerd/v2).
VERSION=${AGENTTYPE_CONTAINERD2_VERSION:-v2.2.9}
OUT=$AGENTTYPE_CACHE/bin/containerd-$VERSION

if [ -f "$OUT/.complete" ]; then echo "$OUT"; exit 0; fi
at_go_env
rm -rf "$OUT.partial"
mkdir -p "$OUT.partial"
at_log "containerd $VERSION: building from the Go module proxy (a few minutes)"
t0=$SECONDS
# No btrfs, zfs or devmapper snapshotters: they need C libraries, and the host uses overlayfs.
GOBIN=$OUT.partial go install -trimpath -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$VERSION" \
  -tags "no_btrfs no_zfs no_devmapper" \
  "github.com/containerd/containerd/v2/cmd/containerd@$VERSION" \
  "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$VERSION" \
  "github.com/containerd/containerd/v2/cmd/ctr@$VERSION" >&2
"$OUT.partial/containerd" --version >&2
touch "$OUT.partial/.complete"
rm -rf "$OUT"
mv "$OUT.partial" "$OUT"
at_log "containerd $VERSION built in $((SECONDS - t0))s"
echo "$OUT"
