#!/usr/bin/env bash
# A KVM host made on this machine: the host tier's test host (tests/hosts/host.sh: a network
# namespace with its own sshd) under its own name and addresses, with Debian's libvirtd and
# QEMU running inside that namespace, a NAT network for the guests, and the guest image the
# KVM driver boots (operator/drivers/kvm/guest/build-image.sh). The guest tier's tests reach
# libvirt over SSH only, as the operator reaches a real KVM host.
#
#   tests/guests/kvm-host.sh up        install what is missing (apt), start it all; idempotent
#   tests/guests/kvm-host.sh down      stop every guest, libvirtd and the host; nothing is left
#   tests/guests/kvm-host.sh status    what runs; exit 1 unless all of it does
#   tests/guests/kvm-host.sh env       the variables tests read (also in $STATE/kvm.env)
#   tests/guests/kvm-host.sh libvirtd-restart   stop libvirtd (guests keep running) and start it again
#
# libvirtd uses the system paths (/run/libvirt, /var/lib/libvirt, /etc/libvirt): one KVM host
# per machine. The harness sets in /etc/libvirt/qemu.conf what a machine without systemd needs
# (QEMU as root, no cgroups, no private /dev, no virtlogd) between marker lines.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=../cluster/lib.sh
. "$HERE/../cluster/lib.sh"

# The host tier's host.sh, under names and addresses of our own.
export AGENTTYPE_HOST_STATE=${AGENTTYPE_KVM_HOST_STATE:-/var/lib/agenttype-kvmhost}
export AGENTTYPE_HOST_NETNS=${AGENTTYPE_KVM_HOST_NETNS:-agenttype-kvmhost}
export AGENTTYPE_HOST_VETH=atkvm0
export AGENTTYPE_HOST_GATEWAY_IP=10.241.0.1
export AGENTTYPE_HOST_IP=10.241.0.2
export AGENTTYPE_HOST_POD_CIDR=10.242.0.0/24
export AGENTTYPE_HOST_POD_GATEWAY=10.242.0.1
export AGENTTYPE_HOST_POD_BRIDGE=atkvmpods0
STATE=$AGENTTYPE_HOST_STATE
NETNS=$AGENTTYPE_HOST_NETNS
HOST_SH=$REPO/tests/hosts/host.sh
NETWORK=${AGENTTYPE_KVM_NETWORK:-agenttype}
NETWORK_BRIDGE=atkvmbr0
NETWORK_ADDRESS=10.243.0.1
URI=qemu:///system
ENV_FILE=$STATE/kvm.env
RUN=$STATE/run
LOGS=$STATE/logs
QEMU_CONF=/etc/libvirt/qemu.conf
MARK_BEGIN="# BEGIN agenttype tests/guests/kvm-host.sh"
MARK_END="# END agenttype tests/guests/kvm-host.sh"

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export PATH

log() { at_log "kvm-host: $*"; }
die() { at_die "kvm-host: $*"; }

need_packages() {
  [ "$(id -u)" = 0 ] || die "the KVM host harness needs root"
  local missing=()
  command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
  command -v qemu-img >/dev/null || missing+=(qemu-utils)
  command -v libvirtd >/dev/null || missing+=(libvirt-daemon libvirt-daemon-driver-qemu)
  command -v virsh >/dev/null || missing+=(libvirt-clients)
  command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq-base)
  command -v iptables >/dev/null || missing+=(iptables)
  [ ${#missing[@]} = 0 ] && return 0
  at_apt_install "${missing[@]}"
}

qemu_conf() {
  # libvirtd resolves its built-in QEMU user before it reads qemu.conf; libvirt-daemon-system
  # (not installed: it brings systemd units and polkit) would create it.
  if ! getent passwd libvirt-qemu >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /var/lib/libvirt --shell /usr/sbin/nologin libvirt-qemu
  fi
  # cpu and cpuacct only: the other cgroup v1 hierarchies of these machines do not hold
  # libvirtd's processes. libvirtd needs a controller to find a running guest's cgroup when it
  # restarts; without one it kills the guests it cannot re-adopt.
  local block
  block=$(printf '%s\n' "$MARK_BEGIN" 'user = "root"' 'group = "root"' 'dynamic_ownership = 0' \
    'security_driver = "none"' 'cgroup_controllers = [ "cpu", "cpuacct" ]' 'namespaces = [ ]' \
    'stdio_handler = "file"' "$MARK_END")
  touch "$QEMU_CONF"
  sed -i "\\|^$MARK_BEGIN\$|,\\|^$MARK_END\$|d" "$QEMU_CONF"
  printf '%s\n' "$block" >>"$QEMU_CONF"
}

virsh_host() { virsh -q -c "$URI" "$@"; }

libvirtd_pid() {
  local f=$RUN/libvirtd.pid pid
  [ -s "$f" ] || return 1
  pid=$(<"$f")
  kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = libvirtd ] && echo "$pid"
}

