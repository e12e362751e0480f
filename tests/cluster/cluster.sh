#!/usr/bin/env bash
# The local cluster's single entry point.
#
#   tests/cluster/cluster.sh up [control-plane]   etcd + kube-apiserver + kube-controller-manager
#   tests/cluster/cluster.sh up full              node.sh net-up, the control plane on the bridge
#                                                 address (node.sh env), then node.sh up
#   tests/cluster/cluster.sh down [control-plane] stop everything (node.sh down, control plane,
#                                                 node.sh net-down), or only the control plane
#   tests/cluster/cluster.sh status [control-plane] what runs, is it healthy (exit 1 if not)
#   tests/cluster/cluster.sh env                  `eval "$(tests/cluster/cluster.sh env)"`
#
# `up` is idempotent: a running, healthy component started with the same configuration is
# reused; one whose command line or certificates changed (new pins, new AGENTTYPE_APISERVER_IP)
# is restarted. The apiserver address `up` used is recorded in $AGENTTYPE_STATE/apiserver-ip and
# is the default of later calls until `down`. Binaries come from build-components.sh (built on
# first use). Everything lives under $AGENTTYPE_STATE: pki/ (certificates, service-account keys),
# kubeconfigs/ (controller-manager, scheduler, kube-proxy, node), logs/, run/ (pidfiles and
# the configuration each process was started with), etcd/ (data).
# `down` stops every process by its pidfile (TERM, KILL after 15 s), checks that no port is left
# listening and wipes etcd data (AGENTTYPE_KEEP_ETCD_DATA=1 keeps it); logs, pki and
# kubeconfigs stay for debugging.
#
# The admin kubeconfig ($AGENTTYPE_KUBECONFIG) is the last line `up` prints on stdout;
# progress goes to stderr.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

CP_COMPONENTS=(etcd kube-apiserver kube-controller-manager)   # start order

usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# ---------------------------------------------------------------- helpers
# One cluster.sh at a time per state dir. Nested calls (node.sh calling back into cluster.sh)
# inherit the held lock through fd 9 and AGENTTYPE_CLUSTER_LOCKED.
lock() {
  [[ ${AGENTTYPE_CLUSTER_LOCKED:-} == "$AGENTTYPE_STATE" ]] && return 0
  mkdir -p "$AGENTTYPE_STATE"
  exec 9>"$AGENTTYPE_STATE/.lock"
  if ! flock -n 9; then
    at_log "waiting for another cluster.sh (lock $AGENTTYPE_STATE/.lock)"
    flock -w 600 9 || at_die "another cluster.sh holds $AGENTTYPE_STATE/.lock"
  fi
  export AGENTTYPE_CLUSTER_LOCKED=$AGENTTYPE_STATE
}

ensure_binaries() {
  if [[ ! -f $AGENTTYPE_BIN/.complete ]]; then
    at_log "binaries missing in $AGENTTYPE_BIN: building them (15-30 min cold)"
    "$HERE/build-components.sh" >/dev/null
  fi
  local b
  for b in etcd kube-apiserver kube-controller-manager kubectl; do
    [[ -x $AGENTTYPE_BIN/$b ]] || at_die "missing $AGENTTYPE_BIN/$b"
  done
}

admin_curl() {  # admin_curl PATH: GET on the apiserver with the admin certificate
  curl -fsS --max-time 5 --cacert "$AGENTTYPE_PKI/ca.crt" --cert "$AGENTTYPE_PKI/admin.crt" \
    --key "$AGENTTYPE_PKI/admin.key" "$AGENTTYPE_APISERVER_URL$1"
}

health_etcd() { curl -fsS --max-time 3 "http://127.0.0.1:$AGENTTYPE_ETCD_CLIENT_PORT/health" 2>/dev/null | grep -q '"health":"true"'; }
health_kube-apiserver() { [[ $(admin_curl /readyz 2>/dev/null) == ok ]]; }
health_kube-controller-manager() { [[ $(curl -ksS --max-time 3 "https://127.0.0.1:$AGENTTYPE_KCM_PORT/healthz" 2>/dev/null) == ok ]]; }

