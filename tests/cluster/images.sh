#!/usr/bin/env bash
# Builds the project's container images without Docker and imports them into the node's
# containerd (k8s.io namespace).
#
#   tests/cluster/images.sh [all]          base + pause + test image; import them if the node runs
#   tests/cluster/images.sh base           Debian minbase rootfs (debootstrap) -> OCI base image
#   tests/cluster/images.sh pause          our static pause program in a scratch image
#   tests/cluster/images.sh test           tests/cluster/testimage/Dockerfile FROM the local base
#   tests/cluster/images.sh build IMAGE DOCKERFILE CONTEXT [--build-arg K=V ...]
#                                          any Dockerfile; BASE_IMAGE defaults to the local base
#   tests/cluster/images.sh import IMAGE...    into the node's containerd (skips unchanged ones)
#   tests/cluster/images.sh list           images in buildah storage
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
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "installing ${missing[*]} with apt"
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
        { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; } ||
        die "could not install ${missing[*]}"
    else
      die "missing ${missing[*]} (apt-get install ${missing[*]})"
    fi
  fi
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
  for m in $(awk -v d="$d" '$2 ~ "^"d {print $2}' /proc/mounts | sort -r); do umount -l "$m" || true; done
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
  bh copy --chown 0:0 "$ctr" "$out" /pause >/dev/null
  bh config --entrypoint '["/pause"]' --cmd '[]' --user 65535:65535 --os linux \
    --arch "$(dpkg --print-architecture)" --annotation "agenttype.src.sha256=$sum" "$ctr"
  bh commit --quiet --rm --format oci "$ctr" "$PAUSE_IMAGE" >/dev/null
  log "built $PAUSE_IMAGE"
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
  log "building $image from $dockerfile"
  # --isolation chroot: RUN steps need no nested runtime or network setup; --network host keeps
  # RUN steps able to reach package registries (npm ci etc.) without a CNI config for buildah.
  bh bud --signature-policy "$(policy)" --pull=never --layers --format oci \
    --isolation "${AGENTTYPE_BUILDAH_ISOLATION:-chroot}" --network host \
    -f "$dockerfile" -t "$image" "${extra[@]}" "$@" "$context" >&2
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
  ctr_cmd images import "$archive" >&2
  rm -f "$archive"
  [ -n "$(ctr_cmd images ls -q "name==$image")" ] || die "import of $image did not register that name"
  echo "$id" >"$stamp"
  log "imported $image"
}

main() {
  local cmd=${1:-all}; [ $# -gt 0 ] && shift
  mkdir -p "$AGENTTYPE_CACHE"
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
    test) need_tools; build_test ;;
    build)
      [ $# -ge 3 ] || die "usage: images.sh build IMAGE DOCKERFILE CONTEXT [buildah bud args]"
      need_tools; build_dockerfile "$@" ;;
    import)
      [ $# -ge 1 ] || set -- "$PAUSE_IMAGE" "$TEST_IMAGE"
      local i; for i in "$@"; do import_image "$i"; done ;;
    list) bh images ;;
    buildah) bh "$@" ;;   # escape hatch: buildah on our storage
    *) die "unknown command $cmd (all|base|pause|test|build|import|list|buildah)" ;;
  esac
}

main "$@"
