#!/usr/bin/env bash
# `make up` / `make down`: a running agent in one command.
#
#   tests/e2e/demo.sh up [--kubeconfig PATH] [--context NAME]
#       the local full cluster, the images, the operator installed with Helm, the demo agents of
#       tests/e2e/manifests/demo.yaml with their LLM upstream and tool server; waits until they
#       are Ready and have talked to the LLM and the tool, then says what to run next
#   tests/e2e/demo.sh down [--kubeconfig PATH] [--context NAME]
#       stops the local cluster, with the demo and the operator in it
#
# Without options both act on the project's own cluster (tests/cluster, $AGENTTYPE_STATE),
# whatever KUBECONFIG says in the environment: `make up` advises `export KUBECONFIG=…`, and
# the next `make down` must still stop that cluster. --kubeconfig/--context (`make up
# KUBECONFIG=… CONTEXT=…`) choose another cluster, e.g. kind, which `down` leaves running; on
# such a cluster the images must be reachable by its nodes: with a kind context and Docker, `up`
# builds them with `docker build` and loads them with `kind load`. AGENTTYPE_DOCKER_BUILD_ARGS adds
# options to those builds: on a machine without a registry, the local bases and the host network,
# `AGENTTYPE_DOCKER_BUILD_ARGS="$(tests/kind/images.sh args) --network host"` (tests/kind).
#
# The operator watches the demo's namespace and `default` (where `kubectl apply -k
# config/samples` puts the samples), not every namespace: the test tiers run operators of their
# own on the same cluster, in namespaces of their own, and two operators must never reconcile
# the same agents.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=../cluster/lib.sh
. "$REPO/tests/cluster/lib.sh"

RELEASE=agenttype-operator
OPERATOR_NS=agenttype-system
DEMO_NS=agenttype-demo
WATCHED=("$DEMO_NS" default)
MANIFESTS=$HERE/manifests/demo.yaml

