"""The OpenAI Agents SDK (openai-agents) runs a one-tool agent as an unmodified agent would: its
client comes from OPENAI_BASE_URL and OPENAI_API_KEY, and OPENAI_AGENTS_DISABLE_TRACING keeps
traces from being sent to OpenAI. Prints the tool's calls and the final output as one JSON line."""

import json

from agents import Agent, Runner, function_tool

asked = []


@function_tool
def get_weather(city: str) -> str:
    """Weather of a city."""
    asked.append(city)
    return f"sunny in {city}"


# A named model: for its default (a GPT-5) the SDK adds text.verbosity, which no provider
# behind the sidecar can honour, and the sidecar refuses it by name.
agent = Agent(name="forecaster", instructions="Answer with the tool.", tools=[get_weather], model="gpt-4.1")
result = Runner.run_sync(agent, "What is the weather in Rome?")
print(json.dumps({"asked": asked, "final": result.final_output}))
