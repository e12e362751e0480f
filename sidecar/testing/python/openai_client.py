"""The openai Python SDK as an unmodified agent uses it: OPENAI_BASE_URL and OPENAI_API_KEY come
from the environment, nothing else is set. Chat completions (plain, streamed, a JSON schema, a
tool call) and the Responses API (plain and streamed); prints what it got as one JSON line."""

import json

from openai import OpenAI

client = OpenAI()
MODEL = "llama3.2"
results = {}

chat = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hello there"}])
results["chat"] = {
    "text": chat.choices[0].message.content,
    "finish_reason": chat.choices[0].finish_reason,
    "model": chat.model,
    "total_tokens": chat.usage.total_tokens,
}

text, usage = "", None
for chunk in client.chat.completions.create(
    model=MODEL,
    messages=[{"role": "user", "content": "stream this"}],
    stream=True,
    stream_options={"include_usage": True},
):
    if chunk.choices:
        text += chunk.choices[0].delta.content or ""
    if chunk.usage is not None:
        usage = chunk.usage.total_tokens
results["chat_stream"] = {"text": text, "total_tokens": usage}

structured = client.chat.completions.create(
    model=MODEL,
    messages=[{"role": "user", "content": "a city and its population"}],
    response_format={
        "type": "json_schema",
        "json_schema": {
            "name": "city",
            "schema": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
                "required": ["name", "population"],
            },
        },
    },
)
results["json_schema"] = json.loads(structured.choices[0].message.content)

called = client.chat.completions.create(
    model=MODEL,
    messages=[{"role": "user", "content": "weather in Oslo?"}],
    tools=[
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather of a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ],
    tool_choice="auto",
)
results["tool_calls"] = {
    "finish_reason": called.choices[0].finish_reason,
    "calls": [
        {"name": c.function.name, "arguments": json.loads(c.function.arguments)}
        for c in called.choices[0].message.tool_calls or []
    ],
}

response = client.responses.create(model=MODEL, instructions="Be brief.", input="hello again")
results["responses"] = {"text": response.output_text, "status": response.status}

events, deltas = [], ""
for event in client.responses.create(model=MODEL, input="stream again", stream=True):
    if event.type not in events:
        events.append(event.type)
    if event.type == "response.output_text.delta":
        deltas += event.delta
results["responses_stream"] = {"events": events, "text": deltas}

print(json.dumps(results))