log() { printf '[demo %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

CMD=${1:-}
[[ $CMD == up || $CMD == down ]] || usage
shift
KUBECONFIG_ARG='' CONTEXT_ARG=''
while (($#)); do
  case $1 in
    --kubeconfig) (($# >= 2)) || usage; KUBECONFIG_ARG=$2; shift 2 ;;
    --context) (($# >= 2)) || usage; CONTEXT_ARG=$2; shift 2 ;;
    *) usage ;;
  esac
done
# The project's kubeconfig named explicitly is still the project's own cluster.
if [[ -n $KUBECONFIG_ARG && -z $CONTEXT_ARG ]] \
  && [[ $(realpath -m "$KUBECONFIG_ARG") == $(realpath -m "$AGENTTYPE_KUBECONFIG") ]]; then
  KUBECONFIG_ARG=''
fi
OWN_CLUSTER=1
if [[ -n $KUBECONFIG_ARG || -n $CONTEXT_ARG ]]; then OWN_CLUSTER=0; fi

# Say which cluster, and that an exported KUBECONFIG is not it.
if [[ $OWN_CLUSTER == 1 ]]; then
  log "cluster: the project's own (tests/cluster, state $AGENTTYPE_STATE, kubeconfig $AGENTTYPE_KUBECONFIG)"
  if [[ -n ${KUBECONFIG:-} && $(realpath -m "$KUBECONFIG") != $(realpath -m "$AGENTTYPE_KUBECONFIG") ]]; then
    log "KUBECONFIG=$KUBECONFIG in the environment is not used; for that cluster: make $CMD KUBECONFIG=$KUBECONFIG"
  fi
  unset KUBECONFIG
else
  [[ -z $KUBECONFIG_ARG ]] || export KUBECONFIG=$KUBECONFIG_ARG
  log "cluster: ${CONTEXT_ARG:+context $CONTEXT_ARG of }${KUBECONFIG_ARG:-the default kubeconfig}${KUBECONFIG_ARG:+ (--kubeconfig)}; the local cluster is left alone"
fi

tool() {  # the harness's binaries when it built them, else the ones on PATH
  if [[ -x $AGENTTYPE_BIN/$1 ]]; then echo "$AGENTTYPE_BIN/$1"; else command -v "$1" || die "$1 not found"; fi
}
k() {
  local args=()
  if [[ $OWN_CLUSTER == 1 ]]; then args+=(--kubeconfig "$AGENTTYPE_KUBECONFIG"); fi
  if [[ -n $CONTEXT_ARG ]]; then args+=(--context "$CONTEXT_ARG"); fi
  "$(tool kubectl)" "${args[@]}" "$@"
}
h() {
  local args=()
  if [[ $OWN_CLUSTER == 1 ]]; then args+=(--kubeconfig "$AGENTTYPE_KUBECONFIG"); fi
  if [[ -n $CONTEXT_ARG ]]; then args+=(--kube-context "$CONTEXT_ARG"); fi
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
      id=$("$REPO/tests/cluster/images.sh" buildah inspect --type image --format '{{.FromImageID}}' "localhost/agenttype/$t:dev")
      id=${id#sha256:}
      TAG[$t]=dev-${id:0:12}
      { "$REPO/tests/cluster/images.sh" buildah tag "localhost/agenttype/$t:dev" "localhost/agenttype/$t:${TAG[$t]}" &&
        "$REPO/tests/cluster/images.sh" import "localhost/agenttype/$t:${TAG[$t]}"; } >>"$out" 2>&1 ||
        { tail -n 30 "$out" >&2; die "importing localhost/agenttype/$t:${TAG[$t]} failed (log: $out)"; }
    done
    return
  fi
  local ctx extra=(); ctx=${CONTEXT_ARG:-$(k config current-context)}
  if [[ $ctx == kind-* ]] && command -v docker >/dev/null && command -v kind >/dev/null; then
    # BuildKit: the Dockerfiles mount the build secret `ca` (a CA bundle for networks that intercept
    # TLS, given when there is one); Docker before 23 builds with it only when asked.
    local build=() ca=${AGENTTYPE_BUILD_CA:-${NODE_EXTRA_CA_CERTS:-}}
    export DOCKER_BUILDKIT=1
    [[ -z $ca || ! -s $ca ]] || build+=(--secret "id=ca,src=$ca")
    [[ -z ${AGENTTYPE_DOCKER_BUILD_ARGS:-} ]] || read -r -a extra <<< "$AGENTTYPE_DOCKER_BUILD_ARGS"
    build+=("${extra[@]}")
    log "docker build of the images${AGENTTYPE_DOCKER_BUILD_ARGS:+ ($AGENTTYPE_DOCKER_BUILD_ARGS)}, kind load into $ctx"
    for t in operator sidecar wrapper; do
      docker build -q "${build[@]}" --target "$t" -t "localhost/agenttype/$t:dev" "$REPO" >/dev/null
      TAG[$t]=dev-$(docker image inspect -f '{{.Id}}' "localhost/agenttype/$t:dev" | sed 's/^sha256://' | cut -c1-12)
      docker tag "localhost/agenttype/$t:dev" "localhost/agenttype/$t:${TAG[$t]}"
    done
    docker build -q "${build[@]}" -f "$HERE/upstream/Dockerfile" -t localhost/agenttype/e2e-upstream:dev "$REPO" >/dev/null
    docker build -q "${build[@]}" -t localhost/agenttype/e2e-agent-node:dev "$HERE/agents/node" >/dev/null
    docker build -q "${build[@]}" -t localhost/agenttype/e2e-agent-python:dev "$HERE/agents/python" >/dev/null
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

watched_words() { local last=${WATCHED[-1]} IFS=' '; echo "${WATCHED[*]:0:${#WATCHED[@]}-1} and $last"; }

install_operator() {
  local watched ns
  watched=$(IFS=,; echo "${WATCHED[*]}")
  log "installing the operator with Helm (release $RELEASE in $OPERATOR_NS), watching the namespaces $(watched_words)"
  for ns in "${WATCHED[@]}"; do
    k get namespace "$ns" >/dev/null 2>&1 || k create namespace "$ns" >/dev/null
  done
  h upgrade --install "$RELEASE" "$REPO/charts/agenttype-operator" --namespace "$OPERATOR_NS" \
    --create-namespace --wait --timeout 3m --set "watchNamespaces={$watched}" \
    --set image.repository=localhost/agenttype/operator --set "image.tag=${TAG[operator]}" \
    --set sidecar.image.repository=localhost/agenttype/sidecar --set "sidecar.image.tag=${TAG[sidecar]}" \
    --set wrapper.image.repository=localhost/agenttype/wrapper --set "wrapper.image.tag=${TAG[wrapper]}" >/dev/null
  k wait --for=condition=Established --timeout=60s crd/agenttypes.agenttype.dev crd/agenttools.agenttype.dev >/dev/null
}

# demo_objects agents|others: the AgentTypes of $MANIFESTS, or every other object in it.
demo_objects() {
  awk -v want="$1" '
    function flush() { if (doc != "" && ((doc ~ /\nkind: AgentType\n/) == (want == "agents"))) printf "%s---\n", doc; doc = "" }
    /^---$/ { flush(); next }
    { doc = doc $0 "\n" }
    END { flush() }' "$MANIFESTS"
}

# The LLM upstream and the tool server first, Ready, then the agents (as the Tiltfile's
# resource_deps and the e2e tier do): an agent runs its calls once, as soon as its sidecar is up,
# and a tool Service without a Ready pod refuses the connection.
apply_demo() {
  local d
  log "applying $MANIFESTS: the LLM upstream and the tool server, then the agents"
  demo_objects others | k apply --server-side -f - >/dev/null
  for d in llm calculator; do
    k -n "$DEMO_NS" rollout status --timeout=180s "deployment/$d" >/dev/null
  done
  demo_objects agents | k apply --server-side -f - >/dev/null
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
The operator watches the namespaces $(watched_words): AgentTypes elsewhere get no status from it.
${kc:+$kc
}  kubectl get at -n $DEMO_NS
  kubectl logs -n $DEMO_NS deploy/node-agent -c agent
  kubectl logs -n $DEMO_NS deploy/python-agent -c agenttype-sidecar
  kubectl get --raw /api/v1/namespaces/$DEMO_NS/services/node-agent-metrics:9090/proxy/metrics
  kubectl scale at/python-agent -n $DEMO_NS --replicas=2
  kubectl apply -k config/samples && kubectl get at     # the samples, in default
  make down
NEXT
}

# On another cluster, `down` removes what `up` installed; each step is bounded, so an object that
# cannot go (e.g. an AgentType held by a finalizer) is named and left, not waited on forever.
remove_demo() {
  log "removing the demo and the operator"
  k delete --ignore-not-found --wait=true --timeout=120s -f "$MANIFESTS" >/dev/null ||
    log "warning: some demo objects are still being deleted: kubectl get all,agenttypes -n $DEMO_NS"
  h uninstall "$RELEASE" --namespace "$OPERATOR_NS" --wait --timeout 2m >/dev/null 2>&1 || true
  k delete namespace --ignore-not-found --wait=true --timeout=120s "$OPERATOR_NS" "$DEMO_NS" >/dev/null ||
    log "warning: namespace $OPERATOR_NS or $DEMO_NS is still terminating"
}

case $CMD in
  up)
    if [[ $OWN_CLUSTER == 1 ]]; then
      log "starting the local cluster (tests/cluster/cluster.sh up full; log in $AGENTTYPE_CACHE/demo-cluster.log)"
      mkdir -p "$AGENTTYPE_CACHE"
      AGENTTYPE_APISERVER_IP=${AGENTTYPE_APISERVER_IP:-10.88.0.1} "$REPO/tests/cluster/cluster.sh" up full >/dev/null 2>"$AGENTTYPE_CACHE/demo-cluster.log" ||
        { tail -n 40 "$AGENTTYPE_CACHE/demo-cluster.log" >&2; die "the cluster did not come up (log: $AGENTTYPE_CACHE/demo-cluster.log)"; }
    fi
    images; install_operator; apply_demo; wait_demo; next_steps ;;
  down)
    if [[ $OWN_CLUSTER == 0 ]]; then
      remove_demo
    else
      # Stopping the cluster removes everything in it (its etcd data is wiped).
      log "stopping the local cluster with the demo and the operator in it (tests/cluster/cluster.sh down)"
      "$REPO/tests/cluster/cluster.sh" down
    fi ;;
esac