port_of() {  # "PORT IP" a component listens on
  case $1 in
    etcd) echo "$AGENTTYPE_ETCD_CLIENT_PORT 127.0.0.1" ;;
    kube-apiserver) echo "$AGENTTYPE_APISERVER_PORT $AGENTTYPE_APISERVER_IP" ;;
    kube-controller-manager) echo "$AGENTTYPE_KCM_PORT 127.0.0.1" ;;
  esac
}

# Identity of a component's configuration: its command line, plus (for components reading
# certificates) a fingerprint of the PKI, so reissued certificates restart them too.
component_want() {  # component_want NAME ARGS...
  local name=$1; shift
  printf '%q ' "$@"
  case $name in kube-apiserver|kube-controller-manager) printf '# pki %s' "$PKI_FINGERPRINT" ;; esac
}

# is_current NAME ARGS...: a live, healthy process of NAME runs with exactly this configuration.
is_current() {
  local name=$1 argsfile=$AGENTTYPE_RUN/$1.args
  at_pid_alive "$name" && [[ -f $argsfile && $(<"$argsfile") == "$(component_want "$@")" ]] && "health_$name"
}

# start_component NAME ARGS...: reuse a live process started with the same configuration,
# otherwise (re)start it (at_start: detached, logging to logs/NAME.log).
start_component() {
  local name=$1
  if is_current "$@"; then
    at_log "$name: reusing healthy pid $(<"$AGENTTYPE_RUN/$name.pid")"
    return 0
  fi
  if at_pid_alive "$name"; then
    at_log "$name: running but unhealthy or started with another configuration: restarting"
    at_stop "$name"
  fi
  local want port ip
  want=$(component_want "$@")
  shift
  read -r port ip <<< "$(port_of "$name")"
  if at_port_listening "$port" "$ip"; then
    at_die "$name: $ip:$port is in use by a process this harness did not start (see: ss -ltnp 'sport = :$port')"
  fi
  if [[ $name == etcd ]] && at_port_listening "$AGENTTYPE_ETCD_PEER_PORT" 127.0.0.1; then
    at_die "etcd: peer port 127.0.0.1:$AGENTTYPE_ETCD_PEER_PORT is in use by a process this harness did not start"
  fi
  at_start "$name" "$@" || at_die "$name did not start"
  echo "$want" > "$AGENTTYPE_RUN/$name.args"
}

wait_healthy() {  # wait_healthy NAME TIMEOUT
  at_wait_ready "$1" "$2" "health_$1" || at_die "$1 did not become healthy"
  at_log "$1: healthy"
}

# A failed `up` stopped what it started (at_track_starts): an apiserver no longer running keeps no
# recorded address, which later calls would otherwise reuse.
at_after_stopping_started() {
  at_pid_alive kube-apiserver || rm -f "$AGENTTYPE_STATE/apiserver-ip"
}

# ---------------------------------------------------------------- pki and kubeconfigs
apiserver_sans() {
  local sans="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
  sans+=",DNS:kubernetes.default.svc.$AGENTTYPE_CLUSTER_DOMAIN,DNS:localhost"
  sans+=",IP:127.0.0.1,IP:$AGENTTYPE_SERVICE_IP"
  [[ $AGENTTYPE_APISERVER_IP != 127.0.0.1 ]] && sans+=",IP:$AGENTTYPE_APISERVER_IP"
  echo "$sans"
}