libvirtd_up() {
  libvirtd_pid >/dev/null && return 0
  if pgrep -x libvirtd >/dev/null; then die "a libvirtd not started by this harness runs on this machine"; fi
  mkdir -p "$RUN" "$LOGS"
  log "starting libvirtd in $NETNS"
  echo "=== $(date -u +%FT%TZ) libvirtd" >>"$LOGS/libvirtd.log"
  # The network namespace only (as host.sh starts containerd): QEMU and dnsmasq run in it, so
  # guests see the host's network and nothing else. fd 8/9 are locks a daemon must not hold.
  setsid nsenter --net="/run/netns/$NETNS" -- libvirtd >>"$LOGS/libvirtd.log" 2>&1 </dev/null 8>&- 9>&- &
  echo $! >"$RUN/libvirtd.pid"
  at_wait_for "libvirtd" 30 virsh_host version || die "libvirtd did not start; see $LOGS/libvirtd.log"
}

libvirtd_down() {
  local pid i
  pid=$(libvirtd_pid) || { rm -f "$RUN/libvirtd.pid"; return 0; }
  kill -TERM "$pid"
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$RUN/libvirtd.pid"
  [ -n "${i:-}" ]
}

network_up() {
  if ! virsh_host net-info "$NETWORK" >/dev/null 2>&1; then
    log "libvirt network $NETWORK: $NETWORK_ADDRESS/24 with DHCP, NAT to the host's network"
    cat >"$STATE/network.xml" <<XML
<network>
  <name>$NETWORK</name>
  <forward mode='nat'/>
  <bridge name='$NETWORK_BRIDGE' stp='off' delay='0'/>
  <ip address='$NETWORK_ADDRESS' netmask='255.255.255.0'>
    <dhcp><range start='10.243.0.10' end='10.243.0.250'/></dhcp>
  </ip>
</network>
XML
    virsh_host net-define "$STATE/network.xml" >&2
  fi
  local info; info=$(virsh_host net-info "$NETWORK")
  grep -q '^Active:.*yes' <<<"$info" || virsh_host net-start "$NETWORK" >&2
}

# Guests keep running without libvirtd (QEMU is its own process); stop them all.
guests_down() {
  local d
  for d in $(virsh_host list --all --name 2>/dev/null); do
    virsh_host destroy "$d" >/dev/null 2>&1 || true
    virsh_host undefine --nvram --managed-save "$d" >/dev/null 2>&1 || virsh_host undefine "$d" >/dev/null 2>&1 || true
  done
}

write_env() {
  local image=$1
  "$HOST_SH" env >"$ENV_FILE.tmp"
  cat >>"$ENV_FILE.tmp" <<ENV
AGENTTYPE_KVM_URI=$URI
AGENTTYPE_KVM_NETWORK=$NETWORK
AGENTTYPE_KVM_IMAGE=$image/disk.qcow2
AGENTTYPE_KVM_LIBVIRT_VERSION=$(virsh_host version | awk '/Using library/ {print $4}')
AGENTTYPE_KVM_QEMU_VERSION=$(qemu-system-x86_64 --version | awk 'NR==1 {print $4}')
ENV
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

up() {
  need_packages
  local t0=$SECONDS image
  image=$("$REPO/operator/drivers/kvm/guest/build-image.sh" | tail -n 1)
  # The host's sshd is what a KVM host needs of it: a running host is not brought up again.
  "$HOST_SH" status >/dev/null 2>&1 || "$HOST_SH" up >/dev/null
  exec 9>"$STATE/.kvm-lock"
  flock -w 600 9 || die "another kvm-host.sh holds $STATE/.kvm-lock"
  qemu_conf
  libvirtd_up
  network_up
  write_env "$image"
  log "up in $((SECONDS - t0))s: libvirt on root@$AGENTTYPE_HOST_IP, guest image $image"
  cat "$ENV_FILE"
}

down() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.kvm-lock"
  flock -w 600 9 || die "another kvm-host.sh holds $STATE/.kvm-lock"
  if libvirtd_pid >/dev/null; then
    guests_down
    virsh_host net-destroy "$NETWORK" >/dev/null 2>&1 || true
    virsh_host net-undefine "$NETWORK" >/dev/null 2>&1 || true
  fi
  libvirtd_down
  # QEMU processes libvirtd no longer knew of (a harness killed mid-run).
  local p
  for p in $(ip netns pids "$NETNS" 2>/dev/null || true); do
    if [[ $(cat "/proc/$p/comm" 2>/dev/null) == qemu-system-* ]]; then kill -KILL "$p" 2>/dev/null || true; fi
  done
  "$HOST_SH" down
  rm -f "$ENV_FILE"
  log "down"
}

status() {
  local ok=0
  "$HOST_SH" status || ok=1
  if libvirtd_pid >/dev/null && virsh_host version >/dev/null 2>&1; then echo "libvirtd: running"; else echo "libvirtd: stopped"; ok=1; fi
  return $ok
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  env) cat "$ENV_FILE" ;;
  libvirtd-restart) libvirtd_down; libvirtd_up ;;
  *) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
