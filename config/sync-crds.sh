#!/usr/bin/env sh
# Copies the generated CRDs (crds/, written by `make generate`) to where the install paths read
# them: config/crd/bases/ (kustomize may load nothing outside its directory) and the Helm
# chart's files/crds/ (a chart may read nothing outside itself). `--check` changes nothing and
# fails when a copy differs, for CI.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
status=0
for dest in "$repo/config/crd/bases" "$repo/charts/agenttype-operator/files/crds"; do
  mkdir -p "$dest"
  for src in "$repo"/crds/*.yaml; do
    target=$dest/$(basename "$src")
    if [ "${1:-}" = --check ]; then
      cmp -s "$src" "$target" || { echo "error: ${target#"$repo"/} differs from crds/; run config/sync-crds.sh" >&2; status=1; }
    else
      cp "$src" "$target"
    fi
  done
  for target in "$dest"/*.yaml; do
    [ -e "$repo/crds/$(basename "$target")" ] && continue
    if [ "${1:-}" = --check ]; then
      echo "error: ${target#"$repo"/} has no source in crds/" >&2; status=1
    else
      rm -f "$target"
    fi
  done
done
exit $status
