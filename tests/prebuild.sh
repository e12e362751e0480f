#!/usr/bin/env bash
# Builds ahead, in the background and at the lowest CPU priority, what the test tiers would
# otherwise build cold on their critical path: the Go tools (`make tools`), the buildah images,
# kind's node image inputs (its root filesystem and kubeadm), the guest image's root filesystem
# and the Python venvs. `make test` starts it before the first tier and stops it after the last. Each step is
# the same script a tier calls, and each holds its build's lock (tests/cluster/lib.sh,
# at_build_lock), so a tier that needs a thing still being built here waits for it instead of
# building it twice. While tests use the CPU, the kernel gives them precedence (nice 19); idle
# CPU between their requests goes to the builds.
#
#   tests/prebuild.sh start   start the builds in the background (a second start does nothing)
#   tests/prebuild.sh stop    stop them if still running; print each step's time and result
#
# A step that fails here is only logged: the tier that needs it builds it again in the
# foreground and fails there with the build's own error. Log: $AGENTTYPE_CACHE/prebuild.log.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
# shellcheck source=cluster/lib.sh
source "$HERE/cluster/lib.sh"

LOG=$AGENTTYPE_CACHE/prebuild.log
PIDFILE=$AGENTTYPE_CACHE/prebuild.pid

# In the order the tiers need them: integration the components, lint kube-score, hosts the
# buildah images, e2e CoreDNS and Tilt, kind kind and the node image's inputs, smoke the guest
# image's root filesystem and LiteLLM's venv.
STEPS=(
  "tests/cluster/build-components.sh"
  "sidecar/testing/python/venv.sh"
  "tests/cluster/build-kube-score.sh"
  "tests/cluster/images.sh all"
  "tests/cluster/images.sh project"
  "tests/cluster/images.sh e2e"
  "tests/cluster/build-coredns.sh"
  "tests/cluster/build-tilt.sh"
  "tests/kind/build-kind.sh"
  "tests/kind/node-image.sh inputs"
  "operator/drivers/kvm/guest/build-image.sh rootfs"
  "sidecar/testing/python/venv.sh tests/bench/litellm-requirements.txt"
)

run_steps() {
  local step t0 status
  for step in "${STEPS[@]}"; do
    t0=$SECONDS
    # shellcheck disable=SC2086 # a step is a command and its words
    if (cd "$REPO" && exec $step) >/dev/null 2>>"$LOG.steps"; then status=ok; else status="failed ($?)"; fi
    printf 'prebuild: %-70s %s in %ss\n' "$step" "$status" "$((SECONDS - t0))" >>"$LOG"
  done
  printf 'prebuild: done\n' >>"$LOG"
}

running() { [[ -s $PIDFILE ]] && at_proc_running "$(<"$PIDFILE")"; }

case ${1:-} in
  start)
    mkdir -p "$AGENTTYPE_CACHE"
    if running; then at_log "prebuild: already running (pid $(<"$PIDFILE"))"; exit 0; fi
    : >"$LOG"; : >"$LOG.steps"
    # Its own session and process group, so that stop can end it and every build it started.
    setsid nice -n 19 ionice -c 3 "$0" run </dev/null >/dev/null 2>&1 &
    echo $! >"$PIDFILE"
    at_log "prebuild: building ahead in the background (pid $!, log $LOG)" ;;
  run) run_steps ;;
  stop)
    if running; then
      at_log "prebuild: still running after the last tier; stopping it"
      kill -TERM -- "-$(<"$PIDFILE")" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
    [[ ! -f $LOG ]] || sed 's/^/  /' "$LOG" >&2 ;;
  *) at_die "usage: $0 start|stop" ;;
esac
