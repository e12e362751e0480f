#!/usr/bin/env bash
# A machine outside the cluster, made on this one: a network namespace with its own address,
# Debian's sshd with its own config, host key, authorized_keys and port, and a containerd of its
# own (socket, root, state, CNI network), with the test images imported. The host tier's tests
# reach it over SSH only, as the operator reaches a real host.
#
#   tests/hosts/host.sh up          install what is missing (apt), start it all; idempotent
#   tests/hosts/host.sh down        stop it all: no process, netns, veth, mount or cgroup is left
#   tests/hosts/host.sh status      what runs; exit 1 unless all of it does
#   tests/hosts/host.sh env         the variables tests read (also in $STATE/host.env)
#   tests/hosts/host.sh sshd-stop   stop sshd and its sessions (containerd keeps running)
#   tests/hosts/host.sh sshd-start  start sshd again
#   tests/hosts/host.sh containerd-restart
#                                   kill containerd, its shims and every container (as a crash
#                                   or a reboot does), then start containerd again
#
# AGENTTYPE_HOST_CONTAINERD_BIN names a directory with another containerd, containerd-shim-runc-v2
# and ctr (tests/hosts/build-containerd.sh builds a 2.x); Debian's containerd otherwise.
#
# Nothing here is the cluster's: the cluster's containerd lives under /var/lib/agenttype-cluster;
# this one under $AGENTTYPE_HOST_STATE (default /var/lib/agenttype-host). The host's address is on
# a veth pair between the root namespace and the host's namespace only; the host has no default
# route, so neither it nor its containers can send traffic anywhere but this machine.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=../cluster/lib.sh
. "$HERE/../cluster/lib.sh"

STATE=${AGENTTYPE_HOST_STATE:-/var/lib/agenttype-host}
NETNS=${AGENTTYPE_HOST_NETNS:-agenttype-host}
VETH=${AGENTTYPE_HOST_VETH:-athost0}                 # root side; the host sees eth0
GATEWAY_IP=${AGENTTYPE_HOST_GATEWAY_IP:-10.231.0.1}  # this machine, seen from the host
HOST_IP=${AGENTTYPE_HOST_IP:-10.231.0.2}
SSH_PORT=${AGENTTYPE_HOST_SSH_PORT:-22}
POD_CIDR=${AGENTTYPE_HOST_POD_CIDR:-10.232.0.0/24}
POD_GATEWAY=${AGENTTYPE_HOST_POD_GATEWAY:-10.232.0.1}
POD_BRIDGE=${AGENTTYPE_HOST_POD_BRIDGE:-atpods0}
# Where the containerd driver puts the agents' cgroups on this host (its cgroupParent setting).
# Named after the namespace, so that two hosts on one machine never clean up each other's.
CGROUP_PARENT=${AGENTTYPE_HOST_CGROUP_PARENT:-$NETNS}
CONTAINERD_BIN=${AGENTTYPE_HOST_CONTAINERD_BIN:-}
PAUSE_IMAGE=${AGENTTYPE_PAUSE_IMAGE:-localhost/agenttype/pause:1.0}
TEST_IMAGE=${AGENTTYPE_TEST_IMAGE:-localhost/agenttype/testimage:latest}

RUN=$STATE/run
LOGS=$STATE/logs
SSHD_DIR=$STATE/sshd
CLIENT_DIR=$STATE/client
CTRD_DIR=$STATE/containerd
CTRD_SOCK=$CTRD_DIR/containerd.sock
CNI_DIR=$STATE/cni
ENV_FILE=$STATE/host.env

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
# containerd finds its shim on PATH: put the chosen build first.
[ -z "$CONTAINERD_BIN" ] || PATH=$CONTAINERD_BIN:$PATH
export PATH

log() { at_log "host: $*"; }
die() { at_die "host: $*"; }

in_ns() { ip netns exec "$NETNS" "$@"; }

