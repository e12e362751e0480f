import { describe, expect, it } from "vitest";
import { anthropicCountTokensRequest, anthropicMessagesRequest, fromAnthropicRequest } from "./request.ts";

const parse = (body: Record<string, unknown>) =>
  anthropicMessagesRequest.parse({ model: "m", max_tokens: 10, ...body });

const issues = (body: Record<string, unknown>) => {
  const result = anthropicMessagesRequest.safeParse({ model: "m", max_tokens: 10, ...body });
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
};

describe("fromAnthropicRequest", () => {
  it("splits a user turn into its tool results first, then the rest, and names each result's tool", () => {
    const request = fromAnthropicRequest(
      parse({
        system: [
          { type: "text", text: "A. " },
          { type: "text", text: "B." },
        ],
        messages: [
          { role: "user", content: "go" },
          {
            role: "assistant",
            content: [
              { type: "thinking", thinking: "plan", signature: "s" },
              { type: "text", text: "calling" },
              { type: "tool_use", id: "t1", name: "read", input: { path: "/a" } },
              { type: "tool_use", id: "t2", name: "list", input: {} },
            ],
          },
          {
            role: "user",
            content: [
              { type: "tool_result", tool_use_id: "t1", content: [{ type: "text", text: "data" }] },
              { type: "tool_result", tool_use_id: "t2", is_error: true },
              { type: "text", text: "now?" },
              { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBO\nRw==" } },
            ],
          },
        ],
      }),
    );
    expect(request.messages).toEqual([
      { role: "system", content: "A. B." },
      { role: "user", content: "go" },
      {
        role: "assistant",
        content: "calling",
        thinking: "plan",
        toolCalls: [
          { id: "t1", name: "read", arguments: { path: "/a" } },
          { id: "t2", name: "list", arguments: {} },
        ],
      },
      { role: "tool", toolCallId: "t1", content: "data", toolName: "read" },
      { role: "tool", toolCallId: "t2", content: "", toolError: true, toolName: "list" },
      { role: "user", content: "now?", images: ["iVBORw=="] },
    ]);
    expect(request.fields).toEqual({
      thinking: "messages[1].content",
      images: "messages[2].content",
      maxTokens: "max_tokens",
    });
  });

  it("maps tool choices, one call per turn, and the sampling fields by their Anthropic names", () => {
    const tools = [{ name: "a", input_schema: { type: "object" } }];
    const mapped = (extra: Record<string, unknown>) =>
      fromAnthropicRequest(parse({ messages: [{ role: "user", content: "x" }], tools, ...extra }));
    expect(mapped({ tool_choice: { type: "any" } }).toolChoice).toEqual({ mode: "required" });
    expect(mapped({ tool_choice: { type: "tool", name: "a" } }).toolChoice).toEqual({
      mode: "required",
      only: ["a"],
    });
    expect(mapped({ tool_choice: { type: "none" } }).toolChoice).toEqual({ mode: "none" });
    const single = mapped({ tool_choice: { type: "auto", disable_parallel_tool_use: true } });
    expect(single.parallelToolCalls).toBe(false);
    expect(single.fields.parallelToolCalls).toBe("tool_choice.disable_parallel_tool_use");
    const sampled = mapped({ temperature: 0.5, top_k: 3, top_p: 0.5, stop_sequences: ["x"], max_tokens: 7 });
    expect(sampled).toMatchObject({ temperature: 0.5, topK: 3, topP: 0.5, stop: ["x"], maxTokens: 7 });
    expect(sampled.fields).toMatchObject({ topK: "top_k", stop: "stop_sequences", maxTokens: "max_tokens" });
    expect(mapped({}).tools).toEqual([{ name: "a", parameters: { type: "object" } }]);
  });

  it("maps thinking and effort: effort is the level, adaptive alone is on, disabled is off", () => {
    const think = (extra: Record<string, unknown>) =>
      fromAnthropicRequest(parse({ messages: [{ role: "user", content: "x" }], ...extra }));
    expect(think({ thinking: { type: "adaptive" }, output_config: { effort: "max" } }).think).toBe("max");
    expect(think({ output_config: { effort: "low" } }).fields.think).toBe("output_config.effort");
    expect(think({ thinking: { type: "adaptive" } }).think).toBe(true);
    expect(think({ thinking: { type: "disabled" } }).think).toBe(false);
    expect(think({}).think).toBeUndefined();
  });
});

describe("the Messages request schema", () => {
  it("refuses what no provider can honour, naming the field and why", () => {
    expect(issues({ messages: [{ role: "system", content: "x" }] })).toEqual([
      "messages.0.role: role must be user or assistant; the system prompt goes in system",
    ]);
    expect(
      issues({
        messages: [{ role: "user", content: "x" }],
        tools: [{ type: "bash_20250124", name: "bash" }],
      }),
    ).toContain("tools.0.type: server tools reach no provider: give the agent a tool of its own instead");
    expect(issues({ messages: [{ role: "user", content: "x" }], speed: "fast" })).toEqual([
      "speed: no provider has a fast mode",
    ]);
  });

  it("accepts cache_control everywhere Anthropic does, and what asks for the default", () => {
    expect(
      issues({
        cache_control: { type: "ephemeral" },
        system: [{ type: "text", text: "s", cache_control: { type: "ephemeral", ttl: "1h" } }],
        messages: [
          { role: "user", content: [{ type: "text", text: "x", cache_control: { type: "ephemeral" } }] },
        ],
        tools: [{ name: "a", input_schema: { type: "object" }, cache_control: { type: "ephemeral" } }],
        service_tier: "standard_only",
        speed: "standard",
      }),
    ).toEqual([]);
  });

  it("count_tokens takes the conversation without the answer's fields", () => {
    const body = { model: "m", messages: [{ role: "user", content: "x" }] };
    expect(anthropicCountTokensRequest.safeParse(body).success).toBe(true);
    const result = anthropicCountTokensRequest.safeParse({ ...body, max_tokens: 5 });
    expect(result.success).toBe(false);
  });
});
