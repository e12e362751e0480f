# shellcheck shell=bash disable=SC2034  # sourced: defines variables for the other scripts
# Shared by every script of the local cluster harness: pinned versions and the paths
# of the build cache (outside the repo, reused across runs) and of the cluster state.
# Source it; it defines variables and small helpers, and starts nothing.

# Pins. Changing one makes build-components.sh rebuild into a new, versioned cache dir.
# Kubernetes: newest 1.34 patch on the Go module proxy (`go list -m -versions k8s.io/kubernetes`).
#   1.34 still runs on cgroup v1 by default (1.35 flips failCgroupV1) and supports containerd 1.6.
K8S_VERSION=${K8S_VERSION:-v1.34.4}
# etcd: newest 3.6 patch on the proxy (Kubernetes 1.34 ships etcd 3.6.x).
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
# Helm 3.19 is the line built against the k8s 0.34 libraries (skew policy: 1.31–1.34).
HELM_VERSION=${HELM_VERSION:-v3.19.5}
# crictl follows the Kubernetes minor.
CRICTL_VERSION=${CRICTL_VERSION:-v1.34.0}
# CoreDNS: the version kubeadm v1.34 deploys (cmd/kubeadm/app/constants: CoreDNSVersion).
#   Built on its own by build-coredns.sh, into its own cache dir (not part of AGENTTYPE_BIN).
COREDNS_VERSION=${COREDNS_VERSION:-v1.12.1}
# Tilt: newest release on the proxy that builds with our Go (its go.mod needs go >= 1.26.0).
#   Built on its own by build-tilt.sh, into its own cache dir (not part of AGENTTYPE_BIN).
TILT_VERSION=${TILT_VERSION:-v0.37.6}
# local-path-provisioner: the kind node image's storage provisioner (tests/kind/build-local-path.sh);
#   newest on the proxy. tests/kind/node/manifests/default-storage.yaml names its image tag.
LOCAL_PATH_VERSION=${LOCAL_PATH_VERSION:-v0.0.30}

