"""The anthropic Python SDK as an unmodified agent uses it: ANTHROPIC_BASE_URL and
ANTHROPIC_API_KEY come from the environment. A message, a streamed one, and a tool round trip
(tool_use, then the tool_result back); prints what it got as one JSON line."""

import json

import anthropic

client = anthropic.Anthropic()
MODEL = "claude-sonnet-4-5"
results = {}

message = client.messages.create(
    model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "hello there"}]
)
results["message"] = {
    "text": message.content[0].text,
    "stop_reason": message.stop_reason,
    "input_tokens": message.usage.input_tokens,
    "output_tokens": message.usage.output_tokens,
}

with client.messages.stream(
    model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "stream this"}]
) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
results["stream"] = {"text": text, "stop_reason": final.stop_reason, "output_tokens": final.usage.output_tokens}

tools = [
    {
        "name": "get_weather",
        "description": "Weather of a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
question = {"role": "user", "content": "What is the weather in Rome?"}
first = client.messages.create(model=MODEL, max_tokens=256, tools=tools, messages=[question])
use = next(block for block in first.content if block.type == "tool_use")
second = client.messages.create(
    model=MODEL,
    max_tokens=256,
    tools=tools,
    messages=[
        question,
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": f"sunny in {use.input['city']}"}],
        },
    ],
)
results["tool"] = {
    "first_stop_reason": first.stop_reason,
    "name": use.name,
    "input": use.input,
    "final": second.content[0].text,
    "final_stop_reason": second.stop_reason,
}

print(json.dumps(results))
