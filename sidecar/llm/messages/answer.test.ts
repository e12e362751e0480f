import { describe, expect, it } from "vitest";
import type { AnswerEvent } from "../chat.ts";
import { AnthropicStreamer, anthropicError, toAnthropicMessage } from "./answer.ts";

/** The events of an SSE text as [name, data] pairs, checking each data's type is its name. */
function parseSse(text: string): [string, Record<string, unknown>][] {
  return text
    .split("\n\n")
    .filter((frame) => frame !== "")
    .map((frame) => {
      const [eventLine, dataLine] = frame.split("\n");
      const name = eventLine?.replace(/^event: /, "") ?? "";
      const data = JSON.parse(dataLine?.replace(/^data: /, "") ?? "{}") as Record<string, unknown>;
      expect(data.type).toBe(name);
      return [name, data];
    });
}

describe("AnthropicStreamer", () => {
  it("numbers blocks in order: a run of thinking, a run of text, one block per tool call", () => {
    const streamer = new AnthropicStreamer("llama3.2", "msg_1");
    const events: AnswerEvent[] = [
      { type: "thinking", text: "hm" },
      { type: "text", text: "a" },
      { type: "text", text: "b" },
      { type: "tool_call", call: { id: "c1", name: "f", arguments: { x: 1 } } },
      { type: "tool_call", call: { id: "c2", name: "g", arguments: {} } },
      { type: "done", stopReason: "tool_calls", usage: { inputTokens: 5, outputTokens: 3 } },
    ];
    const sse = parseSse(events.map((e) => streamer.events(e)).join(""));
    expect(sse.map(([name, data]) => (data.index === undefined ? name : `${name}:${data.index}`))).toEqual([
      "message_start",
      "ping",
      "content_block_start:0",
      "content_block_delta:0",
      "content_block_stop:0",
      "content_block_start:1",
      "content_block_delta:1",
      "content_block_delta:1",
      "content_block_stop:1",
      "content_block_start:2",
      "content_block_delta:2",
      "content_block_stop:2",
      "content_block_start:3",
      "content_block_delta:3",
      "content_block_stop:3",
      "message_delta",
      "message_stop",
    ]);
    expect(sse[0]?.[1].message).toMatchObject({
      id: "msg_1",
      model: "llama3.2",
      content: [],
      stop_reason: null,
    });
    expect(sse[2]?.[1].content_block).toEqual({ type: "thinking", thinking: "", signature: "" });
    expect(sse[3]?.[1].delta).toEqual({ type: "thinking_delta", thinking: "hm" });
    expect(sse[9]?.[1].content_block).toEqual({ type: "tool_use", id: "c1", name: "f", input: {} });
    expect(sse[10]?.[1].delta).toEqual({ type: "input_json_delta", partial_json: '{"x":1}' });
    expect(sse[15]?.[1]).toEqual({
      type: "message_delta",
      delta: { stop_reason: "tool_use", stop_sequence: null },
      usage: {
        input_tokens: 5,
        output_tokens: 3,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
      },
    });
  });

  it("sends message_start and message_stop around an empty answer", () => {
    const streamer = new AnthropicStreamer("m", "msg_2");
    const sse = parseSse(
      streamer.events({ type: "done", stopReason: "length", usage: { inputTokens: 1, outputTokens: 0 } }),
    );
    expect(sse.map(([name]) => name)).toEqual(["message_start", "ping", "message_delta", "message_stop"]);
    expect(sse[2]?.[1].delta).toEqual({ stop_reason: "max_tokens", stop_sequence: null });
  });
});

describe("toAnthropicMessage", () => {
  it("puts thinking first, then text, then tool_use blocks", () => {
    const message = toAnthropicMessage(
      {
        text: "ok",
        thinking: "why",
        toolCalls: [{ id: "c", name: "f", arguments: { a: 1 } }],
        stopReason: "tool_calls",
        usage: { inputTokens: 2, outputTokens: 1 },
      },
      "m",
      "msg_3",
    );
    expect(message.content).toEqual([
      { type: "thinking", thinking: "why", signature: "" },
      { type: "text", text: "ok" },
      { type: "tool_use", id: "c", name: "f", input: { a: 1 } },
    ]);
    expect(message.stop_reason).toBe("tool_use");
  });

  it("answers an empty text as one empty text block, and only tool calls without one", () => {
    const base = { thinking: "", stopReason: "stop" as const, usage: { inputTokens: 1, outputTokens: 0 } };
    expect(toAnthropicMessage({ ...base, text: "", toolCalls: [] }, "m", "i").content).toEqual([
      { type: "text", text: "" },
    ]);
    expect(
      toAnthropicMessage({ ...base, text: "", toolCalls: [{ id: "c", name: "f", arguments: {} }] }, "m", "i")
        .content,
    ).toEqual([{ type: "tool_use", id: "c", name: "f", input: {} }]);
  });
});

describe("anthropicError", () => {
  it("types errors by status as the SDKs expect and names the field in the message", () => {
    const error = (status: number, param?: string) =>
      anthropicError({
        status,
        type: "api_error",
        code: "x",
        message: "what happened",
        ...(param === undefined ? {} : { param }),
      });
    expect(error(400, "max_tokens").error).toEqual({
      type: "invalid_request_error",
      message: "max_tokens: what happened",
    });
    expect(error(404).error.type).toBe("not_found_error");
    expect(error(413).error.type).toBe("request_too_large");
    expect(error(429).error.type).toBe("rate_limit_error");
    expect(error(502).error.type).toBe("api_error");
    expect(error(503).error.type).toBe("api_error");
    const overloaded = anthropicError({
      status: 503,
      type: "api_error",
      code: "providers_unavailable",
      message: "m",
    });
    expect(overloaded.error.type).toBe("overloaded_error");
    expect(error(400).type).toBe("error");
  });
});