AGENTTYPE_CACHE=${AGENTTYPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agenttype}
# Binaries built from the Go module proxy, one directory per pin set.
AGENTTYPE_BIN=${AGENTTYPE_BIN:-$AGENTTYPE_CACHE/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION-crictl-$CRICTL_VERSION}
# Tilt, built by build-tilt.sh: a directory of its own, so its pin never invalidates the above.
AGENTTYPE_TILT_BIN=${AGENTTYPE_TILT_BIN:-$AGENTTYPE_CACHE/bin/tilt-$TILT_VERSION}
# CoreDNS, built by build-coredns.sh: its own directory, like Tilt's.
AGENTTYPE_COREDNS_BIN=${AGENTTYPE_COREDNS_BIN:-$AGENTTYPE_CACHE/bin/coredns-$COREDNS_VERSION}
AGENTTYPE_COREDNS_IMAGE=${AGENTTYPE_COREDNS_IMAGE:-localhost/agenttype/coredns:${COREDNS_VERSION#v}}
# Everything a running cluster owns: pids, logs, certs, etcd data, containerd state, kubeconfig.
AGENTTYPE_STATE=${AGENTTYPE_STATE:-/var/lib/agenttype-cluster}
AGENTTYPE_KUBECONFIG=$AGENTTYPE_STATE/kubeconfig

# Network of the control plane. AGENTTYPE_APISERVER_IP is the apiserver's --bind-address and
# --advertise-address and is in its serving certificate; the node tier sets it to an address
# pods can reach (e.g. the CNI bridge gateway). Certificates are regenerated when it changes.
# When unset, the address a running control plane was started with (recorded by `cluster.sh up`,
# removed by `down`) is kept, so a plain `cluster.sh up control-plane` (e.g. from a test) never
# moves an apiserver that the node tier started on another address.
if [[ -z ${AGENTTYPE_APISERVER_IP:-} && -s $AGENTTYPE_STATE/apiserver-ip ]]; then
  AGENTTYPE_APISERVER_IP=$(<"$AGENTTYPE_STATE/apiserver-ip")
fi
AGENTTYPE_APISERVER_IP=${AGENTTYPE_APISERVER_IP:-127.0.0.1}
AGENTTYPE_APISERVER_PORT=${AGENTTYPE_APISERVER_PORT:-6443}
AGENTTYPE_ETCD_CLIENT_PORT=${AGENTTYPE_ETCD_CLIENT_PORT:-2379}
AGENTTYPE_ETCD_PEER_PORT=${AGENTTYPE_ETCD_PEER_PORT:-2380}
AGENTTYPE_KCM_PORT=${AGENTTYPE_KCM_PORT:-10257}           # controller-manager secure port
AGENTTYPE_SERVICE_CIDR=${AGENTTYPE_SERVICE_CIDR:-10.96.0.0/16}
AGENTTYPE_SERVICE_IP=${AGENTTYPE_SERVICE_IP:-10.96.0.1}    # first IP of the service CIDR
AGENTTYPE_CLUSTER_CIDR=${AGENTTYPE_CLUSTER_CIDR:-10.88.0.0/16}
AGENTTYPE_CLUSTER_DOMAIN=${AGENTTYPE_CLUSTER_DOMAIN:-cluster.local}
AGENTTYPE_DNS_IP=${AGENTTYPE_DNS_IP:-10.96.0.10}          # the kube-dns Service (CoreDNS), as kubeadm
AGENTTYPE_NODE_NAME=${AGENTTYPE_NODE_NAME:-agenttype-node}
AGENTTYPE_APISERVER_URL="https://$AGENTTYPE_APISERVER_IP:$AGENTTYPE_APISERVER_PORT"

# Derived paths (state).
AGENTTYPE_PKI=$AGENTTYPE_STATE/pki
AGENTTYPE_LOGS=$AGENTTYPE_STATE/logs
AGENTTYPE_RUN=$AGENTTYPE_STATE/run          # pidfiles
AGENTTYPE_KUBECONFIGS=$AGENTTYPE_STATE/kubeconfigs   # one per component identity

at_log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
at_die() { at_log "ERROR: $*"; exit 1; }

# at_apt_install PACKAGE...: installs Debian packages (no recommends), updating the package
# lists first when the install fails without them (a fresh machine has none). Tiers run side by
# side, and two installs at once fail on dpkg's lock ("Could not get lock"): ours take turns on a
# lock of their own, and wait up to 15 min for dpkg's lock, which other apt runs hold.
at_apt_install() {
  [ "$(id -u)" = 0 ] || at_die "installing $* needs root (apt-get install $*)"
  command -v apt-get >/dev/null || at_die "missing $* and no apt-get"
  at_log "installing $* with apt"
  local fd apt=(apt-get -o DPkg::Lock::Timeout=900)
  exec {fd}>/var/lock/agenttype-apt.lock
  flock -w 1800 "$fd" || at_die "another install still holds /var/lock/agenttype-apt.lock after 30 min"
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "$@" >&2 ||
    { "${apt[@]}" update >&2 && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "$@" >&2; } ||
    at_die "apt-get install $* failed"
  exec {fd}>&-
}

# Go for the builds from the module proxy (build-components.sh, build-tilt.sh): the installed
# toolchain only, never another one fetched, and no VCS stamping (module sources have no VCS).
# The compiler collects garbage less often (GOGC 400, unless set): measured on a cold compile of
# k8s.io/api, client-go and Kubernetes' pkg/apis, 207 s instead of 246-249 s (0.84x) and 19% less
# CPU, for 0.73 GB instead of 0.48 GB at the largest compile.
at_go_env() {
  export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOGC=${GOGC:-400}
  command -v go >/dev/null || at_die "go is not installed"
}
# at_mod_info MODULE@VERSION FIELD: a field of `go mod download -json` (Dir, GoMod, Info, ...).
at_mod_info() {
  go mod download -json "$1" | sed -n "s/^[[:space:]]*\"$2\": \"\(.*\)\",\{0,1\}$/\1/p"
}

# at_build_lock PATH: holds PATH.lock until the script exits, so one build of PATH runs at a time
# (`make test` builds ahead in the background while a tier may ask for the same thing): a second
# builder says whom it waits for, waits, and then finds the first one's build complete.
at_build_lock() {
  local lock=$1.lock fd
  mkdir -p "$(dirname "$lock")"
  exec {fd}>"$lock"
  flock -n "$fd" && return 0
  at_log "waiting for another build of $1 (up to 60 min)"
  flock -w 3600 "$fd" || at_die "another build of $1 still holds $lock after 60 min"
}

# at_go_wrapper_build DIR MODULE@VERSION PKG OUT [LDFLAGS]: builds PKG (a main package of MODULE)
# into OUT, statically (CGO off, -trimpath), through a module generated in DIR that requires
# MODULE@VERSION: for modules without replace directives, whose dependencies the checksum
# database verifies as usual. LDFLAGS come after "-s -w -buildid=".
at_go_wrapper_build() {
  local dir=$1 module=${2%@*} version=${2#*@} pkg=$3 out=$4 ldflags="-s -w -buildid= ${5:-}"
  mkdir -p "$dir"
  printf '// Generated by tests/cluster/lib.sh (at_go_wrapper_build): builds %s %s.\nmodule agenttype.local/build/%s\n\ngo 1.24\n\nrequire %s %s\n' \
    "$module" "$version" "$(basename "$dir")" "$module" "$version" > "$dir/go.mod"
  rm -f "$dir/go.sum"
  (cd "$dir" && go get "$pkg@$version" >/dev/null 2>"$dir/go-get.log") \
    || { cat "$dir/go-get.log" >&2; at_die "go get $pkg@$version failed"; }
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out" "$pkg")
}

# A build cached in a directory of its own (one per pin set): its .complete stamp is written
# last and names the pins, so a build cut short or made from other pins is never reused.
# at_build_reuse DIR STAMP_TEXT OUTPUT [FORCE]: takes DIR's build lock (at_build_lock); when DIR
# then holds a complete build with that stamp (and FORCE is not 1), prints OUTPUT and exits the
# script; otherwise returns, the lock still held.
at_build_reuse() {
  local dir=$1 stamp=$2 output=$3 force=${4:-0}
  at_build_lock "$dir"
  if [[ $force != 1 && -f $dir/.complete && -e $output ]] && [[ $(<"$dir/.complete") == "$stamp" ]]; then
    at_log "already built: $output"
    echo "$output"
    exit 0
  fi
}
# at_build_done PARTIAL DIR STAMP_TEXT: stamps the partial directory and puts it in DIR's place.
at_build_done() {
  printf '%s\n' "$3" > "$1/.complete"
  if [[ -d $2 ]]; then rm -rf "$2"; fi
  mv "$1" "$2"
}

# at_proc_running PID: true when PID is a live process, not a zombie waiting to be reaped.
at_proc_running() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
  [[ -n $state && $state != Z ]]
}

# at_pid_alive NAME: true when $AGENTTYPE_RUN/NAME.pid names a live (not zombie) process whose
# program is NAME, so a pid recycled by an unrelated process is never taken for ours.
at_pid_alive() {
  local f=$AGENTTYPE_RUN/$1.pid pid argv0
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] && at_proc_running "$pid" || return 1
  argv0=$(tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | head -1)
  [[ ${argv0##*/} == "$1" ]]
}

# ---------------------------------------------------------------- processes
# Every process of the cluster is started and stopped by these, in cluster.sh and node.sh alike:
# detached in its own session (so it outlives the script), its pid in $AGENTTYPE_RUN/NAME.pid,
# the output of this start alone in $AGENTTYPE_LOGS/NAME.log (the previous start's is kept as
# NAME.log.1), so a failure shows its own log and never an older run's.

# at_log_tail NAME: the end of NAME's log, on stderr, to say why it failed.
at_log_tail() {
  local log=$AGENTTYPE_LOGS/$1.log
  [[ -s $log ]] || return 0
  echo "--- last lines of $log" >&2
  tail -n 30 "$log" >&2
  echo "---" >&2
}

# at_start NAME PROGRAM ARGS...: start PROGRAM, whose file name is NAME, and return once it runs:
# until setsid has exec'd PROGRAM its pid still names bash or setsid, and a liveness check made
# then would take a starting process for a dead one. Fails, showing the log, when the process
# exits before that. Appends NAME to the file $AGENTTYPE_STARTED when it is set (see
# at_stop_started).
at_start() {
  local name=$1 log=$AGENTTYPE_LOGS/$1.log pid deadline=$((SECONDS + 30))
  shift
  [[ ${1##*/} == "$name" ]] || at_die "at_start: program $1 is not named $name"
  mkdir -p "$AGENTTYPE_LOGS" "$AGENTTYPE_RUN"
  if [[ -e $log ]]; then mv -f "$log" "$log.1"; fi
  printf '=== %s starting %s\n' "$(date -u +%FT%TZ)" "$(printf '%q ' "$@")" > "$log"
  # 9>&-: fd 9 is cluster.sh's lock; a daemon must not hold it.
  setsid "$@" >> "$log" 2>&1 < /dev/null 9>&- &
  pid=$!
  echo "$pid" > "$AGENTTYPE_RUN/$name.pid"
  if [[ -n ${AGENTTYPE_STARTED:-} ]]; then echo "$name" >> "$AGENTTYPE_STARTED"; fi
  until at_pid_alive "$name"; do
    if ! at_proc_running "$pid"; then
      at_log_tail "$name"
      at_log "$name exited at once; log: $log"
      return 1
    fi
    if (( SECONDS >= deadline )); then
      at_log "$name: pid $pid has not exec'd $1 after 30s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
      return 1
    fi
    sleep 0.01
  done
  at_log "$name: started pid $pid"
}

# at_wait_ready NAME TIMEOUT_SECONDS COMMAND...: poll COMMAND until it succeeds while NAME runs.
# Fails, showing NAME's log, when NAME exits or the time is up.
at_wait_ready() {
  local name=$1 timeout=$2 start=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ! at_pid_alive "$name"; then
      at_log_tail "$name"
      at_log "$name exited; log: $AGENTTYPE_LOGS/$name.log"
      return 1
    fi
    if (( SECONDS - start >= timeout )); then
      at_log_tail "$name"
      at_log "$name not ready after ${timeout}s; log: $AGENTTYPE_LOGS/$name.log"
      return 1
    fi
    sleep 0.2
  done
}

# at_stop NAME [TIMEOUT_SECONDS]: TERM the process of NAME's pidfile, KILL it after TIMEOUT
# (default 15 s); a pid that no longer names NAME's program is left alone.
at_stop() {
  local name=$1 timeout=${2:-15} f=$AGENTTYPE_RUN/$1.pid pid deadline
  [[ -s $f ]] || return 0
  pid=$(<"$f")
  if at_pid_alive "$name"; then
    at_log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + timeout))
    while at_proc_running "$pid" && (( SECONDS < deadline )); do sleep 0.02; done
    if at_proc_running "$pid"; then
      at_log "$name did not stop on TERM in ${timeout}s: KILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 5))
      while at_proc_running "$pid" && (( SECONDS < deadline )); do sleep 0.02; done
    fi
  fi
  rm -f "$f" "$AGENTTYPE_RUN/$name.args"
}

# at_track_starts: from now on, if this script fails, stop every process that it (or a script
# it calls) started, newest first, so a failed `up` leaves nothing half-started behind. The
# outermost script owns the list; nested ones inherit $AGENTTYPE_STARTED and append to it.
at_track_starts() {
  [[ -z ${AGENTTYPE_STARTED:-} ]] || return 0
  mkdir -p "$AGENTTYPE_RUN"
  AGENTTYPE_STARTED=$(mktemp "$AGENTTYPE_RUN/started.XXXXXX")
  export AGENTTYPE_STARTED
  trap at_stop_started EXIT
}

# at_stop_started: the EXIT trap of at_track_starts.
at_stop_started() {
  local code=$? names=() i
  if (( code != 0 )) && [[ -s $AGENTTYPE_STARTED ]]; then
    mapfile -t names < "$AGENTTYPE_STARTED"
    at_log "failed (exit $code): stopping what this run started: ${names[*]}"
    for ((i = ${#names[@]} - 1; i >= 0; i--)); do at_stop "${names[i]}" || true; done
    # The script's own clean-up of what those processes leave (e.g. cluster.sh's recorded address).
    if declare -F at_after_stopping_started >/dev/null; then at_after_stopping_started || true; fi
  fi
  rm -f "$AGENTTYPE_STARTED"
  return "$code"
}

# at_port_listening PORT [IPV4]: true when something listens on that TCP port (on IPV4 or on a
# wildcard address, when IPV4 is given; listeners on other addresses do not conflict).
at_port_listening() {
  local port hex ip=${2:-}
  port=$(printf '%04X' "$1")
  if [[ -n $ip ]]; then
    local a b c d
    IFS=. read -r a b c d <<< "$ip"
    hex=$(printf '%02X%02X%02X%02X' "$d" "$c" "$b" "$a")   # /proc/net/tcp is little-endian
  fi
  # /proc/net/tcp{,6}: column 2 is local addr:port, column 4 the state (0A = LISTEN).
  awk -v port="$port" -v ip="$hex" '
    $4 == "0A" {
      split($2, l, ":")
      if (l[2] != port) next
      if (ip == "" || l[1] == ip || l[1] ~ /^0+$/) found = 1
    }
    END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# at_wait_for DESCRIPTION TIMEOUT_SECONDS COMMAND...: poll COMMAND until it succeeds.
at_wait_for() {
  local what=$1 timeout=$2 start=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS - start >= timeout )); then
      at_log "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------- PKI (openssl)
# All certificates are signed by one CA, $AGENTTYPE_PKI/ca.{crt,key}; the controller-manager
# signs CSRs with it too, so every certificate in the cluster chains to ca.crt.

# at_pki_ca [NAME]: create the CA $AGENTTYPE_PKI/NAME.{crt,key} once (NAME defaults to ca).
at_pki_ca() {
  local ca=${1:-ca}
  mkdir -p "$AGENTTYPE_PKI"
  [[ -s $AGENTTYPE_PKI/$ca.crt && -s $AGENTTYPE_PKI/$ca.key ]] && return 0
  at_log "pki: creating CA $ca"
  openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 3650 \
    -keyout "$AGENTTYPE_PKI/$ca.key" -out "$AGENTTYPE_PKI/$ca.crt" -subj "/CN=agenttype-$ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
  chmod 600 "$AGENTTYPE_PKI/$ca.key"
}

# at_pki_issue NAME CN ORG USAGE [SANS]: issue $AGENTTYPE_PKI/NAME.{crt,key} signed by the CA
#   (by $AGENTTYPE_PKI/$AT_PKI_CA.crt when AT_PKI_CA is set, e.g. front-proxy-ca).
#   ORG may be empty; USAGE is client, server or both; SANS like "DNS:localhost,IP:127.0.0.1".
#   Skipped when NAME.crt exists with the same subject/usage/SANs (recorded in NAME.spec);
#   reissued (same key kept) when they differ.
at_pki_issue() {
  local name=$1 cn=$2 org=$3 usage=$4 sans=${5:-}
  local crt=$AGENTTYPE_PKI/$name.crt key=$AGENTTYPE_PKI/$name.key spec=$AGENTTYPE_PKI/$name.spec
  local ca=${AT_PKI_CA:-ca}
  local want="ca=$ca cn=$cn o=$org usage=$usage sans=$sans"
  if [[ -s $crt && -s $key && -f $spec && $(<"$spec") == "$want" ]]; then return 0; fi
  at_log "pki: issuing $name (CN=$cn${org:+ O=$org}${sans:+ $sans})"
  local subj="/CN=$cn" eku ext
  [[ -n $org ]] && subj="/O=$org/CN=$cn"
  case $usage in
    client) eku=clientAuth ;; server) eku=serverAuth ;; both) eku=serverAuth,clientAuth ;;
    *) at_die "at_pki_issue: usage must be client, server or both" ;;
  esac
  [[ -s $key ]] || { openssl genrsa -out "$key" 2048 2>/dev/null; chmod 600 "$key"; }
  ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [[ -n $sans ]] && echo "subjectAltName=$sans"
  } > "$ext"
  openssl req -new -key "$key" -subj "$subj" 2>/dev/null |
    openssl x509 -req -CA "$AGENTTYPE_PKI/$ca.crt" -CAkey "$AGENTTYPE_PKI/$ca.key" \
      -CAcreateserial -CAserial "$AGENTTYPE_PKI/$ca.srl" -sha256 -days 825 \
      -extfile "$ext" -out "$crt" 2>/dev/null
  rm -f "$ext"
  echo "$want" > "$spec"
}

# at_write_kubeconfig OUT USER CERT KEY [SERVER]: a kubeconfig with embedded credentials.
at_write_kubeconfig() {
  local out=$1 user=$2 cert=$3 key=$4 server=${5:-$AGENTTYPE_APISERVER_URL} tmp
  mkdir -p "$(dirname "$out")"
  tmp=$out.tmp.$$
  cat > "$tmp" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: agenttype
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 "$AGENTTYPE_PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$cert")
    client-key-data: $(base64 -w0 "$key")
contexts:
- name: $user@agenttype
  context:
    cluster: agenttype
    user: $user
current-context: $user@agenttype
KUBECONFIG
  chmod 600 "$tmp"
  mv "$tmp" "$out"
}
