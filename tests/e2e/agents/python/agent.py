"""A sample agent that knows nothing about AgentType: it asks the LLM through the Ollama API at
OLLAMA_HOST, lists and calls its tools and writes its memory at the URLs it is given, with
the standard library's urllib only, logs what it did, then stays up as a long-running agent does."""
import json
import os
import signal
import socket
import sys
import urllib.request


def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read().decode())


def main():
    chat = call("POST", os.environ["OLLAMA_HOST"] + "/api/chat", {
        "model": os.environ.get("MODEL", "llama3.2"),
        "stream": False,
        "messages": [{"role": "user", "content": "What is (2 + 3) * 7? (asked by the python agent)"}],
    })
    print("llm: %s [model %s]" % (chat["message"]["content"], chat["model"]), flush=True)

    tools_url = os.environ["AGENTTYPE_TOOLS_URL"]
    tools = call("GET", tools_url)["tools"]
    print("tools: " + ", ".join("%s@%s" % (t["name"], t["version"]) for t in tools), flush=True)
    answer = call("POST", tools_url + "/calculator/invoke", {"expression": "(2 + 3) * 7"})
    print("tool calculator: (2 + 3) * 7 = %s" % answer["result"], flush=True)

    key = "runs/" + socket.gethostname()
    memory_url = os.environ["AGENTTYPE_MEMORY_URL"]
    call("PUT", memory_url + "/" + key, {"question": "(2 + 3) * 7", "answer": answer["result"]})
    stored = call("GET", memory_url + "/" + key)
    print("memory: %s = %s" % (key, json.dumps(stored["value"], separators=(",", ":"))), flush=True)
    print("agent done", flush=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        main()
    except Exception as error:  # the log says why; the pod keeps running for a look
        print("agent failed: %s" % error, file=sys.stderr, flush=True)
    while True:
        signal.pause()
