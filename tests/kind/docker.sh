#!/usr/bin/env bash
# A Docker engine of the harness's own, for the kind tier: Debian's docker.io (installed with apt
# when missing), its dockerd started with every path its own: exec root, pidfile, socket and client
# config under $AGENTTYPE_KIND_STATE, the data root (images, build cache: kept across runs) under
# $AGENTTYPE_CACHE/docker, so it never touches a user's Docker.
#
#   tests/kind/docker.sh up       install docker.io if missing, start dockerd; idempotent; the last
#                                 stdout line is the DOCKER_HOST to use
#   tests/kind/docker.sh down     remove its containers and networks, stop it, and put back what it
#                                 changed (bridges, mounts, iptables); idempotent
#   tests/kind/docker.sh status   exit 0 when our dockerd answers
#   tests/kind/docker.sh env      DOCKER_HOST, DOCKER_CONFIG and the docker client to use
#
# This machine is shared with tiers whose networking (the full-node cluster's bridge CNI, test
# hosts in network namespaces) needs the iptables FORWARD chain to accept their traffic. A stock
# dockerd sets the FORWARD policy to DROP and adds DOCKER* chains. This one never touches
# iptables or the forwarding sysctls (--iptables=false, --ip-forward=false, --ip-masq=false):
# kind's nodes share one Docker bridge (layer 2, no forwarding), the host reaches a node's
# published API server port through docker-proxy (user space), and image builds reach the package
# registries on the host network (`docker build --network host`). Nothing leaves the machine from
# a container through NAT, which a cluster made only of local images does not need.
# Its default bridge is a bridge of its own ($BRIDGE, not docker0, which a user's Docker owns), and
# the networks it creates (kind's) take subnets from $POOL, apart from the other tiers' addresses.
# Its runtime is runc through node/files/runc-bounded, so privileged containers (kind's nodes) run
# on machines whose capability bounding set is not full.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
AGENTTYPE_STATE=${AGENTTYPE_KIND_STATE:-/var/lib/agenttype-kind}
# shellcheck source=../cluster/lib.sh
. "$HERE/../cluster/lib.sh"

STATE=$AGENTTYPE_STATE
SOCK=$STATE/docker.sock
DATA_ROOT=${AGENTTYPE_KIND_DOCKER_ROOT:-$AGENTTYPE_CACHE/docker}
EXEC_ROOT=$STATE/exec
FOUND=$STATE/found          # what the machine was like before our first start
BRIDGE=${AGENTTYPE_KIND_BRIDGE:-at-kind0}
BRIDGE_CIDR=${AGENTTYPE_KIND_BRIDGE_CIDR:-10.250.255.1/24}
POOL=${AGENTTYPE_KIND_POOL:-10.250.0.0/16}
# Debian's client (20.10): it builds with BuildKit itself. A newer client without the buildx
# plugin refuses `docker build` with BuildKit, and the Dockerfile needs BuildKit (RUN --mount).
DOCKER=${AGENTTYPE_DOCKER:-/usr/bin/docker}
DOCKERD=${AGENTTYPE_DOCKERD:-/usr/sbin/dockerd}
export DOCKER_HOST=unix://$SOCK DOCKER_CONFIG=$STATE/client
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

log() { at_log "docker: $*"; }
die() { at_die "docker: $*"; }

# Debian's docker.io. Its postinst starts the system's docker service unless policy-rc.d says no:
# that service would be a stock dockerd (FORWARD policy DROP), so a policy-rc.d denying every start
# is in place for the install when the machine has none.
install_docker() {
  [[ -x $DOCKERD && -x $DOCKER && -x /usr/sbin/docker-proxy ]] && return 0
  if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
    die "docker.io is missing (apt-get install docker.io)"
  fi
  local guard=/usr/sbin/policy-rc.d added=0
  if [[ ! -e $guard ]]; then
    printf '#!/bin/sh\n# agenttype tests/kind/docker.sh: no service starts during its install\nexit 101\n' > "$guard"
    chmod 755 "$guard"
    added=1
  fi
  local ok=0
  # A subshell: a failed install exits it, and the guard still goes.
  (at_apt_install docker.io) || ok=$?
  if (( added )); then rm -f "$guard"; fi
  (( ok == 0 )) || die "could not install docker.io"
}

