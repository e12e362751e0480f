"""AgentType's Python shim, imported by Python at start-up because the operator puts
/opt/agenttype/python first on PYTHONPATH. It waits, bounded, for the sidecar and then runs
the sitecustomize the image had (if any), so the agent starts as it would without us.
The client lives beside it: `import agenttype` (agenttype.py). Written for Python >= 3.6;
any failure is reported on stderr and never stops the agent."""
import os
import sys


def _agenttype_wait():
    import socket
    import time

    if os.environ.get("AGENTTYPE_SIDECAR_READY") == "1":
        return  # a parent process waited already
    try:
        wait_ms = int(os.environ.get("AGENTTYPE_WAIT_MS", "30000"))
    except ValueError:
        wait_ms = 30000
    if wait_ms <= 0:
        return
    host, port = _agenttype_sidecar()
    started = time.time()
    deadline = started + wait_ms / 1000.0
    while True:
        try:
            # socket rather than urllib: a readiness check should not cost the agent's start-up
            # the import of http.client, email and ssl.
            conn = socket.create_connection((host, port), timeout=0.5)
            try:
                conn.sendall(b"GET /api/version HTTP/1.0\r\nHost: sidecar\r\n\r\n")
                status = conn.recv(64).split(b"\r\n", 1)[0].split()
            finally:
                conn.close()
            if len(status) >= 2 and status[1] == b"200":
                os.environ["AGENTTYPE_SIDECAR_READY"] = "1"
                _agenttype_log("info", "sidecar ready after %d ms (python %s)" % (
                    (time.time() - started) * 1000, sys.version.split()[0]))
                return
        except (OSError, IndexError):
            pass
        if time.time() >= deadline:
            _agenttype_log("warn", "sidecar at %s:%d not ready after %d ms; starting the agent anyway"
                           % (host, port, wait_ms))
            return
        time.sleep(0.05)


def _agenttype_sidecar():
    """Host and port of the sidecar's agent API, from the URLs the operator sets."""
    try:
        from urllib.parse import urlsplit
    except ImportError:  # Python 2
        from urlparse import urlsplit
    for name in ("AGENTTYPE_TOOLS_URL", "AGENTTYPE_MEMORY_URL"):
        value = os.environ.get(name)
        if value:
            parts = urlsplit(value)
            if parts.hostname:
                return parts.hostname, parts.port or 80
    return "127.0.0.1", 4000


def _agenttype_log(level, message):
    wanted = os.environ.get("AGENTTYPE_WRAPPER_LOG", "warn")
    if wanted == "off" or (level == "info" and wanted != "info"):
        return
    sys.stderr.write("agenttype: %s\n" % message)
    sys.stderr.flush()


def _agenttype_chain():
    """Runs the next sitecustomize on sys.path, which ours hides by coming first."""
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


for _agenttype_step in (_agenttype_wait, _agenttype_chain):
    try:
        _agenttype_step()
    except Exception as error:  # noqa: BLE001 -- the agent must start whatever happens here
        _agenttype_log("warn", "%s skipped: %s" % (_agenttype_step.__name__.lstrip("_"), error))
