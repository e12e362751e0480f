#!/usr/bin/env bash
# kind's node image for the project's pinned Kubernetes, made without a registry (ADR 0012), in the
# engine of tests/kind/docker.sh:
#
#   tests/kind/node-image.sh          build it if its inputs changed; last stdout line: the image name
#   tests/kind/node-image.sh inputs   only the inputs that need no engine (the root filesystem
#                                     tar, kubeadm, the storage provisioner): `make test` makes
#                                     them ahead
#
#   1. a root filesystem from Debian packages (debootstrap: systemd, containerd, runc, the CNI
#      plugins, iptables...), cached as a tar in $AGENTTYPE_CACHE/rootfs, `docker import`ed;
#   2. kubeadm (built here), kubelet, kubectl and crictl of the harness's pins, and the files of
#      tests/kind/node/ on it (tests/kind/node/Dockerfile);
#   3. the images kubeadm expects, each the binary from the Go module proxy in a scratch image
#      (kube-proxy on the Debian base, for iptables; CoreDNS with kubeadm's Corefile's plugins),
#      pause from tests/cluster/images.sh, the storage provisioner of the default StorageClass
#      (build-local-path.sh, in a scratch image; its helper pods run the Debian base),
#      and the base (for the CNI DaemonSet), imported into the node's containerd (k8s.io namespace)
#      in a build container, which is then committed as the node image.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=../cluster/lib.sh
. "$HERE/../cluster/lib.sh"
eval "$("$HERE/docker.sh" env | sed 's/^/export /')"
export DOCKER_BUILDKIT=1

