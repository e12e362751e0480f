# shellcheck shell=sh
# AgentType's environment for agents in any language: `. /opt/agenttype/env.sh` in a POSIX
# shell entrypoint. It waits, bounded, for the sidecar (AGENTTYPE_WAIT_MS, default 30000; 0 skips)
# and defines small functions over the sidecar's API, using curl or wget, whichever the image has:
#   agenttype_tools                      the tools of this agent (JSON)
#   agenttype_invoke NAME JSON           call a tool
#   agenttype_memory_put KEY JSON        store a value
#   agenttype_memory_get KEY             read it ({"key","value","updatedAt"})
# It sets no option of the calling shell (no set -e) and changes no variable it did not define.

agenttype_url() {
  _agenttype_origin=${AGENTTYPE_TOOLS_URL:-http://127.0.0.1:4000/tools}
  printf '%s%s' "${_agenttype_origin%/tools}" "$1"
}

# agenttype_http METHOD PATH [BODY]: the response body on stdout; non-zero on an HTTP error.
agenttype_http() {
  if command -v curl >/dev/null 2>&1; then
    if [ $# -ge 3 ]; then
      curl -fsS -X "$1" -H 'content-type: application/json' --data-binary "$3" "$(agenttype_url "$2")"
    else
      curl -fsS -X "$1" "$(agenttype_url "$2")"
    fi
  elif command -v wget >/dev/null 2>&1; then
    if [ $# -ge 3 ]; then
      wget -q -O - --method="$1" --header='content-type: application/json' --body-data="$3" "$(agenttype_url "$2")"
    else
      wget -q -O - --method="$1" "$(agenttype_url "$2")"
    fi
  else
    echo "agenttype: neither curl nor wget in this image" >&2
    return 127
  fi
}

agenttype_tools() { agenttype_http GET /tools; }
agenttype_invoke() { agenttype_http POST "/tools/$1/invoke" "$2"; }
agenttype_memory_put() { agenttype_http PUT "/memory/$1" "$2"; }
agenttype_memory_get() { agenttype_http GET "/memory/$1"; }

agenttype_wait() {
  _agenttype_left=${AGENTTYPE_WAIT_MS:-30000}
  [ "${AGENTTYPE_SIDECAR_READY:-}" = 1 ] && return 0
  while [ "$_agenttype_left" -gt 0 ]; do
    agenttype_http GET /api/version >/dev/null 2>&1
    case $? in
      0) AGENTTYPE_SIDECAR_READY=1; export AGENTTYPE_SIDECAR_READY; return 0 ;;
      127) return 0 ;;   # no HTTP client in the image: nothing to wait with
    esac
    sleep 0.1 2>/dev/null || sleep 1
    _agenttype_left=$((_agenttype_left - 100))
  done
  echo "agenttype: sidecar not ready after ${AGENTTYPE_WAIT_MS:-30000} ms; starting the agent anyway" >&2
  return 0
}

agenttype_wait
