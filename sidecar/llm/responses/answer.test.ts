import { describe, expect, it } from "vitest";
import type { AnswerEvent, ChatResult } from "../chat.ts";
import { outputItems, type ResponseContext, ResponsesStreamer, toResponse } from "./answer.ts";
import { responsesRequest } from "./request.ts";

const context: ResponseContext = {
  id: "resp_1",
  createdAt: 1,
  model: "llama3.2",
  body: responsesRequest.parse({ model: "m", input: "x", instructions: "I", store: false }),
};

function parseSse(text: string): Record<string, unknown>[] {
  return text
    .split("\n\n")
    .filter((frame) => frame !== "")
    .map((frame) => {
      const [eventLine, dataLine] = frame.split("\n");
      const data = JSON.parse(dataLine?.replace(/^data: /, "") ?? "{}") as Record<string, unknown>;
      expect(data.type).toBe(eventLine?.replace(/^event: /, ""));
      return data;
    });
}

describe("ResponsesStreamer", () => {
  it("writes reasoning, text and each call as items in order, numbering events and items", () => {
    let done: ChatResult | undefined;
    const streamer = new ResponsesStreamer(context, (result) => {
      done = result;
    });
    const events: AnswerEvent[] = [
      { type: "thinking", text: "hm" },
      { type: "text", text: "a" },
      { type: "text", text: "b" },
      { type: "tool_call", call: { id: "call_1", name: "f", arguments: { x: 1 } } },
      { type: "done", stopReason: "tool_calls", usage: { inputTokens: 3, outputTokens: 2 } },
    ];
    const sse = parseSse(events.map((e) => streamer.events(e)).join(""));
    expect(sse.map((e) => (e.output_index === undefined ? e.type : `${e.type}:${e.output_index}`))).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added:0",
      "response.content_part.added:0",
      "response.reasoning_text.delta:0",
      "response.reasoning_text.done:0",
      "response.content_part.done:0",
      "response.output_item.done:0",
      "response.output_item.added:1",
      "response.content_part.added:1",
      "response.output_text.delta:1",
      "response.output_text.delta:1",
      "response.output_text.done:1",
      "response.content_part.done:1",
      "response.output_item.done:1",
      "response.output_item.added:2",
      "response.function_call_arguments.delta:2",
      "response.function_call_arguments.done:2",
      "response.output_item.done:2",
      "response.completed",
    ]);
    expect(sse.map((e) => e.sequence_number)).toEqual(sse.map((_, i) => i));
    expect(sse[12]).toMatchObject({ text: "ab", content_index: 0 });
    const completed = sse.at(-1)?.response as { status: string; output: { type: string }[]; store: boolean };
    expect(completed.status).toBe("completed");
    expect(completed.store).toBe(false);
    expect(completed.output.map((i) => i.type)).toEqual(["reasoning", "message", "function_call"]);
    expect(done).toEqual({
      text: "ab",
      thinking: "hm",
      toolCalls: [{ id: "call_1", name: "f", arguments: { x: 1 } }],
      stopReason: "tool_calls",
      usage: { inputTokens: 3, outputTokens: 2 },
    });
  });

  it("ends with response.incomplete when the answer was cut at the token limit", () => {
    const streamer = new ResponsesStreamer(context, () => {});
    const sse = parseSse(
      streamer.events({ type: "done", stopReason: "length", usage: { inputTokens: 1, outputTokens: 9 } }),
    );
    expect(sse.at(-1)?.type).toBe("response.incomplete");
    expect(sse.at(-1)?.response).toMatchObject({
      status: "incomplete",
      incomplete_details: { reason: "max_output_tokens" },
    });
  });
});

describe("toResponse and outputItems", () => {
  it("echo the request's settings and put a whole answer's items in order", () => {
    const result: ChatResult = {
      text: "",
      thinking: "",
      toolCalls: [{ id: "call_2", name: "g", arguments: {} }],
      stopReason: "tool_calls",
      usage: { inputTokens: 1, outputTokens: 1 },
    };
    const response = toResponse(context, outputItems(result), result);
    expect(response).toMatchObject({
      id: "resp_1",
      object: "response",
      status: "completed",
      instructions: "I",
      model: "llama3.2",
      store: false,
      usage: { input_tokens: 1, output_tokens: 1, total_tokens: 2 },
    });
    expect(response.output).toEqual([
      {
        id: expect.stringMatching(/^fc_/),
        type: "function_call",
        status: "completed",
        call_id: "call_2",
        name: "g",
        arguments: "{}",
      },
    ]);
  });
});
