#!/usr/bin/env bash
# Builds kind $KIND_VERSION from the Go module proxy into $AGENTTYPE_KIND_BIN (outside the repo,
# one directory per pin, like build-tilt.sh's). Reuses a complete build: the directory's .complete
# stamp is written last and must name the same pin and Go. Only the Go module proxy is needed.
#
#   tests/kind/build-kind.sh            build it if missing; last stdout line: the kind binary
#   tests/kind/build-kind.sh --force    rebuild even if the stamp is present
#
# kind v0.30.0 is the release whose default node image is Kubernetes v1.34.0 (kindest/node:v1.34.0),
# the minor the project tests against; its version is in its source (pkg/cmd/kind/version), so
# `kind version` names the release without extra flags. Its module has no replace directives:
# `go build` of the module at that version, as its Makefile does (CGO_ENABLED=0, -trimpath).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../cluster/lib.sh
source "$HERE/../cluster/lib.sh"

KIND_VERSION=${KIND_VERSION:-v0.30.0}
AGENTTYPE_KIND_BIN=${AGENTTYPE_KIND_BIN:-$AGENTTYPE_CACHE/bin/kind-$KIND_VERSION}
FORCE=0
[[ ${1:-} == --force ]] && FORCE=1

export CGO_ENABLED=0
at_go_env
[[ $KIND_VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || at_die "KIND_VERSION must look like v0.30.0, got $KIND_VERSION"
stamp_text() { printf 'kind=%s go=%s\n' "$KIND_VERSION" "$(go env GOVERSION)"; }

at_build_reuse "$AGENTTYPE_KIND_BIN" "$(stamp_text)" "$AGENTTYPE_KIND_BIN/kind" "$FORCE"

T0=$SECONDS
PARTIAL=$AGENTTYPE_KIND_BIN.partial
DIR=$AGENTTYPE_CACHE/build/kind-$KIND_VERSION
mkdir -p "$PARTIAL"
rm -f "$PARTIAL/kind"
at_log "kind $KIND_VERSION: building into $PARTIAL (go $(go env GOVERSION))"
at_go_wrapper_build "$DIR" "sigs.k8s.io/kind@$KIND_VERSION" sigs.k8s.io/kind "$PARTIAL/kind"

got=$("$PARTIAL/kind" version)
at_log "version: $got"
[[ $got == "kind $KIND_VERSION "* ]] || at_die "unexpected 'kind version' output: $got"

at_build_done "$PARTIAL" "$AGENTTYPE_KIND_BIN" "$(stamp_text)"
at_log "done in $((SECONDS - T0))s: $AGENTTYPE_KIND_BIN/kind"
echo "$AGENTTYPE_KIND_BIN/kind"
