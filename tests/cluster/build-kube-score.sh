#!/usr/bin/env bash
# Builds kube-score $KUBE_SCORE_VERSION from the Go module proxy into $AGENTTYPE_KUBE_SCORE_BIN
# (outside the repo, one directory per pin, like build-tilt.sh). Reuses a complete build: the
# directory's .complete stamp is written last and must name the same pin and Go. Only the Go
# module proxy is needed; the module has no replace directives, so `go install` builds it as
# released, its checksums verified against the checksum database.
#
#   tests/cluster/build-kube-score.sh            build it if missing; last stdout line: the binary
#   tests/cluster/build-kube-score.sh --force    rebuild even if the stamp is present
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

# kube-score: newest release on the proxy (`go list -m -versions github.com/zegl/kube-score`).
KUBE_SCORE_VERSION=${KUBE_SCORE_VERSION:-v1.20.0}
AGENTTYPE_KUBE_SCORE_BIN=${AGENTTYPE_KUBE_SCORE_BIN:-$AGENTTYPE_CACHE/bin/kube-score-$KUBE_SCORE_VERSION}

FORCE=0
[[ ${1:-} == --force ]] && FORCE=1

export CGO_ENABLED=0
at_go_env
V=$KUBE_SCORE_VERSION
[[ $V =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || at_die "KUBE_SCORE_VERSION must look like v1.20.0, got $V"
stamp_text() { printf 'kube-score=%s go=%s\n' "$V" "$(go env GOVERSION)"; }

at_build_reuse "$AGENTTYPE_KUBE_SCORE_BIN" "$(stamp_text)" "$AGENTTYPE_KUBE_SCORE_BIN/kube-score" "$FORCE"

T0=$SECONDS
PARTIAL=$AGENTTYPE_KUBE_SCORE_BIN.partial
mkdir -p "$PARTIAL"
rm -f "$PARTIAL/kube-score" "$PARTIAL/.complete"
at_log "kube-score $V: building into $PARTIAL (go $(go env GOVERSION))"
# main.version as the release's own build sets it (cmd/kube-score/cmd_version.go).
GOBIN=$PARTIAL go install -trimpath -ldflags "-s -w -X main.version=${V#v}" \
  "github.com/zegl/kube-score/cmd/kube-score@$V"

got=$("$PARTIAL/kube-score" version)
at_log "version: $got"
[[ $got == *"${V#v}"* ]] || at_die "unexpected 'kube-score version' output: $got"

at_build_done "$PARTIAL" "$AGENTTYPE_KUBE_SCORE_BIN" "$(stamp_text)"
at_log "done in $((SECONDS - T0))s: $AGENTTYPE_KUBE_SCORE_BIN/kube-score"
echo "$AGENTTYPE_KUBE_SCORE_BIN/kube-score"