setup_pki() {
  at_pki_ca
  # Serving certificate; reissued when AGENTTYPE_APISERVER_IP (and so the SANs) change.
  at_pki_issue apiserver kube-apiserver "" server "$(apiserver_sans)"
  at_pki_issue admin kubernetes-admin system:masters client
  at_pki_issue controller-manager system:kube-controller-manager "" client
  at_pki_issue scheduler system:kube-scheduler "" client
  at_pki_issue kube-proxy system:kube-proxy "" client
  at_pki_issue node "system:node:$AGENTTYPE_NODE_NAME" system:nodes client
  # The apiserver's client certificate towards kubelets (logs, exec, port-forward).
  at_pki_issue apiserver-kubelet-client kube-apiserver-kubelet-client "" client
  # Request-header (front-proxy) authentication, as kubeadm sets it up: aggregated API servers
  # and the controller-manager's delegated authentication read this CA.
  at_pki_ca front-proxy-ca
  AT_PKI_CA=front-proxy-ca at_pki_issue front-proxy-client front-proxy-client "" client
  # Service-account token signing key pair.
  if [[ ! -s $AGENTTYPE_PKI/sa.key ]]; then
    at_log "pki: creating service-account key pair"
    openssl genrsa -out "$AGENTTYPE_PKI/sa.key" 2048 2>/dev/null
    chmod 600 "$AGENTTYPE_PKI/sa.key"
  fi
  [[ -s $AGENTTYPE_PKI/sa.pub ]] || openssl rsa -in "$AGENTTYPE_PKI/sa.key" -pubout -out "$AGENTTYPE_PKI/sa.pub" 2>/dev/null

  # Kubeconfigs are cheap: rewrite them each time so they follow AGENTTYPE_APISERVER_IP.
  local p=$AGENTTYPE_PKI k=$AGENTTYPE_KUBECONFIGS
  at_write_kubeconfig "$AGENTTYPE_KUBECONFIG" kubernetes-admin "$p/admin.crt" "$p/admin.key"
  at_write_kubeconfig "$k/controller-manager.kubeconfig" system:kube-controller-manager "$p/controller-manager.crt" "$p/controller-manager.key"
  at_write_kubeconfig "$k/scheduler.kubeconfig" system:kube-scheduler "$p/scheduler.crt" "$p/scheduler.key"
  at_write_kubeconfig "$k/kube-proxy.kubeconfig" system:kube-proxy "$p/kube-proxy.crt" "$p/kube-proxy.key"
  at_write_kubeconfig "$k/node.kubeconfig" "system:node:$AGENTTYPE_NODE_NAME" "$p/node.crt" "$p/node.key"
}

