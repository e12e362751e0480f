#!/usr/bin/env bash
# The full-node tier of the local cluster: Debian's containerd (own config, root, state and
# socket under $AGENTTYPE_STATE, not the system service), runc, a CNI bridge, kubelet,
# kube-scheduler and kube-proxy (iptables mode), joined to the control plane that
# `cluster.sh up control-plane` runs.
#
#   tests/cluster/node.sh net-up     cni0 bridge with $AGENTTYPE_NODE_IP (run BEFORE the control
#                                    plane when the apiserver binds that address), sysctls,
#                                    the egress guard; idempotent
#   tests/cluster/node.sh up         net-up + containerd + pause image + kubelet + scheduler +
#                                    kube-proxy; waits for the node to be Ready; then CoreDNS
#                                    (coredns.yaml) behind the kube-dns Service; idempotent
#   tests/cluster/node.sh down       stops all of that, removes pods, mounts, veths, iptables
#                                    rules; removes the bridge unless something still listens on
#                                    its address (then run `node.sh net-down` after the apiserver)
#   tests/cluster/node.sh net-down   removes the bridge and restores the sysctls
#   tests/cluster/node.sh status     what runs, node readiness; exit 0 only when all is healthy
#   tests/cluster/node.sh env        the variables the control plane needs for the full tier
#
# Pods reach the apiserver through the `kubernetes` Service, so the apiserver must bind and
# advertise an address pods can route to: the bridge gateway (`node.sh env`). The full tier is
# `tests/cluster/cluster.sh up full`, which does: node.sh net-up; the control plane with
# AGENTTYPE_APISERVER_IP=10.88.0.1; node.sh up (and `cluster.sh down`: node.sh down, the
# control plane, node.sh net-down).
# Nothing here listens on a non-loopback host address except on the bridge; pods cannot send
# traffic out of the machine (mangle FORWARD drops pod-sourced packets not bound to pods).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

