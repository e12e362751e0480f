#!/usr/bin/env bash
# `make lint`: shellcheck on every shell script of the repository, the *.sh files and the ones
# without extension whose first line names a shell (such as .ci/run). When shellcheck is
# missing, installs the Debian package first, so a fresh machine needs nothing by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v shellcheck >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    # shellcheck source=cluster/lib.sh
    source tests/cluster/lib.sh
    at_apt_install shellcheck
  elif command -v sudo >/dev/null; then
    echo "shellcheck: not installed; installing Debian's package" >&2
    install() { sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq shellcheck >/dev/null; }
    # A fresh machine may have no package lists yet.
    install || { sudo apt-get -o DPkg::Lock::Timeout=900 update -qq && install; }
  else
    echo "error: shellcheck is missing and installing it needs root: apt-get install shellcheck" >&2
    exit 1
  fi
fi

scripts=()
while IFS= read -r -d '' file; do
  [ -f "$file" ] || continue
  case $file in
    *.sh) scripts+=("$file") ;;
    *) head -n 1 "$file" | grep -qE '^#!.*[/ ](ba|da)?sh( |$)' && scripts+=("$file") ;;
  esac
done < <(git ls-files -z --cached --others --exclude-standard)

# --source-path=SCRIPTDIR: a script's `source lib.sh` is found beside it, and checked with it.
shellcheck --external-sources --source-path=SCRIPTDIR "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts clean"
