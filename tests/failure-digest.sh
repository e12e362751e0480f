#!/usr/bin/env bash
# Prints what failed in a `make test` log: the failing tests, the first line of their errors, the
# operator's warnings that the tiers print, and make's own errors. CI shows the end of the output
# only, where the tiers' summaries leave no room for the tests' names; this puts them last.
set -euo pipefail
log=${1:?usage: tests/failure-digest.sh LOG}
[ -r "$log" ] || { echo "failure-digest: no log $log" >&2; exit 1; }
echo
echo "==== make test failed; what failed, from $log (the whole output is there) ===="
sed -u 's/\x1b\[[0-9;]*m//g' "$log" |
  grep -E '(^|\] )[[:space:]]*(FAIL|×) |AssertionError|^[[:space:]]*(\[guests\] )?[[:space:]]*(Error|TypeError|TimeoutError): |"level":(40|50|60)|\*\*\* \[|exit [1-9]' |
  grep -vE '^[[:space:]]*(\[guests\] )?[[:space:]]*[0-9]+\|' |
  awk '!seen[$0]++' | cut -c1-300 | tail -n 40