forward_policy() { iptables -S FORWARD | sed -n 's/^-P FORWARD //p'; }
docker_chains() { { iptables-save; ip6tables-save; } 2>/dev/null | sed -n 's/^:\(DOCKER[^ ]*\) .*/\1/p' | sort -u; }

# record_found: once per up/down cycle, what down must find again.
record_found() {
  [[ -s $FOUND ]] && return 0
  mkdir -p "$STATE"
  {
    echo "forward_policy=$(forward_policy)"
    echo "docker_chains=$(docker_chains | tr '\n' ' ')"
    echo "bridge_existed=$([[ -e /sys/class/net/$BRIDGE ]] && echo 1 || echo 0)"
    echo "lib_modules_existed=$([[ -e /lib/modules ]] && echo 1 || echo 0)"
  } > "$FOUND.tmp"
  mv "$FOUND.tmp" "$FOUND"
}
found() { sed -n "s/^$1=//p" "$FOUND" 2>/dev/null; }

answers() { timeout 10 "$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

up() {
  install_docker
  if at_pid_alive dockerd && answers; then
    log "dockerd already running"
    echo "$DOCKER_HOST"
    return 0
  fi
  # A dockerd of ours that died leaves its mounts and pidfile; start from a clean slate.
  at_stop dockerd
  unmount_state
  record_found
  mkdir -p "$DATA_ROOT" "$EXEC_ROOT" "$DOCKER_CONFIG"
  # The client's config (no credentials: nothing is pulled); buildah, run with this environment by
  # the image scripts, also reads it as its auth file and refuses a DOCKER_CONFIG without one.
  [[ -s $DOCKER_CONFIG/config.json ]] || echo '{}' > "$DOCKER_CONFIG/config.json"
  echo '{}' > "$STATE/daemon.json"            # never the machine's /etc/docker/daemon.json
  # kind bind-mounts /lib/modules into every node; a machine without kernel modules on disk has
  # none, and docker refuses a bind mount of a missing path. An empty one is made (and removed).
  mkdir -p /lib/modules
  if [[ ! -e /sys/class/net/$BRIDGE ]]; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
  at_track_starts
  at_start dockerd "$DOCKERD" \
    --config-file "$STATE/daemon.json" \
    --host "$DOCKER_HOST" --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" \
    --pidfile "$STATE/dockerd.pid" \
    --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --bridge "$BRIDGE" --default-address-pool "base=$POOL,size=24" \
    --userland-proxy=true --userland-proxy-path /usr/sbin/docker-proxy \
    --add-runtime "agenttype-runc=$HERE/node/files/runc-bounded" --default-runtime agenttype-runc \
    --storage-driver overlay2 --exec-opt native.cgroupdriver=cgroupfs --log-level warn
  at_wait_ready dockerd 60 answers
  check_untouched
  log "dockerd $("$DOCKER" version --format '{{.Server.Version}}') at $DOCKER_HOST"
  echo "$DOCKER_HOST"
}

# check_untouched: our dockerd changed nothing of the host's packet filter. The forwarding sysctls
# are not checked or restored here: this dockerd never writes them (--ip-forward=false), and the
# project's cluster (tests/cluster/node.sh) sets net.ipv4.ip_forward and puts it back itself, maybe
# while this engine runs; restoring our first reading would undo that and cut its pods off.
check_untouched() {
  local policy chains
  policy=$(forward_policy)
  chains=$(docker_chains | tr '\n' ' ')
  [[ $policy == "$(found forward_policy)" ]] || die "the FORWARD policy changed to $policy"
  [[ $chains == "$(found docker_chains)" ]] || die "DOCKER chains appeared: $chains"
}

unmount_state() {
  local m
  # Deepest first; only mounts under our state and data directories.
  awk -v s="$STATE/" -v d="$DATA_ROOT/" 'index($2, s) == 1 || index($2, d) == 1 {print $2}' /proc/self/mounts |
    sort -r | while IFS= read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" || true
  done
}

down() {
  if at_pid_alive dockerd && answers; then
    local ids
    ids=$("$DOCKER" ps -aq)
    if [[ -n $ids ]]; then
      log "removing containers: $(echo "$ids" | tr '\n' ' ')"
      # shellcheck disable=SC2086  # one id per word
      timeout 120 "$DOCKER" rm -f -v $ids >/dev/null || true
    fi
    # Networks it created (kind's): each has a bridge of its own that only dockerd removes.
    # Their names (br- and the id's first 12 characters) are noted, for a dockerd that dies first.
    local c
    ids=$("$DOCKER" network ls -q --no-trunc --filter type=custom)
    if [[ -n $ids ]]; then
      for c in $ids; do echo "br-${c:0:12}"; done >> "$STATE/bridges"
      # shellcheck disable=SC2086
      timeout 60 "$DOCKER" network rm $ids >/dev/null || true
    fi
  fi
  at_stop dockerd 30
  # Its managed containerd and shims, when dockerd was killed before it could stop them.
  stop_leftover_processes
  unmount_state
  restore_found
  rm -rf "$EXEC_ROOT" "$STATE/dockerd.pid"
  log "down"
}

# stop_leftover_processes: containerd and shims started with our exec root in their arguments.
stop_leftover_processes() {
  local pid
  for pid in $(pgrep -f -- "$EXEC_ROOT/" || true); do
    log "stopping leftover $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | cut -c1-80) (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
  done
}

# other_engines: a dockerd of this harness with another state directory is running.
other_engines() { pgrep -f -- "add-runtime agenttype-runc=" >/dev/null; }

restore_found() {
  [[ -s $FOUND ]] || return 0
  local want c
  # Bridges: ours, and any left by a network of ours.
  if [[ $(found bridge_existed) == 0 && -e /sys/class/net/$BRIDGE ]]; then ip link del "$BRIDGE"; fi
  if [[ -s $STATE/bridges ]]; then
    while read -r c; do
      if [[ -e /sys/class/net/$c ]]; then log "removing bridge $c"; ip link del "$c" || true; fi
    done < "$STATE/bridges"
    rm -f "$STATE/bridges"
  fi
  # /lib/modules is the machine's, shared by every engine of this harness (another state directory,
  # e.g. a second checkout's tier): it goes only when no other one runs, whose nodes still need it.
  if [[ $(found lib_modules_existed) == 0 ]]; then
    if other_engines; then log "keeping /lib/modules: another engine of the harness runs"
    else rmdir /lib/modules 2>/dev/null || true; fi
  fi
  want=$(found forward_policy)
  if [[ -n $want && $(forward_policy) != "$want" ]]; then
    log "restoring the FORWARD policy to $want"; iptables -P FORWARD "$want"
  fi
  for c in $(docker_chains); do
    if [[ " $(found docker_chains) " != *" $c "* ]]; then
      log "removing iptables chain $c"
      iptables -F "$c" 2>/dev/null || true
      iptables -X "$c" 2>/dev/null || true
    fi
  done
  rm -f "$FOUND"
}

status() {
  if at_pid_alive dockerd && answers; then
    echo "dockerd: running at $DOCKER_HOST"
  else
    echo "dockerd: stopped"
    return 1
  fi
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  env) printf 'DOCKER_HOST=%s\nDOCKER_CONFIG=%s\nAGENTTYPE_DOCKER=%s\n' "$DOCKER_HOST" "$DOCKER_CONFIG" "$DOCKER" ;;
  *) die "usage: $0 up|down|status|env" ;;
esac
