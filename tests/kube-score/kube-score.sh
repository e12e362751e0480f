#!/usr/bin/env bash
# `make lint`: kube-score on what users install and run: the Helm chart (cluster-wide, and
# namespaced with the provider-endpoint policies) and every object the operator builds for the
# sample AgentTypes (render-agents.ts). The checks listed in ignored-tests, each with its
# reason, are not run; a critical finding of any other fails. Warnings are printed, not failed.
# kube-score is built from the Go module proxy (tests/cluster/build-kube-score.sh, cached), and
# helm is the harness's (tests/cluster/build-components.sh, built on first use).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=../cluster/lib.sh
source "$REPO/tests/cluster/lib.sh"

KUBE_SCORE=$("$REPO/tests/cluster/build-kube-score.sh" | tail -n 1)
if [[ ! -x $AGENTTYPE_BIN/helm ]]; then
  at_log "helm missing in $AGENTTYPE_BIN: building the harness's binaries (15-30 min cold)"
  "$REPO/tests/cluster/build-components.sh" >/dev/null
fi

args=(score --kubernetes-version v1.34 --output-format ci)
while read -r test _; do
  [[ -z $test || $test == \#* ]] || args+=(--ignore-test "$test")
done < "$HERE/ignored-tests"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
helm_template() { "$AGENTTYPE_BIN/helm" template agenttype-operator "$REPO/charts/agenttype-operator" -n agenttype-system "$@"; }
helm_template > "$scratch/chart.yaml"
helm_template --set 'watchNamespaces={team-a,team-b}' --set 'providerEndpoints[0].name=teams' \
  --set 'providerEndpoints[0].namespaceSelector.matchLabels.tenant=yes' \
  --set 'providerEndpoints[0].allowedPatterns[0]=^https://llm[.]example[.]com$' > "$scratch/chart-namespaced.yaml"
node "$HERE/render-agents.ts" > "$scratch/agents.yaml"

failed=0
for what in chart chart-namespaced agents; do
  status=0
  out=$("$KUBE_SCORE" "${args[@]}" "$scratch/$what.yaml") || status=$?
  findings=$(grep -E '^\[(CRITICAL|WARNING)\]' <<<"$out" || true)
  while IFS= read -r line; do
    [[ -z $line ]] || echo "kube-score $what: $line" >&2
  done <<<"$findings"
  if (( status != 0 )); then
    echo "kube-score $what: critical findings (exit $status); fix them or list them in tests/kube-score/ignored-tests with a reason" >&2
    failed=1
  fi
done
(( failed == 0 )) && echo "kube-score: no critical finding on the chart and the agents' objects ($(grep -c '^[a-z]' "$HERE/ignored-tests") checks listed as not run)" >&2
exit "$failed"