need_packages() {
  [ "$(id -u)" = 0 ] || die "the host harness needs root (network namespaces, containerd)"
  local missing=()
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v ssh-keygen >/dev/null || missing+=(openssh-client)
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] ||
    missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v ip >/dev/null || missing+=(iproute2)
  # The consoles of interactive agents (docs/adr/0014-host-consoles.md).
  command -v tmux >/dev/null || missing+=(tmux)
  [ ${#missing[@]} = 0 ] && return 0
  # Debian starts the services it installs where it can; ours use their own configs and ports.
  at_apt_install "${missing[@]}"
}

lock() {
  mkdir -p "$STATE"
  chmod 0755 "$STATE"
  exec 8>"$STATE/.lock"
  flock -w 600 8 || die "another host.sh holds $STATE/.lock"
}

# ------------------------------------------------------------------ network
net_up() {
  # Another host on this machine (a KVM host, a benchmark's) with the same addresses would answer
  # in our place: refuse rather than reach the wrong sshd.
  local taken
  taken=$(ip -o -4 addr show to "$GATEWAY_IP/32" | awk -v own="$VETH" '$2 != own {print $2}')
  [ -z "$taken" ] || die "$GATEWAY_IP is already on $taken: choose other AGENTTYPE_HOST_GATEWAY_IP/AGENTTYPE_HOST_IP"
  if ! ip netns list | grep -qw "$NETNS"; then
    log "network namespace $NETNS: $HOST_IP, reached from this machine at $GATEWAY_IP"
    ip netns add "$NETNS"
  fi
  if ! ip link show "$VETH" >/dev/null 2>&1; then
    ip link add "$VETH" type veth peer name "$VETH-h"
    ip link set "$VETH-h" netns "$NETNS"
    in_ns ip link set "$VETH-h" name eth0
    ip addr add "$GATEWAY_IP/30" dev "$VETH"
    ip link set "$VETH" up
    in_ns ip addr add "$HOST_IP/30" dev eth0
  fi
  in_ns ip link set lo up
  in_ns ip link set eth0 up
  # Containers on the host reach this machine's $GATEWAY_IP through the host (masqueraded by
  # the CNI bridge); with no default route nothing goes further.
  in_ns sysctl -qw net.ipv4.ip_forward=1
}

net_down() {
  if ip netns list | grep -qw "$NETNS"; then ip netns del "$NETNS"; fi
  ip link del "$VETH" 2>/dev/null || true
}

# ------------------------------------------------------------------ processes
# pid_alive NAME: the pidfile names a live process whose program is NAME (by its comm: sshd
# rewrites its command line).
pid_alive() {
  local f=$RUN/$1.pid pid
  [ -s "$f" ] || return 1
  pid=$(<"$f")
  kill -0 "$pid" 2>/dev/null || return 1
  [ "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null)" != Z ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}

# start_in_ns NAME ARGV...: run detached inside the host's namespace, logging to $LOGS/NAME.log.
start_in_ns() {
  local name=$1; shift
  pid_alive "$name" && return 0
  mkdir -p "$RUN" "$LOGS"
  log "starting $name"
  echo "=== $(date -u +%FT%TZ) $*" >>"$LOGS/$name.log"
  # nsenter enters the network namespace only: `ip netns exec` would also give the daemon a
  # mount namespace with a fresh /sys, hiding the cgroup mounts runc needs. It execs the
  # program, so the pid is the daemon's. fd 8 is our lock: a daemon must not hold it.
  setsid nsenter --net="/run/netns/$NETNS" -- "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 8>&- &
  echo $! >"$RUN/$name.pid"
}

# stop_pid NAME: TERM, KILL after 10 s.
stop_pid() {
  local name=$1 pid
  pid_alive "$name" || { rm -f "$RUN/$name.pid"; return 0; }
  pid=$(<"$RUN/$name.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$RUN/$name.pid"
}

# stop_pid_now NAME: KILL, as a crash does.
stop_pid_now() {
  local name=$1 pid
  pid_alive "$name" || { rm -f "$RUN/$name.pid"; return 0; }
  pid=$(<"$RUN/$name.pid")
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$RUN/$name.pid"
}

# ------------------------------------------------------------------ sshd
sshd_config() {
  # sshd's privilege separation directory; created when the system has none, removed by down.
  if [ ! -d /run/sshd ]; then mkdir -p /run/sshd && chmod 0755 /run/sshd && touch "$STATE/.created-run-sshd"; fi
  mkdir -p "$SSHD_DIR" "$CLIENT_DIR"
  chmod 0755 "$SSHD_DIR"; chmod 0700 "$CLIENT_DIR"
  [ -s "$SSHD_DIR/ssh_host_ed25519_key" ] ||
    ssh-keygen -q -t ed25519 -N '' -C "agenttype-test-host" -f "$SSHD_DIR/ssh_host_ed25519_key"
  [ -s "$CLIENT_DIR/id_ed25519" ] ||
    ssh-keygen -q -t ed25519 -N '' -C "agenttype-host-tests" -f "$CLIENT_DIR/id_ed25519"
  [ -s "$SSHD_DIR/authorized_keys" ] || cp "$CLIENT_DIR/id_ed25519.pub" "$SSHD_DIR/authorized_keys"
  chmod 0644 "$SSHD_DIR/authorized_keys"
  cat >"$SSHD_DIR/sshd_config" <<CONF
# Generated by tests/hosts/host.sh: the test host's sshd, not the system's.
ListenAddress $HOST_IP:$SSH_PORT
HostKey $SSHD_DIR/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile $SSHD_DIR/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowStreamLocalForwarding yes
# Stream-local forwarding is allowed only where TCP forwarding is (sshd grants its
# permission to both); the host has no route anywhere but this machine.
AllowTcpForwarding local
X11Forwarding no
MaxSessions 10
MaxStartups 50:30:100
Subsystem sftp internal-sftp
LogLevel VERBOSE
CONF
  /usr/sbin/sshd -t -f "$SSHD_DIR/sshd_config" || die "sshd rejects $SSHD_DIR/sshd_config"
}

sshd_up() {
  start_in_ns sshd /usr/sbin/sshd -D -e -f "$SSHD_DIR/sshd_config"
  at_wait_for "sshd on $HOST_IP:$SSH_PORT" 20 bash -c "exec 3<>/dev/tcp/$HOST_IP/$SSH_PORT" ||
    die "sshd did not start; see $LOGS/sshd.log"
}

# Every sshd of the host: the listener and each session's processes.
sshd_pids() {
  local p
  for p in $(ip netns pids "$NETNS" 2>/dev/null); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = sshd ] && echo "$p"
  done
  return 0
}

sshd_down() {
  stop_pid sshd
  local pids; pids=$(sshd_pids)
  # shellcheck disable=SC2086
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
}

# ------------------------------------------------------------------ containerd
containerd_config() {
  mkdir -p "$CTRD_DIR"/{root,state,runc,opt} "$CNI_DIR/net.d" "$CNI_DIR/ipam"
  cat >"$CNI_DIR/net.d/10-agenttype-host.conflist" <<CONF
{
  "cniVersion": "1.0.0",
  "name": "agenttype-host",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$POD_BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$CNI_DIR/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    }
  ]
}
CONF
  cat >"$CTRD_DIR/config.toml" <<CONF
# Generated by tests/hosts/host.sh: the test host's containerd, not the system's or the cluster's.
version = 2
root = "$CTRD_DIR/root"
state = "$CTRD_DIR/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  address = ""
  level = "info"
[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$CTRD_DIR/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$PAUSE_IMAGE"
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false
    disable_apparmor = true
    # These machines lack CAP_SYS_RESOURCE in the bounding set (see tests/cluster/node.sh).
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = "$(command -v runc)"
          Root = "$CTRD_DIR/runc"
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$CNI_DIR/net.d"
      max_conf_num = 1
CONF
}

ctr_host() { ctr -a "$CTRD_SOCK" -n k8s.io "$@"; }
containerd_version() { containerd --version | awk '{print $3}'; }
containerd_ok() { ctr -a "$CTRD_SOCK" version >/dev/null 2>&1; }

containerd_up() {
  start_in_ns containerd "$(command -v containerd)" --config "$CTRD_DIR/config.toml"
  at_wait_for "containerd at $CTRD_SOCK" 30 containerd_ok || die "containerd did not start; see $LOGS/containerd.log"
}

# Removes every container and sandbox, then stops containerd and whatever outlived it.
containerd_down() {
  if containerd_ok; then
    local ids id
    ids=$(ctr_host tasks ls -q 2>/dev/null || true)
    for id in $ids; do ctr_host tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
    for id in $ids; do ctr_host tasks rm -f "$id" >/dev/null 2>&1 || true; done
    for id in $(ctr_host containers ls -q 2>/dev/null || true); do ctr_host containers rm "$id" >/dev/null 2>&1 || true; done
  fi
  stop_pid containerd
  local ns
  for ns in "$CTRD_DIR"/runc/*/; do
    [ -d "$ns" ] || continue
    for id in $(runc --root "$ns" list -q 2>/dev/null); do
      runc --root "$ns" kill "$id" KILL 2>/dev/null || true
      runc --root "$ns" delete -f "$id" 2>/dev/null || true
    done
  done
  # Processes left in the agents' cgroups (shims killed before their containers), then the cgroups.
  local c p
  for c in /sys/fs/cgroup/*/"$CGROUP_PARENT"; do
    [ -d "$c" ] || continue
    while read -r p; do kill -KILL "$p" 2>/dev/null || true; done < <(find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null)
  done
  sleep 0.2
  for c in /sys/fs/cgroup/*/"$CGROUP_PARENT"; do
    if [ -d "$c" ]; then find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true; fi
  done
}

# Kills containerd, its shims and what runs in the agents' cgroups, leaving containerd's state
# (its containers and sandboxes, now dead) for the next containerd to find, then starts it.
containerd_restart() {
  stop_pid_now containerd
  local p
  for p in $(ip netns pids "$NETNS" 2>/dev/null); do
    [[ $(cat "/proc/$p/comm" 2>/dev/null) == containerd-shim* ]] && kill -KILL "$p" 2>/dev/null
  done
  local c
  for c in /sys/fs/cgroup/*/"$CGROUP_PARENT"; do
    [ -d "$c" ] || continue
    while read -r p; do kill -KILL "$p" 2>/dev/null || true; done < <(find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null)
  done
  containerd_up
}

# ------------------------------------------------------------------ images
images_up() {
  # images.sh imports into the containerd at AGENTTYPE_CONTAINERD_SOCK and keeps its stamps under
  # AGENTTYPE_STATE/containerd/imported: point both at this host.
  local images=(env AGENTTYPE_STATE="$STATE" AGENTTYPE_CONTAINERD_SOCK="$CTRD_SOCK"
    AGENTTYPE_PAUSE_IMAGE="$PAUSE_IMAGE" AGENTTYPE_TEST_IMAGE="$TEST_IMAGE" "$REPO/tests/cluster/images.sh")
  "${images[@]}" pause >&2
  "${images[@]}" test >&2
  "${images[@]}" import "$PAUSE_IMAGE" "$TEST_IMAGE" >&2
  # The operator's host tests run the project's sidecar and wrapper and a sample agent, as the
  # pod path does (built once by buildah, the layer cache shared with the e2e tier's builds).
  "${images[@]}" project >&2
  "${images[@]}" e2e >&2
  local image
  for image in "$PAUSE_IMAGE" "$TEST_IMAGE" localhost/agenttype/sidecar:dev localhost/agenttype/wrapper:dev \
    localhost/agenttype/e2e-agent-node:dev; do
    [ -n "$(ctr_host images ls -q "name==$image")" ] || die "$image is not in the host's containerd"
  done
}

# ------------------------------------------------------------------ env
write_env() {
  local version
  version=$(containerd_version)
  cat >"$ENV_FILE.tmp" <<ENV
AGENTTYPE_HOST_ADDRESS=$HOST_IP
AGENTTYPE_HOST_SSH_PORT=$SSH_PORT
AGENTTYPE_HOST_USER=root
AGENTTYPE_HOST_KEY=$(cut -d' ' -f1,2 "$SSHD_DIR/ssh_host_ed25519_key.pub")
AGENTTYPE_HOST_CLIENT_KEY=$CLIENT_DIR/id_ed25519
AGENTTYPE_HOST_AUTHORIZED_KEYS=$SSHD_DIR/authorized_keys
AGENTTYPE_HOST_CONTAINERD_SOCKET=$CTRD_SOCK
AGENTTYPE_HOST_CONTAINERD_VERSION=$version
AGENTTYPE_HOST_CGROUP_PARENT=/$CGROUP_PARENT
AGENTTYPE_HOST_GATEWAY_IP=$GATEWAY_IP
AGENTTYPE_HOST_TEST_IMAGE=$TEST_IMAGE
AGENTTYPE_HOST_STATE=$STATE
ENV
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

up() {
  need_packages
  lock
  local t0=$SECONDS
  net_up
  sshd_config
  sshd_up
  containerd_config
  containerd_up
  images_up
  write_env
  log "up in $((SECONDS - t0))s: ssh root@$HOST_IP -p $SSH_PORT, containerd $(containerd_version)"
  cat "$ENV_FILE"
}

down() {
  lock
  sshd_down
  containerd_down
  # Anything else still running in the namespace.
  local pids; pids=$(ip netns pids "$NETNS" 2>/dev/null || true)
  # shellcheck disable=SC2086
  [ -z "$pids" ] || { kill -KILL $pids 2>/dev/null || true; sleep 0.2; }
  net_down
  local m n=0
  while read -r m; do
    [ -n "$m" ] || continue
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    n=$((n + 1))
  done < <(awk -v d="$STATE/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r)
  [ $n = 0 ] || log "unmounted $n leftover mount(s)"
  # Another test host's sshd (the guest tier's, the bench's) may still need it.
  if [ -f "$STATE/.created-run-sshd" ]; then
    pgrep -x sshd >/dev/null || rmdir /run/sshd 2>/dev/null || true
    rm -f "$STATE/.created-run-sshd"
  fi
  # Keep the image store (the next up skips the import) and the logs; drop the rest, the drivers'
  # state directories (agenttype*: the tests' and the benchmark's) included.
  rm -rf "$CTRD_DIR/state" "$CTRD_DIR/opt" "$CTRD_DIR/runc" "$CNI_DIR" "$RUN" "$ENV_FILE" "$STATE"/agenttype*
  log "down"
}

status() {
  local ok=0
  if ip netns list | grep -qw "$NETNS"; then echo "netns $NETNS: present"; else echo "netns $NETNS: absent"; ok=1; fi
  if pid_alive sshd; then echo "sshd: running (pid $(<"$RUN/sshd.pid"))"; else echo "sshd: stopped"; ok=1; fi
  if pid_alive containerd && containerd_ok; then echo "containerd: running"; else echo "containerd: stopped"; ok=1; fi
  return $ok
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  env) cat "$ENV_FILE" ;;
  sshd-stop) sshd_down ;;
  sshd-start) sshd_up ;;
  containerd-restart) containerd_restart ;;
  *) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
