#!/usr/bin/env bash
# The project's images built with Docker (tests/kind/docker.sh's dockerd) instead of buildah: the
# Dockerfile's public bases replaced, through its build arguments, by images made here from
# Debian packages, since no container registry is reachable.
#
#   tests/kind/images.sh bases     localhost/agenttype/debian-base:bookworm (`docker import` of the
#                                  harness's debootstrap root filesystem) and the Node and Python
#                                  images tests/cluster/images.sh makes on it (moved over with
#                                  `docker load`); each redone only when its source changed
#   tests/kind/images.sh project   bases, then `docker build` of every Dockerfile target (operator,
#                                  operator-dev, sidecar, wrapper) as localhost/agenttype/TARGET:kind
#   tests/kind/images.sh args      the --build-arg options that name the local bases (for Tilt)
#
# Builds run with BuildKit (the Dockerfile mounts a secret) on the host network: the engine has no
# NAT (docker.sh), and the deps and cri-proto stages reach the npm registry and the Go module proxy.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=../cluster/lib.sh
. "$HERE/../cluster/lib.sh"
eval "$("$HERE/docker.sh" env | sed 's/^/export /')"

SUITE=${AGENTTYPE_BASE_SUITE:-bookworm}
BASE_IMAGE=localhost/agenttype/debian-base:$SUITE
NODE_IMAGE=localhost/agenttype/node:${AGENTTYPE_NODE_VERSION:-24.21.0}
PYTHON_IMAGE=localhost/agenttype/python:3-$SUITE
TAG=${AGENTTYPE_KIND_IMAGE_TAG:-kind}
TARGETS=(operator operator-dev sidecar wrapper)
LOADED=$AGENTTYPE_CACHE/docker-loaded     # what each local image was made from
export DOCKER_BUILDKIT=1

log() { at_log "kind images: $*"; }
die() { at_die "kind images: $*"; }
docker() { "$AGENTTYPE_DOCKER" "$@"; }

# up_to_date IMAGE SOURCE_ID: the engine holds IMAGE, made from SOURCE_ID.
up_to_date() {
  local stamp=$LOADED/${1//[\/:]/_}
  [[ -s $stamp && $(<"$stamp") == "$2" ]] && docker image inspect "$1" >/dev/null 2>&1
}
stamp() { mkdir -p "$LOADED"; echo "$2" > "$LOADED/${1//[\/:]/_}"; }

# The base: the same debootstrap minbase as the buildah images, imported as one layer.
import_base() {
  "$REPO/tests/cluster/images.sh" base >&2
  local tar=$AGENTTYPE_CACHE/rootfs/debian-$SUITE-minbase.tar sum
  sum=$(<"$tar.sha256")
  if up_to_date "$BASE_IMAGE" "$sum"; then log "$BASE_IMAGE is up to date"; return; fi
  log "docker import $tar as $BASE_IMAGE"
  docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]' "$tar" "$BASE_IMAGE" >/dev/null
  stamp "$BASE_IMAGE" "$sum"
}

# load_from_buildah IMAGE: an image of tests/cluster/images.sh's buildah storage into the engine.
load_from_buildah() {
  local image=$1 id archive
  id=$("$REPO/tests/cluster/images.sh" buildah inspect --type image --format '{{.FromImageID}}' "$image")
  if up_to_date "$image" "$id"; then log "$image is up to date"; return; fi
  archive=$(mktemp "$AGENTTYPE_CACHE/archives/docker-load.XXXXXX")
  log "moving $image from buildah's storage to the engine"
  # Without our client's DOCKER_CONFIG: buildah would take it for a registry auth file.
  env -u DOCKER_CONFIG "$REPO/tests/cluster/images.sh" buildah push --quiet --signature-policy "$AGENTTYPE_CACHE/buildah/policy.json" \
    "$image" "docker-archive:$archive:$image" >/dev/null
  docker load -q -i "$archive" >&2
  rm -f "$archive"
  stamp "$image" "$id"
}

bases() {
  mkdir -p "$AGENTTYPE_CACHE/archives"
  import_base
  # tests/cluster/images.sh e2e builds the Node and Python bases first (and the e2e images: the
  # Tilt tier needs none of them there, but they are cached and quick when current).
  # No import into the project's own node: that cluster is shared and not this tier's.
  AGENTTYPE_CONTAINERD_SOCK=/nonexistent "$REPO/tests/cluster/images.sh" e2e >&2
  load_from_buildah "$NODE_IMAGE"
  load_from_buildah "$PYTHON_IMAGE"
}

build_args() {
  printf -- '--build-arg NODE_IMAGE=%s --build-arg PYTHON_IMAGE=%s --build-arg WRAPPER_BASE_IMAGE=%s --build-arg GOPROXY=%s' \
    "$NODE_IMAGE" "$PYTHON_IMAGE" "$BASE_IMAGE" "$(go env GOPROXY 2>/dev/null || echo https://proxy.golang.org)"
}

project() {
  bases
  local target t0 args=() ca=${AGENTTYPE_BUILD_CA:-${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}}
  read -r -a args <<< "$(build_args)"
  # The build secret `ca`: a CA bundle for networks that intercept TLS (never in a layer).
  [[ -s $ca ]] && args+=(--secret "id=ca,src=$ca")
  for target in "${TARGETS[@]}"; do
    t0=$SECONDS
    log "docker build --target $target -t localhost/agenttype/$target:$TAG"
    docker build --progress plain --network host --target "$target" -t "localhost/agenttype/$target:$TAG" \
      "${args[@]}" "$REPO" >&2 || die "docker build --target $target failed"
    log "built localhost/agenttype/$target:$TAG in $((SECONDS - t0))s"
  done
}

case ${1:-} in
  bases) bases ;;
  project) project ;;
  args) build_args; echo ;;
  *) die "usage: $0 bases|project|args" ;;
esac
