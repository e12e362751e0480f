"""A small client of the AgentType sidecar for Python agents: `import agenttype` works in
any agent with `language: python` (the operator puts /opt/agenttype/python on PYTHONPATH).

    agenttype.tools()                        # the tools this agent was given
    agenttype.invoke("calculator", {"expression": "6*7"})
    agenttype.memory_put("notes/today", {"text": "..."})
    agenttype.memory_get("notes/today")      # the value, or None
    agenttype.memory_delete("notes/today")   # False when there was none
    agenttype.memory_list("notes/")          # [{"key", "bytes", "updatedAt"}]
    agenttype.memory_search("words")         # [{"key", "value", "updatedAt"}]

Standard library only. A sidecar error raises SidecarError with the status and the message."""
import json
import os
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["SidecarError", "invoke", "memory_delete", "memory_get", "memory_list", "memory_put",
           "memory_search", "sidecar_ready", "tools"]


class SidecarError(Exception):
    def __init__(self, method, path, status, body):
        detail = body.get("error") if isinstance(body, dict) and "error" in body else body
        super().__init__("%s %s: the sidecar answered %d: %s" % (method, path, status, detail))
        self.status = status
        self.body = body


def _origin():
    for name in ("AGENTTYPE_TOOLS_URL", "AGENTTYPE_MEMORY_URL"):
        value = os.environ.get(name)
        if value:
            parts = urllib.parse.urlsplit(value)
            if parts.scheme and parts.netloc:
                return "%s://%s" % (parts.scheme, parts.netloc)
    return "http://127.0.0.1:4000"


def _call(method, path, body=None):
    """(status, parsed body); 404 is returned, other errors raise SidecarError."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(_origin() + path, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=float(os.environ.get("AGENTTYPE_TIMEOUT_S", "600"))) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = text
    if status >= 400 and status != 404:
        raise SidecarError(method, path, status, parsed)
    return status, parsed


def _found(method, path, body=None):
    status, parsed = _call(method, path, body)
    if status == 404:
        raise SidecarError(method, path, status, parsed)
    return parsed


def _memory_path(key):
    return "/memory/" + urllib.parse.quote(key, safe="/")


def tools():
    return _found("GET", "/tools")["tools"]


def invoke(name, arguments):
    return _found("POST", "/tools/%s/invoke" % urllib.parse.quote(name, safe=""), arguments)


def memory_put(key, value):
    _found("PUT", _memory_path(key), value)


def memory_get(key):
    status, parsed = _call("GET", _memory_path(key))
    return None if status == 404 else parsed["value"]


def memory_delete(key):
    return _call("DELETE", _memory_path(key))[0] != 404


def memory_list(prefix=""):
    return _found("GET", "/memory?prefix=" + urllib.parse.quote(prefix, safe=""))["items"]


def memory_search(words):
    return _found("GET", "/memory?q=" + urllib.parse.quote(words, safe=""))["items"]


def sidecar_ready():
    """Whether the sidecar answered before the agent started."""
    return os.environ.get("AGENTTYPE_SIDECAR_READY") == "1"
