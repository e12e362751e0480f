#!/usr/bin/env bash
# Makes a Python venv from a pinned requirements file (by default requirements.txt beside this
# file: the sidecar's Python client tests; bench-peers passes LiteLLM's) under $AGENTTYPE_CACHE/python-<digest>, the digest of the requirements and the Python
# version, so a venv is reused while neither changes; PyPI through pip is the only source. A
# stamp written last marks a venv complete, so an interrupted one is never reused. Installs
# python3-venv with apt when Python lacks the venv module.
#
#   sidecar/testing/python/venv.sh [REQUIREMENTS]    last stdout line: the venv's python
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../../tests/cluster/lib.sh
source "$HERE/../../../tests/cluster/lib.sh"

PYTHON=${AGENTTYPE_PYTHON:-python3}
command -v "$PYTHON" >/dev/null || at_die "$PYTHON not found: install Python 3.10 or newer (Debian: apt-get install python3 python3-venv)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || at_die "$PYTHON is $("$PYTHON" --version 2>&1); the clients need Python 3.10 or newer"
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
  # $PYTHON has no venv module.
  at_apt_install python3-venv
fi

REQUIREMENTS=${1:-$HERE/requirements.txt}
[[ -f $REQUIREMENTS ]] || at_die "no requirements file $REQUIREMENTS"
STAMP=$({ "$PYTHON" --version 2>&1; cat "$REQUIREMENTS"; } | sha256sum | cut -c1-12)
VENV=$AGENTTYPE_CACHE/python-$STAMP
mkdir -p "$AGENTTYPE_CACHE"
# One maker at a time (at_build_reuse's lock): two runs wanting the same venv wait for each other.
at_build_reuse "$VENV" "$STAMP" "$VENV/bin/python"
# A venv names its own directory in its scripts, so it is made in place; the stamp, written
# last, marks it complete, and an incomplete one is made again from scratch.
rm -rf "$VENV"
at_log "making the venv $VENV from $REQUIREMENTS"
"$PYTHON" -m venv "$VENV" >&2 || at_die "$PYTHON -m venv $VENV failed"
PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install --quiet --no-input \
  --timeout 60 --retries 3 -r "$REQUIREMENTS" >&2 \
  || at_die "pip could not install $REQUIREMENTS from PyPI"
printf '%s\n' "$STAMP" > "$VENV/.complete"
echo "$VENV/bin/python"
