#!/usr/bin/env bash
# `make up` / `make down`: a running agent in one command.
#
#   tests/e2e/demo.sh up      the local full cluster (or the cluster of KUBECONFIG/CONTEXT when
#                             given, e.g. kind), the images, the operator installed with Helm,
#                             the demo agents of tests/e2e/manifests/demo.yaml with their LLM
#                             upstream and tool server; waits until they are Ready and have
#                             talked to the LLM and the tool, then says what to run next
#   tests/e2e/demo.sh down    removes the demo and the operator, then stops the local cluster
#                             (a cluster given by KUBECONFIG/CONTEXT is left running)
#
# On a cluster of your own the images must be reachable by its nodes: with a kind context and
# Docker, `up` builds them with `docker build` and loads them with `kind load`.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=../cluster/lib.sh
. "$REPO/tests/cluster/lib.sh"

RELEASE=agenttype-operator
OPERATOR_NS=agenttype-system
DEMO_NS=agenttype-demo
MANIFESTS=$HERE/manifests/demo.yaml
OWN_CLUSTER=1
if [[ -n ${KUBECONFIG:-} || -n ${CONTEXT:-} ]]; then OWN_CLUSTER=0; fi

log() { printf '[demo %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

tool() {  # the harness's binaries when it built them, else the ones on PATH
  if [[ -x $AGENTTYPE_BIN/$1 ]]; then echo "$AGENTTYPE_BIN/$1"; else command -v "$1" || die "$1 not found"; fi
}
k() {
  local args=()
  if [[ $OWN_CLUSTER == 1 ]]; then args+=(--kubeconfig "$AGENTTYPE_KUBECONFIG"); fi
  if [[ -n ${CONTEXT:-} ]]; then args+=(--context "$CONTEXT"); fi
  "$(tool kubectl)" "${args[@]}" "$@"
}
h() {
  local args=()
  if [[ $OWN_CLUSTER == 1 ]]; then args+=(--kubeconfig "$AGENTTYPE_KUBECONFIG"); fi
  if [[ -n ${CONTEXT:-} ]]; then args+=(--kube-context "$CONTEXT"); fi
  "$(tool helm)" "${args[@]}" "$@"
}

# The tag the chart gets for each project image: dev-<image id>, so that `make up` after a code
# change upgrades the operator to the new images and the operator rolls the agents' pods (the
# same :dev tag would leave every running pod on the old image).
declare -A TAG=([operator]=dev [sidecar]=dev [wrapper]=dev)

images() {
  local t
  if [[ $OWN_CLUSTER == 1 ]]; then
    local out=$AGENTTYPE_CACHE/demo-images.log id
    log "building and importing the images (buildah; log in $out)"
    { "$REPO/tests/cluster/images.sh" project && "$REPO/tests/cluster/images.sh" e2e; } >"$out" 2>&1 ||
      { tail -n 30 "$out" >&2; die "building the images failed (log: $out)"; }
    for t in operator sidecar wrapper; do
      id=$("$REPO/tests/cluster/images.sh" buildah images --no-trunc --format '{{.ID}}' "localhost/agenttype/$t:dev" | head -n 1)
      id=${id#sha256:}
      TAG[$t]=dev-${id:0:12}
      { "$REPO/tests/cluster/images.sh" buildah tag "localhost/agenttype/$t:dev" "localhost/agenttype/$t:${TAG[$t]}" &&
        "$REPO/tests/cluster/images.sh" import "localhost/agenttype/$t:${TAG[$t]}"; } >>"$out" 2>&1 ||
        { tail -n 30 "$out" >&2; die "importing localhost/agenttype/$t:${TAG[$t]} failed (log: $out)"; }
    done
    return
  fi
  local ctx; ctx=${CONTEXT:-$(k config current-context)}
  if [[ $ctx == kind-* ]] && command -v docker >/dev/null && command -v kind >/dev/null; then
    for t in operator sidecar wrapper; do
      docker build -q --target "$t" -t "localhost/agenttype/$t:dev" "$REPO" >/dev/null
      TAG[$t]=dev-$(docker image inspect -f '{{.Id}}' "localhost/agenttype/$t:dev" | sed 's/^sha256://' | cut -c1-12)
      docker tag "localhost/agenttype/$t:dev" "localhost/agenttype/$t:${TAG[$t]}"
    done
    docker build -q -f "$HERE/upstream/Dockerfile" -t localhost/agenttype/e2e-upstream:dev "$REPO" >/dev/null
    docker build -q -t localhost/agenttype/e2e-agent-node:dev "$HERE/agents/node" >/dev/null
    docker build -q -t localhost/agenttype/e2e-agent-python:dev "$HERE/agents/python" >/dev/null
    for t in operator sidecar wrapper; do
      kind load docker-image --name "${ctx#kind-}" "localhost/agenttype/$t:${TAG[$t]}"
    done
    for t in e2e-upstream e2e-agent-node e2e-agent-python; do
      kind load docker-image --name "${ctx#kind-}" "localhost/agenttype/$t:dev"
    done
  else
    log "context $ctx: using localhost/agenttype/*:dev as the cluster's nodes already have them"
  fi
}

install_operator() {
  log "installing the operator with Helm (release $RELEASE in $OPERATOR_NS, watching $DEMO_NS)"
  # Namespaced mode: the demo's operator has a Role in the demo's namespace and nothing
  # cluster-wide, so it leaves every other namespace (and the e2e suite's operator) alone.
  k create namespace "$DEMO_NS" --dry-run=client -o yaml | k apply -f - >/dev/null
  h upgrade --install "$RELEASE" "$REPO/charts/agenttype-operator" --namespace "$OPERATOR_NS" \
    --create-namespace --wait --timeout 3m --set "watchNamespaces={$DEMO_NS}" \
    --set image.repository=localhost/agenttype/operator --set "image.tag=${TAG[operator]}" \
    --set sidecar.image.repository=localhost/agenttype/sidecar --set "sidecar.image.tag=${TAG[sidecar]}" \
    --set wrapper.image.repository=localhost/agenttype/wrapper --set "wrapper.image.tag=${TAG[wrapper]}" >/dev/null
  k wait --for=condition=Established --timeout=60s crd/agenttypes.agenttype.dev crd/agenttools.agenttype.dev >/dev/null
}

apply_demo() {
  log "applying $MANIFESTS"
  k apply --server-side -f "$MANIFESTS" >/dev/null
}

wait_demo() {
  log "waiting for the demo agents to be Ready"
  k -n "$DEMO_NS" wait --for=condition=Ready --timeout=240s agenttype/node-agent agenttype/python-agent >/dev/null
  local a i
  for a in node-agent python-agent; do
    for ((i = 0; i < 120; i++)); do
      if k -n "$DEMO_NS" logs "deploy/$a" -c agent 2>/dev/null | grep -q '^agent done'; then break; fi
      if k -n "$DEMO_NS" logs "deploy/$a" -c agent 2>/dev/null | grep -q '^agent failed'; then break; fi
      sleep 1
    done
    printf '\n--- kubectl -n %s logs deploy/%s -c agent\n' "$DEMO_NS" "$a"
    k -n "$DEMO_NS" logs "deploy/$a" -c agent
    k -n "$DEMO_NS" logs "deploy/$a" -c agent | grep -q '^agent done' || die "$a did not finish its run"
  done
}

next_steps() {
  local kc=""
  if [[ $OWN_CLUSTER == 1 ]]; then kc="export KUBECONFIG=$AGENTTYPE_KUBECONFIG"; fi
  cat <<NEXT

The demo agents are Ready and have talked to the LLM and a tool through their sidecars.
${kc:+$kc
}  kubectl get at -n $DEMO_NS
  kubectl logs -n $DEMO_NS deploy/node-agent -c agent
  kubectl logs -n $DEMO_NS deploy/python-agent -c agenttype-sidecar
  kubectl get --raw /api/v1/namespaces/$DEMO_NS/services/node-agent-metrics:9090/proxy/metrics
  kubectl scale at/python-agent -n $DEMO_NS --replicas=2
  make down
NEXT
}

case ${1:-} in
  up)
    if [[ $OWN_CLUSTER == 1 ]]; then
      log "starting the local cluster (tests/cluster/cluster.sh up full)"
      AGENTTYPE_APISERVER_IP=${AGENTTYPE_APISERVER_IP:-10.88.0.1} "$REPO/tests/cluster/cluster.sh" up full >/dev/null 2>"$AGENTTYPE_CACHE/demo-cluster.log" ||
        { tail -n 30 "$AGENTTYPE_CACHE/demo-cluster.log" >&2; die "the cluster did not come up"; }
    fi
    images; install_operator; apply_demo; wait_demo; next_steps ;;
  down)
    if [[ $OWN_CLUSTER == 0 ]] || "$REPO/tests/cluster/cluster.sh" status >/dev/null 2>&1; then
      log "removing the demo and the operator"
      k delete --ignore-not-found --wait=true -f "$MANIFESTS" >/dev/null || true
      h uninstall "$RELEASE" --namespace "$OPERATOR_NS" --wait >/dev/null 2>&1 || true
      k delete namespace --ignore-not-found "$OPERATOR_NS" "$DEMO_NS" >/dev/null || true
    fi
    if [[ $OWN_CLUSTER == 1 ]]; then "$REPO/tests/cluster/cluster.sh" down; fi ;;
  *) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