NODE_NAME=$AGENTTYPE_NODE_NAME
POD_CIDR=$AGENTTYPE_CLUSTER_CIDR
BRIDGE=${AGENTTYPE_BRIDGE:-cni0}
NODE_IP=${AGENTTYPE_NODE_IP:-10.88.0.1}
POD_CIDR_PREFIX=${POD_CIDR#*/}
PAUSE_IMAGE=${AGENTTYPE_PAUSE_IMAGE:-localhost/agenttype/pause:1.0}

NODE_DIR=$AGENTTYPE_STATE/node
CTRD_DIR=$AGENTTYPE_STATE/containerd
CTRD_SOCK=$CTRD_DIR/containerd.sock
CNI_CONF_DIR=$NODE_DIR/cni/net.d
CNI_NET_NAME=agenttype
KUBELET_ROOT=$AGENTTYPE_STATE/kubelet
EGRESS_CHAIN=AGENTTYPE-EGRESS

# The caller's PATH last: build-coredns.sh (through images.sh) needs its go.
PATH=$AGENTTYPE_BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export PATH

log() { at_log "node: $*"; }
die() { at_die "node: $*"; }

# ------------------------------------------------------------------ prerequisites
need_packages() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v containerd-shim-runc-v2 >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/portmap ] &&
    [ -x /usr/lib/cni/loopback ] || missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v conntrack >/dev/null || missing+=(conntrack)
  command -v ip >/dev/null || missing+=(iproute2)
  [ ${#missing[@]} = 0 ] || at_apt_install "${missing[@]}"
  [ "$(id -u)" = 0 ] || die "the node tier needs root"
}
need_binaries() {
  local c
  for c in kubelet kube-scheduler kube-proxy kubectl; do
    [ -x "$AGENTTYPE_BIN/$c" ] || die "$AGENTTYPE_BIN/$c missing: run tests/cluster/build-components.sh"
  done
  grep -qw overlay /proc/filesystems || die "the kernel has no overlayfs (containerd's snapshotter)"
  [ -d /proc/sys/net/bridge ] || die "br_netfilter is not available (/proc/sys/net/bridge missing)"
}

# write_if_changed FILE < CONTENT: replaces FILE only when CONTENT differs (kube-proxy exits
# when its config file is rewritten); returns 0 when it changed, 1 when not.
write_if_changed() {
  local f=$1 tmp
  mkdir -p "$(dirname "$f")"
  tmp=$(mktemp "$f.XXXXXX")
  cat >"$tmp"
  if [ -f "$f" ] && cmp -s "$tmp" "$f"; then rm -f "$tmp"; return 1; fi
  chmod 644 "$tmp"; mv "$tmp" "$f"
}

# ------------------------------------------------------------------ processes
pidfile() { echo "$AGENTTYPE_RUN/$1.pid"; }

# start_proc NAME BINARY ARGS...: start it with at_start (detached, own session, logging to
# $AGENTTYPE_LOGS/NAME.log). A live process started with the same command line is kept; another
# command line (new pins, new flags) restarts it.
start_proc() {
  local name=$1; shift
  local argsfile=$AGENTTYPE_RUN/$name.args want
  want=$(printf '%q ' "$@")
  if at_pid_alive "$name"; then
    if [ "$(cat "$argsfile" 2>/dev/null)" = "$want" ]; then
      log "$name already running (pid $(<"$(pidfile "$name")"))"; return 0
    fi
    log "$name: command line changed, restarting"
    stop_proc "$name"
  fi
  local port ip
  while read -r port ip; do
    [ -n "$port" ] || continue
    if at_port_listening "$port" "$ip"; then
      die "$name: $ip:$port is in use by a process this harness did not start (see: ss -ltnp 'sport = :$port')"
    fi
  done <<<"$(ports_of "$name")"
  at_start "$name" "$@" || die "$name did not start"
  echo "$want" >"$argsfile"
}

# ports_of NAME: the TCP ports NAME listens on, one "PORT IP" a line (fixed: one node a machine).
ports_of() {
  case $1 in
    kubelet) printf '10250 %s\n10248 127.0.0.1\n' "$NODE_IP" ;;
    kube-scheduler) echo "10259 127.0.0.1" ;;
    kube-proxy) printf '10256 127.0.0.1\n10249 127.0.0.1\n' ;;
  esac
}
scheduler_ok() { curl -ksf --max-time 3 https://127.0.0.1:10259/healthz >/dev/null; }

stop_proc() { at_stop "$1" 10; }

# ------------------------------------------------------------------ network
sysctl_set() {  # KEY VALUE: remembers the first value it saw, for net-down
  local key=$1 val=$2 path=/proc/sys/${1//.//} orig=$NODE_DIR/sysctl.orig
  [ -w "$path" ] || { log "cannot write $key"; return 0; }
  mkdir -p "$NODE_DIR"
  grep -q "^$key=" "$orig" 2>/dev/null || echo "$key=$(<"$path")" >>"$orig"
  [ "$(<"$path")" = "$val" ] || echo "$val" >"$path"
}

net_up() {
  mkdir -p "$NODE_DIR"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "creating bridge $BRIDGE $NODE_IP/$POD_CIDR_PREFIX"
    ip link add "$BRIDGE" type bridge
    # A new bridge means nothing of ours is up: the sysctls now are the ones to restore.
    rm -f "$NODE_DIR/sysctl.orig"
  fi
  ip -4 addr show dev "$BRIDGE" | grep -q "inet $NODE_IP/$POD_CIDR_PREFIX " ||
    ip addr add "$NODE_IP/$POD_CIDR_PREFIX" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  sysctl_set net.ipv4.ip_forward 1
  sysctl_set net.bridge.bridge-nf-call-iptables 1
  sysctl_set net.bridge.bridge-nf-call-ip6tables 1
  # Egress guard: packets from pods may go to pods (bridged or routed) and to this host (INPUT,
  # not FORWARD), never out of the machine. In mangle so kube-proxy's filter rules cannot
  # accept them first.
  iptables -t mangle -N "$EGRESS_CHAIN" 2>/dev/null || true
  iptables -t mangle -F "$EGRESS_CHAIN"
  iptables -t mangle -A "$EGRESS_CHAIN" -s "$POD_CIDR" -d "$POD_CIDR" -j RETURN
  iptables -t mangle -A "$EGRESS_CHAIN" -s "$POD_CIDR" -m comment --comment "agenttype: pods never leave the machine" -j DROP
  iptables -t mangle -C FORWARD -j "$EGRESS_CHAIN" 2>/dev/null || iptables -t mangle -I FORWARD 1 -j "$EGRESS_CHAIN"
}

net_down() {
  local v
  for v in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$v" 2>/dev/null || true
  done
  if ip link show "$BRIDGE" >/dev/null 2>&1; then log "removing bridge $BRIDGE"; ip link del "$BRIDGE"; fi
  sweep_iptables
  if [ -f "$NODE_DIR/sysctl.orig" ]; then
    local kv
    while IFS= read -r kv; do
      [ -n "$kv" ] || continue
      echo "${kv#*=}" >"/proc/sys/$(echo "${kv%%=*}" | tr . /)" 2>/dev/null || true
    done <"$NODE_DIR/sysctl.orig"
    rm -f "$NODE_DIR/sysctl.orig"
  fi
}

# Removes every rule and chain of ours: KUBE-* (kubelet, kube-proxy), CNI-* (bridge/portmap
# plugins) and AGENTTYPE-*, from iptables and ip6tables. Nothing else on this machine uses them.
sweep_iptables() {
  local ipt t rule chain
  for ipt in iptables ip6tables; do
    command -v $ipt >/dev/null || continue
    for t in filter nat mangle raw; do
      $ipt -t $t -S >/dev/null 2>&1 || continue
      # jumps from chains that are not ours into ours
      $ipt -t $t -S | awk '$1 == "-A" && $2 !~ /^(KUBE-|CNI-|AGENTTYPE-)/ && / -j (KUBE-|CNI-|AGENTTYPE-)/' |
        while IFS= read -r rule; do eval "$ipt -t $t -D ${rule#-A }" 2>/dev/null || true; done
      for chain in $($ipt -t $t -S | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-|AGENTTYPE-)/ {print $2}'); do
        $ipt -t $t -F "$chain" 2>/dev/null || true
      done
      for chain in $($ipt -t $t -S | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-|AGENTTYPE-)/ {print $2}'); do
        $ipt -t $t -X "$chain" 2>/dev/null || true
      done
    done
  done
}

write_cni_conf() {
  mkdir -p "$CNI_CONF_DIR" "$NODE_DIR/cni/ipam"
  # containerd's CRI adds the loopback network (/usr/lib/cni/loopback) itself.
  write_if_changed "$CNI_CONF_DIR/10-agenttype.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NET_NAME",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$NODE_DIR/cni/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$NODE_IP" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
}

# ------------------------------------------------------------------ containerd
write_containerd_conf() {
  mkdir -p "$CTRD_DIR"/{root,state,runc,opt}
  write_if_changed "$CTRD_DIR/config.toml" <<EOF
# Generated by tests/cluster/node.sh: a containerd of the test cluster only.
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
    # These machines run without CAP_SYS_RESOURCE in the bounding set: nothing may lower
    # oom_score_adj below its current value, so the CRI's -998 for sandboxes (and the kubelet's
    # negative scores for Guaranteed pods) must be clamped or runc fails with
    # "can't get final child's PID from pipe: EOF".
    restrict_oom_score_adj = true
    max_container_log_line_size = 16384
    # pod network namespaces under our state dir instead of /run/netns
    netns_mounts_under_state_dir = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      discard_unpacked_layers = false
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = "$(command -v runc)"
          Root = "$CTRD_DIR/runc"
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$CNI_CONF_DIR"
      max_conf_num = 1
EOF
}

ctr_ok() { ctr -a "$CTRD_SOCK" version >/dev/null 2>&1; }

start_containerd() {
  if write_containerd_conf; then stop_proc containerd; fi   # containers survive (shims)
  start_proc containerd "$(command -v containerd)" --config "$CTRD_DIR/config.toml"
  at_wait_ready containerd 30 ctr_ok || die "containerd did not start"
}

# ------------------------------------------------------------------ kubeconfigs
# Kubeconfigs of the node's components: cluster.sh writes node/scheduler/kube-proxy ones;
# if one is missing (older control plane), issue our own from the cluster CA.
KCFG_KUBELET=$AGENTTYPE_KUBECONFIGS/node.kubeconfig
KCFG_SCHEDULER=$AGENTTYPE_KUBECONFIGS/scheduler.kubeconfig
KCFG_PROXY=$AGENTTYPE_KUBECONFIGS/kube-proxy.kubeconfig
node_kubeconfigs() {
  [ -s "$AGENTTYPE_PKI/ca.crt" ] ||
    die "no cluster CA in $AGENTTYPE_PKI: run tests/cluster/cluster.sh up control-plane first"
  if [ ! -s "$KCFG_KUBELET" ]; then
    at_pki_issue node-kubelet "system:node:$NODE_NAME" system:nodes client
    KCFG_KUBELET=$AGENTTYPE_KUBECONFIGS/node-kubelet.kubeconfig
    at_write_kubeconfig "$KCFG_KUBELET" kubelet "$AGENTTYPE_PKI/node-kubelet.crt" "$AGENTTYPE_PKI/node-kubelet.key"
  fi
  if [ ! -s "$KCFG_SCHEDULER" ]; then
    at_pki_issue node-kube-scheduler system:kube-scheduler "" client
    KCFG_SCHEDULER=$AGENTTYPE_KUBECONFIGS/node-kube-scheduler.kubeconfig
    at_write_kubeconfig "$KCFG_SCHEDULER" kube-scheduler "$AGENTTYPE_PKI/node-kube-scheduler.crt" "$AGENTTYPE_PKI/node-kube-scheduler.key"
  fi
  if [ ! -s "$KCFG_PROXY" ]; then
    at_pki_issue node-kube-proxy system:kube-proxy "" client
    KCFG_PROXY=$AGENTTYPE_KUBECONFIGS/node-kube-proxy.kubeconfig
    at_write_kubeconfig "$KCFG_PROXY" kube-proxy "$AGENTTYPE_PKI/node-kube-proxy.crt" "$AGENTTYPE_PKI/node-kube-proxy.key"
  fi
}

# ------------------------------------------------------------------ kubelet, scheduler, proxy
write_kubelet_conf() {
  mkdir -p "$KUBELET_ROOT" "$NODE_DIR/pod-logs" "$NODE_DIR/volume-plugins"
  # Pods get no host resolver: nothing in a pod should resolve names outside the cluster. They
  # resolve cluster names through CoreDNS (clusterDNS, dns_up).
  echo "options ndots:1" >"$NODE_DIR/resolv.conf"
  write_if_changed "$NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true, cacheTTL: 30s}
  x509: {clientCAFile: $AGENTTYPE_PKI/ca.crt}
authorization:
  mode: Webhook
  webhook: {cacheAuthorizedTTL: 30s, cacheUnauthorizedTTL: 5s}
containerRuntimeEndpoint: unix://$CTRD_SOCK
imageServiceEndpoint: unix://$CTRD_SOCK
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
clusterDomain: $AGENTTYPE_CLUSTER_DOMAIN
clusterDNS: [$AGENTTYPE_DNS_IP]
resolvConf: $NODE_DIR/resolv.conf
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
imageMinimumGCAge: 87600h
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
podLogsDir: $NODE_DIR/pod-logs
volumePluginDir: $NODE_DIR/volume-plugins
serializeImagePulls: false
rotateCertificates: false
serverTLSBootstrap: false
registerNode: true
maxPods: 110
nodeStatusUpdateFrequency: 10s
syncFrequency: 10s
fileCheckFrequency: 20s
shutdownGracePeriod: 0s
EOF
}

write_scheduler_conf() {
  write_if_changed "$NODE_DIR/kube-scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $KCFG_SCHEDULER
leaderElection:
  leaderElect: false
EOF
}

write_proxy_conf() {
  write_if_changed "$NODE_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: $KCFG_PROXY
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
detectLocalMode: ClusterCIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
iptables:
  minSyncPeriod: 1s
  syncPeriod: 30s
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

# containerd + CNI config + the pause image: all a pod sandbox needs.
runtime_up() {
  net_up
  write_cni_conf || true
  start_containerd
  AGENTTYPE_CONTAINERD_SOCK=$CTRD_SOCK "$HERE/images.sh" pause
  AGENTTYPE_CONTAINERD_SOCK=$CTRD_SOCK "$HERE/images.sh" import "$PAUSE_IMAGE"
}

kc() { "$AGENTTYPE_BIN/kubectl" --kubeconfig "$AGENTTYPE_KUBECONFIG" "$@"; }
apiserver_ok() { kc get --raw /readyz >/dev/null 2>&1; }
# Ready, and (when this run started the kubelet) reported by that kubelet, not a stale status.
KUBELET_STARTED_AT=
node_ready() {
  local out status beat
  out=$(kc get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}' 2>/dev/null) || return 1
  status=${out%% *}; beat=${out#* }
  [ "$status" = True ] || return 1
  [ -z "$KUBELET_STARTED_AT" ] || [[ ! $beat < $KUBELET_STARTED_AT ]]
}

up() {
  local t0=$SECONDS
  need_packages
  need_binaries
  apiserver_ok || die "the apiserver does not answer with $AGENTTYPE_KUBECONFIG: run (with the same AGENTTYPE_APISERVER_IP) tests/cluster/cluster.sh up control-plane first"
  grep -q "server: https://$AGENTTYPE_APISERVER_IP:" "$AGENTTYPE_KUBECONFIG" ||
    log "warning: $AGENTTYPE_KUBECONFIG does not use AGENTTYPE_APISERVER_IP=$AGENTTYPE_APISERVER_IP"
  case $AGENTTYPE_APISERVER_IP in
    127.*) log "warning: the apiserver is on $AGENTTYPE_APISERVER_IP: pods cannot reach the kubernetes Service (use AGENTTYPE_APISERVER_IP=$NODE_IP)" ;;
  esac
  runtime_up   # net_up included
  node_kubeconfigs
  # A changed configuration restarts its component; an unchanged one keeps it running.
  if write_kubelet_conf; then stop_proc kubelet; fi
  if write_scheduler_conf; then stop_proc kube-scheduler; fi
  if write_proxy_conf; then stop_proc kube-proxy; fi
  at_pid_alive kubelet || KUBELET_STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  start_proc kubelet "$AGENTTYPE_BIN/kubelet" --config "$NODE_DIR/kubelet.yaml" \
    --kubeconfig "$KCFG_KUBELET" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
    --root-dir "$KUBELET_ROOT" --cert-dir "$KUBELET_ROOT/pki" --v=1
  start_proc kube-scheduler "$AGENTTYPE_BIN/kube-scheduler" --config "$NODE_DIR/kube-scheduler.yaml" \
    --bind-address 127.0.0.1 --secure-port 10259 --v=1
  start_proc kube-proxy "$AGENTTYPE_BIN/kube-proxy" --config "$NODE_DIR/kube-proxy.yaml" --v=1
  # Each one healthy, or the failure names it with its log (not, minutes later, a pod that never
  # got scheduled).
  at_wait_ready kube-scheduler 60 scheduler_ok || die "kube-scheduler is not healthy"
  at_wait_ready kube-proxy 60 at_port_listening 10256 127.0.0.1 || die "kube-proxy is not serving"
  at_wait_ready kubelet 180 node_ready || die "node $NODE_NAME not Ready"
  dns_up
  local p
  for p in kubelet kube-scheduler kube-proxy containerd; do
    at_pid_alive "$p" || { at_log_tail "$p"; die "$p exited; log: $AGENTTYPE_LOGS/$p.log"; }
  done
  log "node $NODE_NAME Ready, cluster DNS at $AGENTTYPE_DNS_IP, in $((SECONDS - t0))s"
}

# Cluster DNS: CoreDNS, built from the Go module proxy (build-coredns.sh, images.sh coredns),
# deployed from coredns.yaml behind the kube-dns Service at $AGENTTYPE_DNS_IP (the kubelet's
# clusterDNS).
dns_up() {
  AGENTTYPE_CONTAINERD_SOCK=$CTRD_SOCK "$HERE/images.sh" coredns
  sed -e "s|@IMAGE@|$AGENTTYPE_COREDNS_IMAGE|" -e "s|@DNS_IP@|$AGENTTYPE_DNS_IP|" \
    -e "s|@CLUSTER_DOMAIN@|$AGENTTYPE_CLUSTER_DOMAIN|" "$HERE/coredns.yaml" |
    kc apply --server-side --force-conflicts --field-manager=agenttype-harness -f - >/dev/null
  kc -n kube-system rollout status deployment/coredns --timeout=120s >&2 ||
    die "CoreDNS is not ready: kubectl -n kube-system describe pods -l k8s-app=kube-dns"
}
dns_ready() {
  [ "$(kc -n kube-system get deployment coredns -o 'jsonpath={.status.readyReplicas}' 2>/dev/null)" = 1 ]
}

# Removes every pod sandbox and container from our containerd. With crictl the CRI tears the
# pod networks down itself; without it (cri-tools is not always on the module proxy) the tasks
# and containers go through containerd's API and down() removes veths, netns mounts, IPAM
# state and CNI iptables chains itself.
remove_pods() {
  local ids
  if [ -x "$AGENTTYPE_BIN/crictl" ]; then
    local crictl=("$AGENTTYPE_BIN/crictl" --runtime-endpoint "unix://$CTRD_SOCK" --timeout 30s)
    ids=$("${crictl[@]}" pods -q 2>/dev/null || true)
    if [ -n "$ids" ]; then
      log "removing $(echo "$ids" | wc -l) pod sandbox(es) with crictl"
      # shellcheck disable=SC2086
      "${crictl[@]}" stopp $ids >/dev/null 2>&1 || true
      # shellcheck disable=SC2086
      "${crictl[@]}" rmp -f $ids >/dev/null 2>&1 || true
    fi
  fi
  local c=(ctr -a "$CTRD_SOCK" -n k8s.io) id
  ids=$("${c[@]}" containers ls -q 2>/dev/null || true)
  [ -n "$ids" ] || return 0
  log "removing $(echo "$ids" | wc -l) container(s) with ctr"
  for id in $ids; do "${c[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  for id in $ids; do
    "${c[@]}" tasks rm -f "$id" >/dev/null 2>&1 || true
    "${c[@]}" containers rm "$id" >/dev/null 2>&1 || true
  done
}

# Pids of processes whose command line mentions our state dir (shims, leftovers).
our_pids() {
  local p
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = $$ ] && continue
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "$AGENTTYPE_STATE/containerd" && echo "${p#/proc/}"
  done
  return 0
}

down() {
  stop_proc kube-scheduler
  stop_proc kube-proxy
  stop_proc kubelet
  if ctr_ok; then remove_pods; fi
  stop_proc containerd
  # Shims and containers that outlived containerd (should be none after rmp).
  local pids
  if [ -d "$CTRD_DIR/runc" ] && command -v runc >/dev/null; then
    local ns id
    for ns in "$CTRD_DIR"/runc/*/; do
      [ -d "$ns" ] || continue
      for id in $(runc --root "$ns" list -q 2>/dev/null); do
        runc --root "$ns" kill "$id" KILL 2>/dev/null || true
        runc --root "$ns" delete -f "$id" 2>/dev/null || true
      done
    done
  fi
  pids=$(our_pids)
  if [ -n "$pids" ]; then
    log "killing leftover processes: ${pids//$'\n'/ }"
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.5
  fi
  umount_state
  remove_cgroups
  rm -f /var/lib/cni/results/"$CNI_NET_NAME"-* 2>/dev/null || true
  # kubelet's symlinks in the fixed /var/log/containers to our pod logs
  if [ -d /var/log/containers ]; then
    find /var/log/containers -maxdepth 1 -type l -lname "$NODE_DIR/pod-logs/*" -delete 2>/dev/null || true
  fi
  rm -rf "$NODE_DIR/cni/ipam"
  # veths of pods whose teardown failed
  local v
  for v in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$v" 2>/dev/null || true
  done
  sweep_iptables
  if listening_on_node_ip; then
    # The apiserver still binds the bridge address: keep the bridge and the egress guard.
    net_up >/dev/null
    log "kept $BRIDGE: something still listens on $NODE_IP (run node.sh net-down after the control plane stops)"
  else
    net_down
  fi
  log "down"
}

listening_on_node_ip() {
  local hex
  # /proc/net/tcp holds IPv4 addresses as little-endian hex
  # shellcheck disable=SC2046,SC2183
  hex=$(printf '%02X%02X%02X%02X' $(echo "$NODE_IP" | awk -F. '{print $4, $3, $2, $1}'))
  awk -v a="$hex:" 'index($2, a) == 1 && $4 == "0A" {found = 1} END {exit !found}' /proc/net/tcp
}

umount_state() {
  # Everything under the state dir: kubelet's rshared root and pod volumes, containerd's rootfs
  # and shm mounts, pod network namespaces (netns_mounts_under_state_dir). Deepest first.
  local m n=0
  while IFS= read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    n=$((n + 1))
  done < <(awk -v d="$AGENTTYPE_STATE/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r)
  [ $n = 0 ] || log "unmounted $n leftover mount(s)"
}

remove_cgroups() {
  local c
  for c in /sys/fs/cgroup/*/; do
    [ -d "$c/kubepods" ] || [ -d "$c/kubepods.slice" ] || continue
    find "$c/kubepods" "$c/kubepods.slice" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

status() {
  local ok=0 p
  for p in containerd kubelet kube-scheduler kube-proxy; do
    if at_pid_alive "$p"; then echo "$p: running (pid $(<"$(pidfile "$p")"))"; else echo "$p: stopped"; ok=1; fi
  done
  if node_ready; then echo "node $NODE_NAME: Ready"; else echo "node $NODE_NAME: not Ready"; ok=1; fi
  if dns_ready; then echo "cluster DNS: ready ($AGENTTYPE_DNS_IP)"; else echo "cluster DNS: not ready"; ok=1; fi
  return $ok
}

case ${1:-} in
  up) at_track_starts; up ;;
  down) down ;;
  net-up) need_packages; net_up ;;
  runtime-up) at_track_starts; need_packages; runtime_up ;;   # containerd + CNI only (debugging; `up` includes it)
  net-down) net_down ;;
  status) status ;;
  env) echo "AGENTTYPE_APISERVER_IP=$NODE_IP" ;;
  *) echo "usage: $0 up|down|net-up|net-down|status|env" >&2; exit 2 ;;
esac
