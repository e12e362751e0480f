#!/usr/bin/env bash
# Prints what failed in a `make test` log: the operator's errors that the tiers print, the failing
# tests, the first line of their errors, and make's own errors. CI shows the end of the output
# only, where the tiers' summaries leave no room for the tests' names; this puts them last.
set -euo pipefail
log=${1:?usage: tests/failure-digest.sh LOG}
[ -r "$log" ] || { echo "failure-digest: no log $log" >&2; exit 1; }
echo
echo "==== make test failed; what failed, from $log (the whole output is there) ===="
plain() { sed -u 's/\x1b\[[0-9;]*m//g' "$log"; }
# The operator's errors first (its warnings are mostly faults a test made on purpose)...
plain | grep -E '"level":(50|60)' | awk '!seen[$0]++' | cut -c1-240 | tail -n 8 || true
# ...then the failed tests and their errors last, where CI's view of the output ends. A
# program's exit code that a passing test printed, "(exit 3)", is not a failure.
plain |
  grep -E '(^|\] )[[:space:]]*(FAIL|×) |AssertionError|^[[:space:]]*(\[guests\] )?[[:space:]]*(Error|TypeError|TimeoutError): |\*\*\* \[|(^|[^(])exit [1-9]' |
  grep -vE '^[[:space:]]*(\[guests\] )?[[:space:]]*[0-9]+\|' |
  awk '!seen[$0]++' | cut -c1-500 | tail -n 32 || true