# ---------------------------------------------------------------- control plane
up_control_plane() {
  local t0=$SECONDS
  ensure_binaries
  mkdir -p "$AGENTTYPE_STATE" "$AGENTTYPE_LOGS" "$AGENTTYPE_RUN" "$AGENTTYPE_STATE/etcd"
  chmod 700 "$AGENTTYPE_STATE/etcd"
  setup_pki
  local b=$AGENTTYPE_BIN p=$AGENTTYPE_PKI

  echo "$AGENTTYPE_APISERVER_IP" > "$AGENTTYPE_STATE/apiserver-ip"
  PKI_FINGERPRINT=$(cat "$AGENTTYPE_PKI"/*.spec "$AGENTTYPE_PKI/sa.pub" | cksum | cut -d' ' -f1)

  start_component etcd "$b/etcd" \
    --name=agenttype \
    --data-dir="$AGENTTYPE_STATE/etcd" \
    --listen-client-urls="http://127.0.0.1:$AGENTTYPE_ETCD_CLIENT_PORT" \
    --advertise-client-urls="http://127.0.0.1:$AGENTTYPE_ETCD_CLIENT_PORT" \
    --listen-peer-urls="http://127.0.0.1:$AGENTTYPE_ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$AGENTTYPE_ETCD_PEER_PORT" \
    --initial-cluster="agenttype=http://127.0.0.1:$AGENTTYPE_ETCD_PEER_PORT" \
    --unsafe-no-fsync=true \
    --log-level=warn
  wait_healthy etcd 60

  local reconciler=lease
  # The Endpoints API refuses loopback addresses, so on 127.0.0.1 the `kubernetes` Service
  # cannot get endpoints; nothing in the control-plane tier needs them.
  [[ $AGENTTYPE_APISERVER_IP == 127.* ]] && reconciler=none
  # --enable-aggregator-routing: an APIService's requests go to its Service's endpoints rather
  # than its ClusterIP, so the operator's aggregated API works as a process (host tier), with no
  # kube-proxy.
  # shellcheck disable=SC2054 # commas inside flag values
  local -a apiserver=(kube-apiserver "$b/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$AGENTTYPE_ETCD_CLIENT_PORT" \
    --bind-address="$AGENTTYPE_APISERVER_IP" \
    --advertise-address="$AGENTTYPE_APISERVER_IP" \
    --secure-port="$AGENTTYPE_APISERVER_PORT" \
    --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
    --client-ca-file="$p/ca.crt" \
    --kubelet-client-certificate="$p/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$p/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname \
    --service-cluster-ip-range="$AGENTTYPE_SERVICE_CIDR" \
    --service-account-issuer="https://kubernetes.default.svc.$AGENTTYPE_CLUSTER_DOMAIN" \
    --service-account-key-file="$p/sa.pub" \
    --service-account-signing-key-file="$p/sa.key" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction \
    --requestheader-client-ca-file="$p/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User \
    --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$p/front-proxy-client.crt" \
    --proxy-client-key-file="$p/front-proxy-client.key" \
    --enable-aggregator-routing=true \
    --allow-privileged=true \
    --endpoint-reconciler-type="$reconciler" \
    --cert-dir="$AGENTTYPE_STATE/apiserver-certs")
  if ! is_current "${apiserver[@]}"; then
    # Its watchers would hold a stopping apiserver for its whole shutdown timeout: stop them first.
    at_stop kube-controller-manager
  fi
  start_component "${apiserver[@]}"
  wait_healthy kube-apiserver 120

  # Bootstrap RBAC beyond the defaults: the apiserver's kubelet client may use the kubelet API.
  "$b/kubectl" --kubeconfig="$AGENTTYPE_KUBECONFIG" apply --server-side --field-manager=agenttype-harness -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: agenttype:kube-apiserver-kubelet-client
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:kubelet-api-admin
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: kube-apiserver-kubelet-client
EOF

  local kc=$AGENTTYPE_KUBECONFIGS/controller-manager.kubeconfig
  start_component kube-controller-manager "$b/kube-controller-manager" \
    --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --bind-address=127.0.0.1 --secure-port="$AGENTTYPE_KCM_PORT" \
    --cert-dir="$AGENTTYPE_STATE/controller-manager-certs" \
    --service-account-private-key-file="$p/sa.key" \
    --root-ca-file="$p/ca.crt" \
    --use-service-account-credentials=true \
    --cluster-signing-cert-file="$p/ca.crt" --cluster-signing-key-file="$p/ca.key" \
    --service-cluster-ip-range="$AGENTTYPE_SERVICE_CIDR" \
    --cluster-cidr="$AGENTTYPE_CLUSTER_CIDR" \
    --leader-elect=false
  wait_healthy kube-controller-manager 60

  # Ready for pods: the token controller has given `default` its ServiceAccount.
  at_wait_for "serviceaccount default/default" 60 \
    "$b/kubectl" --kubeconfig="$AGENTTYPE_KUBECONFIG" -n default get serviceaccount default \
    || at_die "controller-manager did not create serviceaccount default/default"

  at_log "control plane up in $((SECONDS - t0))s: $AGENTTYPE_APISERVER_URL ($("$b/kubectl" --kubeconfig="$AGENTTYPE_KUBECONFIG" version -o json | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -1))"
  at_log "kubeconfig: export KUBECONFIG=$AGENTTYPE_KUBECONFIG"
  echo "$AGENTTYPE_KUBECONFIG"
}

down_control_plane() {
  local i name port ip busy=0
  for ((i = ${#CP_COMPONENTS[@]} - 1; i >= 0; i--)); do at_stop "${CP_COMPONENTS[i]}"; done
  rm -f "$AGENTTYPE_STATE/apiserver-ip"
  if [[ ${AGENTTYPE_KEEP_ETCD_DATA:-0} != 1 && -d $AGENTTYPE_STATE/etcd ]]; then
    at_log "wiping etcd data ($AGENTTYPE_STATE/etcd)"
    rm -rf "$AGENTTYPE_STATE/etcd"
  fi
  for name in "${CP_COMPONENTS[@]}"; do
    read -r port ip <<< "$(port_of "$name")"
    if at_port_listening "$port" "$ip"; then at_log "$ip:$port ($name) is still listening"; busy=1; fi
  done
  at_port_listening "$AGENTTYPE_ETCD_PEER_PORT" 127.0.0.1 && { at_log "port $AGENTTYPE_ETCD_PEER_PORT (etcd peer) is still listening"; busy=1; }
  (( busy == 0 )) || at_die "ports still in use after down"
  at_log "control plane down"
}

status() {
  local name ok=0 state
  echo "state:      $AGENTTYPE_STATE"
  echo "binaries:   $AGENTTYPE_BIN$([[ -f $AGENTTYPE_BIN/.complete ]] || echo ' (not built)')"
  echo "kubeconfig: $AGENTTYPE_KUBECONFIG"
  echo "apiserver:  $AGENTTYPE_APISERVER_URL"
  for name in "${CP_COMPONENTS[@]}"; do
    if ! at_pid_alive "$name"; then state="stopped"; ok=1
    elif "health_$name"; then state="running pid $(<"$AGENTTYPE_RUN/$name.pid"), healthy"
    else state="running pid $(<"$AGENTTYPE_RUN/$name.pid"), UNHEALTHY"; ok=1
    fi
    printf '  %-24s %s\n' "$name" "$state"
  done
  if [[ $1 != control-plane && -x $HERE/node.sh ]]; then "$HERE/node.sh" status || ok=1; fi
  return $ok
}

cmd=${1:-}; tier=${2:-}
case $cmd in
  up)
    lock
    at_track_starts
    case ${tier:-control-plane} in
      control-plane) up_control_plane ;;
      node|full)
        # The full tier: node.sh's bridge first (the apiserver binds its gateway address, which
        # pods reach), then the control plane on that address, then containerd, kubelet & co.
        [[ -x $HERE/node.sh ]] || at_die "tests/cluster/node.sh is not there yet"
        "$HERE/node.sh" net-up >&2
        node_ip=$("$HERE/node.sh" env | sed -n 's/^AGENTTYPE_APISERVER_IP=//p')
        [[ -n $node_ip ]] || at_die "node.sh env printed no AGENTTYPE_APISERVER_IP"
        AGENTTYPE_APISERVER_IP=$node_ip "$HERE/cluster.sh" up control-plane >/dev/null
        AGENTTYPE_APISERVER_IP=$node_ip "$HERE/node.sh" up >&2
        echo "$AGENTTYPE_KUBECONFIG" ;;
      *) usage ;;
    esac ;;
  down)
    lock
    case ${tier:-all} in
      control-plane) down_control_plane ;;
      node|full|all)
        # node.sh down only when this state dir ran the node tier (its pidfiles, or an apiserver
        # on the bridge address), so a control-plane-only `down` leaves the host network alone.
        had_node_net=0 had_node=0
        [[ $AGENTTYPE_APISERVER_IP != 127.* ]] && had_node_net=1 had_node=1
        for f in containerd kubelet kube-scheduler kube-proxy; do
          [[ -e $AGENTTYPE_RUN/$f.pid ]] && had_node=1
        done
        if [[ -x $HERE/node.sh ]] && (( had_node )); then "$HERE/node.sh" down >&2; fi
        down_control_plane
        # node.sh down keeps the bridge while the apiserver listens on it; now it can go.
        if [[ -x $HERE/node.sh ]] && (( had_node_net )); then "$HERE/node.sh" net-down >&2; fi ;;
      *) usage ;;
    esac ;;
  status) status "${tier:-all}" ;;
  env)
    echo "export KUBECONFIG=$(printf %q "$AGENTTYPE_KUBECONFIG")"
    echo "export PATH=$(printf %q "$AGENTTYPE_BIN"):\$PATH" ;;
  *) usage ;;
esac
