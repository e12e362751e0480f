#!/usr/bin/env bash
# Builds the project's container images without Docker and imports them into the node's
# containerd (k8s.io namespace).
#
#   tests/cluster/images.sh [all]          base + pause + test image; import them if the node runs
#   tests/cluster/images.sh base           Debian minbase rootfs (debootstrap) -> OCI base image
#   tests/cluster/images.sh pause          our static pause program in a scratch image
#   tests/cluster/images.sh coredns        CoreDNS (build-coredns.sh) in a scratch image; imported
#                                          when the node runs
#   tests/cluster/images.sh test           tests/cluster/testimage/Dockerfile FROM the local base
#   tests/cluster/images.sh build IMAGE DOCKERFILE CONTEXT [--build-arg K=V ...]
#                                          any Dockerfile; BASE_IMAGE defaults to the local base
#   tests/cluster/images.sh import IMAGE...    into the node's containerd (skips unchanged ones)
#   tests/cluster/images.sh list           images in buildah storage
#   tests/cluster/images.sh project        the Dockerfile's operator, sidecar and wrapper images
#                                          (localhost/agenttype/*:dev) FROM a local Node base;
#                                          imported when the node runs
#   tests/cluster/images.sh e2e            the e2e suite's images: the upstream (Ollama-protocol
#                                          server, HTTP tool server) and the two sample agents
#
# Buildah keeps its storage under $AGENTTYPE_CACHE/buildah (never in the repo); the overlay
# driver is used when the kernel allows it, vfs otherwise (AGENTTYPE_BUILDAH_DRIVER overrides).
# Nothing is pulled from a registry: builds run with --pull=never.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