SUITE=${AGENTTYPE_BASE_SUITE:-bookworm}
DEBIAN_MIRROR=${AGENTTYPE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
NODE_IMAGE=${AGENTTYPE_KIND_NODE_IMAGE:-localhost/agenttype/kind-node:$K8S_VERSION}
NODE_BASE=localhost/agenttype/kind-node-base:$SUITE
DEBIAN_BASE=localhost/agenttype/debian-base:$SUITE
# Versions in the image names kubeadm $K8S_VERSION asks for (`kubeadm config images list`); the
# etcd image holds the harness's etcd, a newer patch of the same minor.
PAUSE_TAG=3.10.1
ETCD_TAG=3.6.5-0
# The name default-storage.yaml gives the provisioner's image (pulled never).
LOCAL_PATH_IMAGE=localhost/agenttype/local-path-provisioner:$LOCAL_PATH_VERSION
PACKAGES=systemd,systemd-sysv,dbus,containerd,runc,containernetworking-plugins,iptables,nftables,conntrack,socat,ethtool,mount,util-linux,kmod,iproute2,ca-certificates,procps,bash
ROOTFS=$AGENTTYPE_CACHE/rootfs/kind-node-$SUITE.tar
KUBEADM_DIR=$AGENTTYPE_CACHE/bin/kubeadm-$K8S_VERSION
LOADED=$AGENTTYPE_CACHE/docker-loaded

log() { at_log "kind node image: $*"; }
die() { at_die "kind node image: $*"; }
docker() { "$AGENTTYPE_DOCKER" "$@"; }

rootfs() {
  at_build_lock "$ROOTFS"
  if [[ -s $ROOTFS && $(cat "$ROOTFS.packages" 2>/dev/null) == "$PACKAGES" ]]; then return; fi
  local dir t0=$SECONDS
  dir=$(mktemp -d "$AGENTTYPE_CACHE/rootfs/.kind-node.XXXXXX")
  log "debootstrap $SUITE with $PACKAGES (minutes)"
  if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$dir" "$DEBIAN_MIRROR" \
      > "$AGENTTYPE_CACHE/rootfs/debootstrap-kind-node.log" 2>&1; then
    rm -rf "$dir"
    die "debootstrap failed: $AGENTTYPE_CACHE/rootfs/debootstrap-kind-node.log"
  fi
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/var/log/*.log "$dir"/tmp/*
  tar -C "$dir" --numeric-owner --xattrs --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* -cf "$ROOTFS.tmp" .
  rm -rf "$dir"
  mv "$ROOTFS.tmp" "$ROOTFS"
  echo "$PACKAGES" > "$ROOTFS.packages"
  log "root filesystem $ROOTFS in $((SECONDS - t0))s"
}

# kubeadm of $K8S_VERSION: build-components.sh's wrapper module, one more command of it.
kubeadm_bin() {
  local stamp
  stamp="kubeadm=$K8S_VERSION go=$(go env GOVERSION)"
  at_build_lock "$KUBEADM_DIR"
  if [[ -x $KUBEADM_DIR/kubeadm && $(cat "$KUBEADM_DIR/.complete" 2>/dev/null) == "$stamp" ]]; then return; fi
  at_go_env
  export CGO_ENABLED=0
  local dir=$AGENTTYPE_CACHE/build/kind-kubeadm-$K8S_VERSION minor ld="-s -w" p
  "$REPO/tests/cluster/build-components.sh" >/dev/null
  mkdir -p "$dir" "$KUBEADM_DIR"
  cp "$AGENTTYPE_CACHE/build/kubernetes-$K8S_VERSION/go.mod" "$AGENTTYPE_CACHE/build/kubernetes-$K8S_VERSION/go.sum" "$dir/"
  minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  log "building kubeadm $K8S_VERSION"
  (cd "$dir" && go get "k8s.io/kubernetes/cmd/kubeadm@$K8S_VERSION" && go build -trimpath \
    -tags selinux,notest,grpcnotrace -ldflags "all=$ld" -o "$KUBEADM_DIR/kubeadm" k8s.io/kubernetes/cmd/kubeadm) >&2
  echo "$stamp" > "$KUBEADM_DIR/.complete"
}

# component NAME TAG BINARY [BASE [ENTRYPOINT]]: BINARY as /usr/local/bin/NAME in a scratch (or BASE)
# image; kubeadm's manifests name the command, except CoreDNS's, which gives only arguments.
component() {
  local name=$1 tag=$2 bin=$3 base=${4:-scratch} entrypoint=${5:-} ctx
  ctx=$(mktemp -d)
  cp "$bin" "$ctx/$name"
  {
    printf 'FROM %s\nCOPY %s /usr/local/bin/%s\n' "$base" "$name" "$name"
    printf 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n'
    [[ -z $entrypoint ]] || printf 'ENTRYPOINT ["/usr/local/bin/%s"]\n' "$name"
  } > "$ctx/Dockerfile"
  docker build -q -t "$tag" "$ctx" >/dev/null
  rm -rf "$ctx"
}

main() {
  local t0=$SECONDS
  "$HERE/images.sh" bases >&2
  rootfs
  kubeadm_bin
  "$REPO/tests/cluster/images.sh" pause >&2
  local coredns local_path
  # The harness's CoreDNS: built with the plugins of the Corefile kubeadm writes.
  coredns=$("$REPO/tests/cluster/build-coredns.sh" | tail -n 1)
  local_path=$("$HERE/build-local-path.sh" | tail -n 1)
  grep -qF "image: $LOCAL_PATH_IMAGE" "$HERE/node/manifests/default-storage.yaml" \
    || die "node/manifests/default-storage.yaml does not name $LOCAL_PATH_IMAGE (the LOCAL_PATH_VERSION pin)"

  local sum inputs
  inputs=$(cat "$ROOTFS.packages" "$KUBEADM_DIR/.complete" "$AGENTTYPE_BIN/.complete" "$AGENTTYPE_COREDNS_BIN/.complete" \
    "$(dirname "$local_path")/.complete" \
    <(tar -C "$HERE/node" -c --sort=name --mtime=@0 --owner=0 --group=0 . | sha256sum) "$0" | sha256sum)
  sum=${inputs%% *}
  if [[ $(cat "$LOADED/kind-node" 2>/dev/null) == "$sum" ]] && docker image inspect "$NODE_IMAGE" >/dev/null 2>&1; then
    log "$NODE_IMAGE is up to date"
    echo "$NODE_IMAGE"
    return
  fi

  log "docker import $ROOTFS as $NODE_BASE"
  docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$ROOTFS" "$NODE_BASE" >/dev/null

  local ctx
  ctx=$(mktemp -d)
  cp -r "$HERE/node/." "$ctx/"
  mkdir -p "$ctx/bin"
  cp "$KUBEADM_DIR/kubeadm" "$AGENTTYPE_BIN/kubelet" "$AGENTTYPE_BIN/kubectl" "$AGENTTYPE_BIN/crictl" "$ctx/bin/"
  log "docker build of the node's files and binaries"
  docker build -q --build-arg "BASE_IMAGE=$NODE_BASE" --build-arg "K8S_VERSION=$K8S_VERSION" \
    -t "$NODE_IMAGE-stage" "$ctx" >/dev/null
  rm -rf "$ctx"

  log "the control-plane images"
  local c images=()
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    component "$c" "registry.k8s.io/$c:$K8S_VERSION" "$AGENTTYPE_BIN/$c"; images+=("registry.k8s.io/$c:$K8S_VERSION")
  done
  component kube-proxy "registry.k8s.io/kube-proxy:$K8S_VERSION" "$AGENTTYPE_BIN/kube-proxy" "$NODE_BASE"
  images+=("registry.k8s.io/kube-proxy:$K8S_VERSION")
  component etcd "registry.k8s.io/etcd:$ETCD_TAG" "$AGENTTYPE_BIN/etcd"; images+=("registry.k8s.io/etcd:$ETCD_TAG")
  component coredns "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" "$coredns" scratch entrypoint
  images+=("registry.k8s.io/coredns/coredns:$COREDNS_VERSION")
  component local-path-provisioner "$LOCAL_PATH_IMAGE" "$local_path"; images+=("$LOCAL_PATH_IMAGE")
  # The harness's pause program, from buildah's storage.
  local archive
  archive=$(mktemp "$AGENTTYPE_CACHE/archives/kind-node.XXXXXX")
  env -u DOCKER_CONFIG "$REPO/tests/cluster/images.sh" buildah push --quiet --signature-policy \
    "$AGENTTYPE_CACHE/buildah/policy.json" localhost/agenttype/pause:1.0 "docker-archive:$archive:registry.k8s.io/pause:$PAUSE_TAG" >/dev/null
  docker load -q -i "$archive" >/dev/null
  rm -f "$archive"
  images+=("registry.k8s.io/pause:$PAUSE_TAG")
  images+=("$DEBIAN_BASE")

  # Preload: containerd of the stage image, started in a build container, imports every image.
  local dir build
  dir=$(mktemp -d "$AGENTTYPE_CACHE/archives/kind-node-images.XXXXXX")
  docker save -o "$dir/images.tar" "${images[@]}"
  docker rm -f agenttype-kind-node-build >/dev/null 2>&1 || true
  build=$(docker run -d --name agenttype-kind-node-build --privileged --entrypoint sleep \
    -v "$dir:/images:ro" "$NODE_IMAGE-stage" infinity)
  log "importing ${#images[@]} images into the node's containerd"
  docker exec "$build" bash -c '
    set -e
    containerd >/tmp/containerd.log 2>&1 &
    for i in $(seq 1 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
    ctr -n k8s.io images import --all-platforms --no-unpack /images/images.tar
    ctr -n k8s.io images ls -q
    kill %1; wait %1 || true' >&2
  docker commit --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' --change 'CMD []' \
    "$build" "$NODE_IMAGE" >/dev/null
  docker rm -f "$build" >/dev/null
  docker rmi "$NODE_IMAGE-stage" >/dev/null
  rm -rf "$dir"
  mkdir -p "$LOADED"
  echo "$sum" > "$LOADED/kind-node"
  log "built $NODE_IMAGE in $((SECONDS - t0))s"
  echo "$NODE_IMAGE"
}

case ${1:-build} in
  build) main ;;
  inputs) rootfs; kubeadm_bin; "$HERE/build-local-path.sh" >/dev/null ;;
  *) at_die "usage: $0 [build|inputs]" ;;
esac
