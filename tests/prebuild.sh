#!/usr/bin/env bash
# Builds ahead, in the background, what the test tiers would otherwise build cold on their
# critical path: the Go tools (`make tools`), the buildah images, kind's node image inputs (its
# root filesystem, kubeadm and the storage provisioner), the guest image's root filesystem and the Python venvs. `make
# test` starts it before the first tier and stops it after the last. Each step is the same script a tier calls, and each holds its build's lock (tests/cluster/lib.sh,
# at_build_lock), so a tier that needs a thing still being built here waits for it instead of
# building it twice. While tests use the CPU, the kernel gives them precedence (nice 19); idle
# CPU between their requests goes to the builds. The one build every tier after the unit tests
# waits for, the Kubernetes components, runs at normal priority.
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

# In the order the tiers need them, each with its nice level: the components first and at the
# tiers' own priority, since the integration tier cannot start without them (the unit tier, which
# runs meanwhile, is not waited for); the rest at 19, behind the tiers: lint needs kube-score,
# hosts the buildah images, e2e CoreDNS and Tilt, kind kind and the node image's inputs, smoke
# the guest image's root filesystem and LiteLLM's venv.
STEPS=(
  "0 tests/cluster/build-components.sh"
  "19 sidecar/testing/python/venv.sh"
  "19 tests/cluster/build-kube-score.sh"
  "19 tests/cluster/images.sh all"
  "19 tests/cluster/images.sh project"
  "19 tests/cluster/images.sh e2e"
  "19 tests/cluster/build-coredns.sh"
  "19 tests/cluster/build-tilt.sh"
  "19 tests/kind/build-kind.sh"
  "19 tests/kind/node-image.sh inputs"
  "19 operator/drivers/kvm/guest/build-image.sh rootfs"
  "19 sidecar/testing/python/venv.sh tests/bench/litellm-requirements.txt"
)

run_steps() {
  local step level command t0 status
  for step in "${STEPS[@]}"; do
    read -r level command <<<"$step"
    t0=$SECONDS
    # shellcheck disable=SC2086 # a step is a command and its words
    if (cd "$REPO" && exec nice -n "$level" $command) >/dev/null 2>>"$LOG.steps"; then
      status=ok
    else
      status="failed ($?)"
    fi
    printf 'prebuild: %-70s %s in %ss\n' "$command" "$status" "$((SECONDS - t0))" >>"$LOG"
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
    setsid "$0" run </dev/null >/dev/null 2>&1 &
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