SUITE=${AGENTTYPE_BASE_SUITE:-bookworm}
DEBIAN_MIRROR=${AGENTTYPE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_IMAGE=${AGENTTYPE_BASE_IMAGE:-localhost/agenttype/debian-base:$SUITE}
PAUSE_IMAGE=${AGENTTYPE_PAUSE_IMAGE:-localhost/agenttype/pause:1.0}
TEST_IMAGE=${AGENTTYPE_TEST_IMAGE:-localhost/agenttype/testimage:latest}
# Node for the images, from the npm registry's `node` package (the same pin as the Makefile's),
# with npm beside it, laid out like the official node image.
NODE_VERSION=${AGENTTYPE_NODE_VERSION:-24.21.0}
NPM_VERSION=${AGENTTYPE_NPM_VERSION:-11.19.1}
NODE_IMAGE=${AGENTTYPE_NODE_IMAGE:-localhost/agenttype/node:$NODE_VERSION}
PYTHON_IMAGE=${AGENTTYPE_PYTHON_IMAGE:-localhost/agenttype/python:3-$SUITE}
PROJECT_TAG=${AGENTTYPE_IMAGE_TAG:-dev}
PROJECT_IMAGES=(operator sidecar wrapper)
E2E_IMAGES=(e2e-upstream e2e-agent-node e2e-agent-python)
REPO=$(cd "$HERE/../.." && pwd)
BUILDAH_DIR=$AGENTTYPE_CACHE/buildah
CONTAINERD_SOCK=${AGENTTYPE_CONTAINERD_SOCK:-$AGENTTYPE_STATE/containerd/containerd.sock}
IMPORTED_DIR=$AGENTTYPE_STATE/containerd/imported

log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_tools() {
  local missing=()
  command -v buildah >/dev/null || missing+=(buildah)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v gcc >/dev/null || missing+=(gcc)
  [ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -n "$(ls /usr/lib/*/libc.a 2>/dev/null)" ] || missing+=(libc6-dev)
  [ ${#missing[@]} = 0 ] || at_apt_install "${missing[@]}"
}

# --- buildah with our own storage ----------------------------------------------------------
storage_driver() {
  if [ -n "${AGENTTYPE_BUILDAH_DRIVER:-}" ]; then echo "$AGENTTYPE_BUILDAH_DRIVER"; return; fi
  if [ -f "$BUILDAH_DIR/driver" ]; then cat "$BUILDAH_DIR/driver"; return; fi
  mkdir -p "$BUILDAH_DIR"
  local d=vfs t
  if grep -qw overlay /proc/filesystems; then
    t=$(mktemp -d "$BUILDAH_DIR/probe.XXXXXX")
    mkdir -p "$t/l" "$t/u" "$t/w" "$t/m"
    if mount -t overlay overlay -o "lowerdir=$t/l,upperdir=$t/u,workdir=$t/w" "$t/m" 2>/dev/null; then
      umount "$t/m"; d=overlay
    fi
    rm -rf "$t"
  fi
  echo "$d" >"$BUILDAH_DIR/driver"
  echo "$d"
}

bh() {
  buildah --root "$BUILDAH_DIR/storage" --runroot "$BUILDAH_DIR/run" \
    --storage-driver "$(storage_driver)" "$@"
}

# A policy that accepts everything: images are only ever moved between local stores.
policy() {
  local p=$BUILDAH_DIR/policy.json
  [ -f "$p" ] || { mkdir -p "$BUILDAH_DIR"; echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$p"; }
  echo "$p"
}

# Working containers made by `bh from` in this run. `bh commit --rm` removes each one; when a step
# fails before that, the EXIT trap does, so no build leaves a container (and its mount) behind.
CONTAINERS=()
remove_containers() {
  local code=$? c
  if (( code != 0 )); then
    for c in "${CONTAINERS[@]}"; do bh rm "$c" >/dev/null 2>&1 || true; done
  fi
  return $code
}
trap remove_containers EXIT

# A build killed outright runs no trap: Tilt cancels a custom_build with SIGKILL when it stops in
# the middle of one, which leaves that build's working containers (and their overlay mounts).
# Builders hold the lock, so a working container seen while holding it is such a leftover.
remove_leftover_containers() {
  local left
  left=$(bh containers --quiet 2>/dev/null) || return 0
  [ -n "$left" ] || return 0
  log "removing $(wc -w <<<"$left") working container(s) that a killed build left"
  # shellcheck disable=SC2086 # one id per word
  bh rm $left >/dev/null 2>&1 || log "could not remove every leftover working container"
}

image_exists() { bh inspect --type image "$1" >/dev/null 2>&1; }
image_label() { bh inspect --type image --format "{{index .ImageAnnotations \"$2\"}}" "$1" 2>/dev/null || true; }
image_id() { bh inspect --type image --format '{{.FromImageID}}' "$1"; }

# --- base image: debootstrap minbase -> OCI --------------------------------------------------
rootfs_tar() { echo "$AGENTTYPE_CACHE/rootfs/debian-$SUITE-minbase.tar"; }

build_rootfs() {
  local tar; tar=$(rootfs_tar)
  if [ -s "$tar" ] && [ -s "$tar.sha256" ]; then return; fi
  [ "$(id -u)" = 0 ] || die "debootstrap needs root"
  mkdir -p "$(dirname "$tar")"
  local dir; dir=$(mktemp -d "$AGENTTYPE_CACHE/rootfs/.debootstrap-$SUITE.XXXXXX")
  log "debootstrap --variant=minbase $SUITE from $DEBIAN_MIRROR (a few minutes)"
  local t0=$SECONDS
  if ! debootstrap --variant=minbase --arch="$(dpkg --print-architecture)" "$SUITE" "$dir" "$DEBIAN_MIRROR" \
      >"$AGENTTYPE_CACHE/rootfs/debootstrap-$SUITE.log" 2>&1; then
    # debootstrap can leave proc/sys mounted inside the target on failure.
    umount_under "$dir"; rm -rf "$dir"
    die "debootstrap failed, see $AGENTTYPE_CACHE/rootfs/debootstrap-$SUITE.log"
  fi
  umount_under "$dir"
  # Trim what an image does not need; keep dpkg's database so apt works in derived images.
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/var/log/* \
    "$dir"/tmp/* "$dir"/var/tmp/* "$dir"/debootstrap "$dir"/root/.bash_history
  printf 'deb %s %s main\n' "$DEBIAN_MIRROR" "$SUITE" >"$dir/etc/apt/sources.list"
  : >"$dir/etc/hostname"; : >"$dir/etc/resolv.conf"
  tar -C "$dir" --numeric-owner --xattrs --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* \
    -cf "$tar.tmp" .
  rm -rf "$dir"
  mv "$tar.tmp" "$tar"
  sha256sum "$tar" | cut -d' ' -f1 >"$tar.sha256"
  log "rootfs $tar ($(du -h "$tar" | cut -f1)) in $((SECONDS - t0))s"
}

umount_under() {
  local d=$1 m
  # deepest first
  awk -v d="$d" '$2 ~ "^"d {print $2}' /proc/mounts | sort -r | while IFS= read -r m; do umount -l "$m" || true; done
}

build_base() {
  build_rootfs
  local tar sum; tar=$(rootfs_tar); sum=$(cat "$tar.sha256")
  if image_exists "$BASE_IMAGE" && [ "$(image_label "$BASE_IMAGE" agenttype.rootfs.sha256)" = "$sum" ]; then
    log "base image $BASE_IMAGE is up to date"; return
  fi
  log "building $BASE_IMAGE from $tar"
  local ctr mnt
  ctr=$(bh from --signature-policy "$(policy)" scratch)
  CONTAINERS+=("$ctr")
  mnt=$(bh mount "$ctr")
  tar -C "$mnt" --numeric-owner --xattrs -xpf "$tar"
  bh umount "$ctr" >/dev/null
  bh config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd '["bash"]' --os linux --arch "$(dpkg --print-architecture)" \
    --annotation "agenttype.rootfs.sha256=$sum" \
    --label "org.opencontainers.image.title=agenttype debian $SUITE minbase" "$ctr"
  bh commit --quiet --rm --format oci "$ctr" "$BASE_IMAGE" >/dev/null
  log "built $BASE_IMAGE"
}

# --- pause image -----------------------------------------------------------------------------
build_pause() {
  local src=$HERE/pause/pause.c sum out=$AGENTTYPE_CACHE/pause/pause
  sum=$(sha256sum "$src" | cut -d' ' -f1)
  if image_exists "$PAUSE_IMAGE" && [ "$(image_label "$PAUSE_IMAGE" agenttype.src.sha256)" = "$sum" ]; then
    log "pause image $PAUSE_IMAGE is up to date"; return
  fi
  mkdir -p "$(dirname "$out")"
  gcc -static -O2 -s -Wall -Wextra -Werror -o "$out" "$src"
  local ctr
  ctr=$(bh from --signature-policy "$(policy)" scratch)
  CONTAINERS+=("$ctr")
  bh copy --chown 0:0 "$ctr" "$out" /pause >/dev/null
  bh config --entrypoint '["/pause"]' --cmd '[]' --user 65535:65535 --os linux \
    --arch "$(dpkg --print-architecture)" --annotation "agenttype.src.sha256=$sum" "$ctr"
  bh commit --quiet --rm --format oci "$ctr" "$PAUSE_IMAGE" >/dev/null
  log "built $PAUSE_IMAGE"
}

# --- CoreDNS image: the binary of build-coredns.sh in a scratch image ------------------------
COREDNS_IMAGE=$AGENTTYPE_COREDNS_IMAGE
build_coredns() {
  local bin sum
  bin=$("$HERE/build-coredns.sh" | tail -n 1)
  sum=$(sha256sum "$bin" | cut -d' ' -f1)
  if image_exists "$COREDNS_IMAGE" && [ "$(image_label "$COREDNS_IMAGE" agenttype.bin.sha256)" = "$sum" ]; then
    log "coredns image $COREDNS_IMAGE is up to date"; return
  fi
  local ctr
  ctr=$(bh from --signature-policy "$(policy)" scratch)
  CONTAINERS+=("$ctr")
  bh copy --chown 0:0 "$ctr" "$bin" /coredns >/dev/null
  bh config --entrypoint '["/coredns"]' --cmd '[]' --user 65532:65532 --os linux \
    --arch "$(dpkg --print-architecture)" --annotation "agenttype.bin.sha256=$sum" \
    --label "org.opencontainers.image.title=CoreDNS $COREDNS_VERSION built by tests/cluster/build-coredns.sh" "$ctr"
  bh commit --quiet --rm --format oci "$ctr" "$COREDNS_IMAGE" >/dev/null
  log "built $COREDNS_IMAGE"
}

# --- Dockerfile builds -----------------------------------------------------------------------
# build IMAGE DOCKERFILE CONTEXT [extra buildah bud args]
build_dockerfile() {
  local image=$1 dockerfile=$2 context=$3; shift 3
  local has_base=0 a
  for a in "$@"; do case $a in BASE_IMAGE=*|--build-arg=BASE_IMAGE=*) has_base=1 ;; esac; done
  local extra=()
  if [ $has_base = 0 ] && grep -q 'BASE_IMAGE' "$dockerfile"; then
    build_base
    extra+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
  fi
  # A Dockerfile step may mount the build secret `ca` (a CA bundle) for registries behind a
  # TLS-intercepting proxy; the host's bundle is passed when it has one.
  local ca=${AGENTTYPE_BUILD_CA:-${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}}
  if grep -q 'id=ca' "$dockerfile" && [ -s "$ca" ]; then extra+=(--secret "id=ca,src=$ca"); fi
  log "building $image from $dockerfile"
  # --isolation chroot: RUN steps need no nested runtime or network setup; --network host keeps
  # RUN steps able to reach package registries (npm ci etc.) without a CNI config for buildah.
  # --force-rm: without it a failed build keeps its stage containers, and even a successful one
  # of the operator target (final stage all cached) keeps one, mounted (buildah 1.28).
  bh bud --signature-policy "$(policy)" --pull=never --layers --force-rm --format oci \
    --isolation "${AGENTTYPE_BUILDAH_ISOLATION:-chroot}" --network host \
    -f "$dockerfile" -t "$image" "${extra[@]}" "$@" "$context" >&2
}

# --- local language bases: what docker.io/library/{node,python} give users ------------------
build_node() {
  build_base
  local dir=$AGENTTYPE_CACHE/node-image/v$NODE_VERSION-npm-$NPM_VERSION
  if [ ! -x "$dir/node_modules/node/bin/node" ] || [ ! -f "$dir/node_modules/npm/bin/npm-cli.js" ]; then
    command -v npm >/dev/null || die "npm is needed to fetch node@$NODE_VERSION from the npm registry"
    log "installing node@$NODE_VERSION and npm@$NPM_VERSION from the npm registry into $dir"
    npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error \
      "node@$NODE_VERSION" "npm@$NPM_VERSION" >&2
  fi
  local key; key="node $NODE_VERSION npm $NPM_VERSION base $(image_id "$BASE_IMAGE")"
  if image_exists "$NODE_IMAGE" && [ "$(image_label "$NODE_IMAGE" agenttype.node)" = "$key" ]; then
    log "node image $NODE_IMAGE is up to date"; return
  fi
  log "building $NODE_IMAGE"
  local ctr mnt
  ctr=$(bh from --signature-policy "$(policy)" --pull=never "$BASE_IMAGE")
  CONTAINERS+=("$ctr")
  mnt=$(bh mount "$ctr")
  install -D -m 0755 "$(readlink -f "$dir/node_modules/node/bin/node")" "$mnt/usr/local/bin/node"
  mkdir -p "$mnt/usr/local/lib/node_modules"
  cp -a "$dir/node_modules/npm" "$mnt/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
  bh umount "$ctr" >/dev/null
  bh config --cmd '["node"]' --annotation "agenttype.node=$key" \
    --label "org.opencontainers.image.title=agenttype node $NODE_VERSION on debian $SUITE minbase" "$ctr"
  bh commit --quiet --rm --format oci "$ctr" "$NODE_IMAGE" >/dev/null
  log "built $NODE_IMAGE"
}

build_python() {
  build_base
  local key; key="python3 base $(image_id "$BASE_IMAGE")"
  if image_exists "$PYTHON_IMAGE" && [ "$(image_label "$PYTHON_IMAGE" agenttype.python)" = "$key" ]; then
    log "python image $PYTHON_IMAGE is up to date"; return
  fi
  log "building $PYTHON_IMAGE (Debian's python3 with apt)"
  local ctr
  ctr=$(bh from --signature-policy "$(policy)" --pull=never "$BASE_IMAGE")
  CONTAINERS+=("$ctr")
  bh run --isolation "${AGENTTYPE_BUILDAH_ISOLATION:-chroot}" --network host "$ctr" -- sh -c \
    'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 >/dev/null && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin' >&2
  bh config --cmd '["python3"]' --annotation "agenttype.python=$key" "$ctr"
  bh commit --quiet --rm --format oci "$ctr" "$PYTHON_IMAGE" >/dev/null
  log "built $PYTHON_IMAGE"
}

# --- the project's images (Dockerfile targets) and the e2e suite's --------------------------
build_project() {
  build_node
  local target
  for target in "${PROJECT_IMAGES[@]}"; do
    build_dockerfile "localhost/agenttype/$target:$PROJECT_TAG" "$REPO/Dockerfile" "$REPO" --target "$target" \
      --build-arg "NODE_IMAGE=$NODE_IMAGE" --build-arg "WRAPPER_BASE_IMAGE=$BASE_IMAGE"
  done
}

build_e2e() {
  build_node; build_python
  local e2e=$REPO/tests/e2e
  build_dockerfile "localhost/agenttype/e2e-upstream:$PROJECT_TAG" "$e2e/upstream/Dockerfile" "$REPO" \
    --ignorefile "$e2e/upstream/Dockerfile.dockerignore" --build-arg "NODE_IMAGE=$NODE_IMAGE"
  build_dockerfile "localhost/agenttype/e2e-agent-node:$PROJECT_TAG" "$e2e/agents/node/Dockerfile" \
    "$e2e/agents/node" --build-arg "NODE_IMAGE=$NODE_IMAGE"
  build_dockerfile "localhost/agenttype/e2e-agent-python:$PROJECT_TAG" "$e2e/agents/python/Dockerfile" \
    "$e2e/agents/python" --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE"
}

import_set() {  # import_set NAME...: localhost/agenttype/NAME:TAG, when the node runs
  if ! node_up; then log "node not running: skipped the import"; return; fi
  local n; for n in "$@"; do import_image "localhost/agenttype/$n:$PROJECT_TAG"; done
}

build_test() {
  build_dockerfile "$TEST_IMAGE" "$HERE/testimage/Dockerfile" "$HERE/testimage"
}

# --- import into the node's containerd -------------------------------------------------------
ctr_cmd() { ctr -a "$CONTAINERD_SOCK" -n k8s.io "$@"; }

node_up() { [ -S "$CONTAINERD_SOCK" ] && ctr_cmd version >/dev/null 2>&1; }

import_image() {
  local image=$1 id key stamp archive
  node_up || die "containerd is not running at $CONTAINERD_SOCK (tests/cluster/node.sh up)"
  image_exists "$image" || die "no image $image in buildah storage"
  id=$(image_id "$image")
  key=$(echo "$image" | tr '/:' '__')
  stamp=$IMPORTED_DIR/$key
  if [ "$(cat "$stamp" 2>/dev/null)" = "$id" ] && [ -n "$(ctr_cmd images ls -q "name==$image")" ]; then
    log "$image already imported"; return
  fi
  mkdir -p "$AGENTTYPE_CACHE/archives" "$IMPORTED_DIR"
  archive=$AGENTTYPE_CACHE/archives/$key.tar
  rm -f "$archive"
  bh push --quiet --signature-policy "$(policy)" "$image" "docker-archive:$archive:$image" >/dev/null
  if ! ctr_cmd images import "$archive" >&2; then
    # Seen once on the KVM host's store: "failed to prepare extraction snapshot ... parent
    # snapshot ... does not exist", the next import of the same archive fine (containerd 1.6's
    # garbage collection can race an unpack that reuses a layer the image it replaced held).
    log "import of $image failed; importing it once more"
    sleep 2
    ctr_cmd images import "$archive" >&2
  fi
  rm -f "$archive"
  [ -n "$(ctr_cmd images ls -q "name==$image")" ] || die "import of $image did not register that name"
  echo "$id" >"$stamp"
  log "imported $image"
}

main() {
  local cmd=${1:-all}; [ $# -gt 0 ] && shift
  mkdir -p "$AGENTTYPE_CACHE"
  # One builder or importer at a time (`make test` builds ahead in the background, and imports
  # share archive paths); the read-only list and the buildah escape hatch need no lock.
  case $cmd in list|buildah) ;; *) at_build_lock "$AGENTTYPE_CACHE/buildah"; remove_leftover_containers ;; esac
  case $cmd in
    all)
      need_tools
      local t0=$SECONDS
      build_base; build_pause; build_test
      log "built all in $((SECONDS - t0))s"
      if node_up; then
        import_image "$PAUSE_IMAGE"; import_image "$TEST_IMAGE"
      else
        log "node not running: skipped the import"
      fi ;;
    base) need_tools; build_base ;;
    pause) need_tools; build_pause ;;
    coredns) need_tools; build_coredns; if node_up; then import_image "$COREDNS_IMAGE"; fi ;;
    test) need_tools; build_test ;;
    project) need_tools; build_project; import_set "${PROJECT_IMAGES[@]}" ;;
    e2e) need_tools; build_e2e; import_set "${E2E_IMAGES[@]}" ;;
    build)
      [ $# -ge 3 ] || die "usage: images.sh build IMAGE DOCKERFILE CONTEXT [buildah bud args]"
      need_tools; build_dockerfile "$@" ;;
    import)
      [ $# -ge 1 ] || set -- "$PAUSE_IMAGE" "$TEST_IMAGE"
      local i; for i in "$@"; do import_image "$i"; done ;;
    list) bh images ;;
    buildah) bh "$@" ;;   # escape hatch: buildah on our storage
    *) die "unknown command $cmd (all|base|pause|coredns|test|project|e2e|build|import|list|buildah)" ;;
  esac
}

main "$@"
