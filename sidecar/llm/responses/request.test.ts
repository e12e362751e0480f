import { describe, expect, it } from "vitest";
import type { ChatMessage } from "../chat.ts";
import { fromResponsesRequest, responsesRequest } from "./request.ts";

const parse = (body: Record<string, unknown>) => responsesRequest.parse({ model: "m", ...body });

describe("fromResponsesRequest", () => {
  it("groups reasoning, text and calls in a row into one assistant turn, and names tool outputs", () => {
    const { request, conversation } = fromResponsesRequest(
      parse({
        instructions: "Be brief.",
        input: [
          { role: "user", content: "go" },
          { type: "reasoning", summary: [{ type: "summary_text", text: "plan" }] },
          {
            type: "message",
            role: "assistant",
            content: [{ type: "output_text", text: "calling", annotations: [] }],
          },
          { type: "function_call", call_id: "c1", name: "read", arguments: '{"path":"/a"}' },
          { type: "function_call", call_id: "c2", name: "list", arguments: "" },
          { type: "function_call_output", call_id: "c1", output: "data" },
          { type: "function_call_output", call_id: "c2", output: [{ type: "input_text", text: "none" }] },
          { role: "developer", content: "mind the rules" },
        ],
      }),
    );
    const expected: ChatMessage[] = [
      { role: "user", content: "go" },
      {
        role: "assistant",
        content: "calling",
        thinking: "plan",
        toolCalls: [
          { id: "c1", name: "read", arguments: { path: "/a" } },
          { id: "c2", name: "list", arguments: {} },
        ],
      },
      { role: "tool", toolCallId: "c1", content: "data", toolName: "read" },
      { role: "tool", toolCallId: "c2", content: "none", toolName: "list" },
      { role: "system", content: "mind the rules" },
    ];
    expect(conversation).toEqual(expected);
    expect(request.messages).toEqual([{ role: "system", content: "Be brief." }, ...expected]);
    expect(request.fields.thinking).toBe("input[1]");
  });

  it("continues a stored conversation: a tool output is named after the call it answers there", () => {
    const history: ChatMessage[] = [
      { role: "user", content: "weather?" },
      { role: "assistant", content: "", toolCalls: [{ id: "c9", name: "get_weather", arguments: {} }] },
    ];
    const { request } = fromResponsesRequest(
      parse({ input: [{ type: "function_call_output", call_id: "c9", output: "sunny" }] }),
      history,
    );
    expect(request.messages.at(-1)).toEqual({
      role: "tool",
      toolCallId: "c9",
      content: "sunny",
      toolName: "get_weather",
    });
  });

  it("maps the request's settings by their Responses names", () => {
    const { request } = fromResponsesRequest(
      parse({
        input: "x",
        tools: [{ type: "function", name: "f", parameters: { type: "object" }, strict: true }],
        tool_choice: { type: "allowed_tools", mode: "required", tools: [{ type: "function", name: "f" }] },
        parallel_tool_calls: false,
        max_output_tokens: 9,
        text: { format: { type: "json_schema", name: "s", schema: { type: "object" } } },
        reasoning: { effort: "none" },
        service_tier: "flex",
      }),
    );
    expect(request).toMatchObject({
      tools: [{ name: "f", parameters: { type: "object" }, strict: true }],
      toolChoice: { mode: "required", only: ["f"] },
      parallelToolCalls: false,
      maxTokens: 9,
      responseFormat: { type: "json_schema", schema: { type: "object" }, name: "s" },
      think: false,
      serviceTier: "flex",
    });
    expect(request.fields).toMatchObject({
      strict: "tools[0].strict",
      maxTokens: "max_output_tokens",
      responseFormat: "text.format",
      think: "reasoning.effort",
    });
  });

  it("refuses what no provider can honour", () => {
    const refused = (body: Record<string, unknown>) => {
      const result = responsesRequest.safeParse({ model: "m", input: "x", ...body });
      return result.success ? [] : result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    };
    expect(refused({ reasoning: { summary: "auto" } })[0]).toContain(
      "reasoning.summary: reasoning summaries reach no provider",
    );
    expect(refused({ conversation: "conv_1" })[0]).toContain(
      "conversation: conversations are OpenAI's own store",
    );
  });
});
