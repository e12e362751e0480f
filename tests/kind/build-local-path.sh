#!/usr/bin/env bash
# Builds Rancher's local-path-provisioner $LOCAL_PATH_VERSION from the Go module proxy into
# $AGENTTYPE_LOCAL_PATH_BIN (outside the repo, one directory per pin, like build-kind.sh's): the
# storage provisioner of the kind node image made here (node-image.sh), as kind's own node images
# carry one. Reuses a complete build (its .complete stamp names the pin and Go).
#
#   tests/kind/build-local-path.sh            build it if missing; last stdout line: the binary
#   tests/kind/build-local-path.sh --force    rebuild even if the stamp is present
#
# The module has no replace directives; built as its scripts/build does (CGO_ENABLED=0, static,
# main.VERSION set to the tag), so `local-path-provisioner --version` names the release.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../cluster/lib.sh
source "$HERE/../cluster/lib.sh"

V=$LOCAL_PATH_VERSION
AGENTTYPE_LOCAL_PATH_BIN=${AGENTTYPE_LOCAL_PATH_BIN:-$AGENTTYPE_CACHE/bin/local-path-provisioner-$V}
MODULE=github.com/rancher/local-path-provisioner
FORCE=0
[[ ${1:-} == --force ]] && FORCE=1

at_go_env
[[ $V =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || at_die "LOCAL_PATH_VERSION must look like v0.0.30, got $V"
stamp_text() { printf 'local-path-provisioner=%s go=%s\n' "$V" "$(go env GOVERSION)"; }

OUT=$AGENTTYPE_LOCAL_PATH_BIN/local-path-provisioner
at_build_reuse "$AGENTTYPE_LOCAL_PATH_BIN" "$(stamp_text)" "$OUT" "$FORCE"

T0=$SECONDS
PARTIAL=$AGENTTYPE_LOCAL_PATH_BIN.partial
mkdir -p "$PARTIAL"
rm -f "$PARTIAL/local-path-provisioner"
at_log "local-path-provisioner $V: building into $PARTIAL (go $(go env GOVERSION))"
at_go_wrapper_build "$AGENTTYPE_CACHE/build/local-path-provisioner-$V" "$MODULE@$V" "$MODULE" \
  "$PARTIAL/local-path-provisioner" "-X main.VERSION=$V"

got=$("$PARTIAL/local-path-provisioner" --version)
at_log "version: $got"
[[ $got == *" version $V" ]] || at_die "unexpected 'local-path-provisioner --version' output: $got"

at_build_done "$PARTIAL" "$AGENTTYPE_LOCAL_PATH_BIN" "$(stamp_text)"
at_log "done in $((SECONDS - T0))s: $OUT"
echo "$OUT"
