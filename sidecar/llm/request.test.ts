// The pure halves of request fidelity: what the APIs map a request to, with the agent's name
// for each feature, and what each provider says it cannot honour.
import { describe, expect, it } from "vitest";
import { BMP, GIF, PNG } from "../testing/images.ts";
import { bedrockUnhonoured, imageFormat } from "./bedrock.ts";
import type { ChatRequest } from "./chat.ts";
import { ollamaUnhonoured } from "./ollama.ts";
import { fromOllamaChatRequest, ollamaChatRequest } from "./ollama-request.ts";
import { fromOpenAiRequest, openAiChatRequest } from "./openai-request.ts";

const CLAUDE = "us.anthropic.claude-sonnet-4-20250514-v1:0";
const chat = (extra: Partial<ChatRequest>): ChatRequest => ({
  messages: [{ role: "user", content: "hi" }],
  fields: {},
  ...extra,
});

describe("fromOpenAiRequest", () => {
  it("maps every feature and notes the OpenAI name of each", () => {
    const request = fromOpenAiRequest(
      openAiChatRequest.parse({
        model: "m",
        messages: [
          { role: "developer", content: "be brief" },
          {
            role: "user",
            content: [
              { type: "text", text: "look" },
              { type: "image_url", image_url: { url: `data:image/png;base64,${PNG}` } },
            ],
          },
          { role: "assistant", content: null, refusal: "I cannot" },
          { role: "tool", tool_call_id: "c1", name: "lookup", content: [{ type: "text", text: "r" }] },
        ],
        tools: [{ type: "function", function: { name: "lookup", strict: true } }],
        tool_choice: { type: "function", function: { name: "lookup" } },
        response_format: { type: "json_schema", json_schema: { name: "n", schema: { type: "object" } } },
        reasoning_effort: "none",
        max_tokens: 10,
        n: 1,
        logprobs: true,
        top_logprobs: 3,
      }),
    );
    expect(request.messages).toEqual([
      { role: "system", content: "be brief" },
      { role: "user", content: "look", images: [PNG] },
      { role: "assistant", content: "I cannot" },
      { role: "tool", content: "r", toolCallId: "c1", toolName: "lookup" },
    ]);
    expect(request).toMatchObject({
      toolChoice: { mode: "required", only: ["lookup"] },
      responseFormat: { type: "json_schema", schema: { type: "object" }, name: "n" },
      think: false,
      maxTokens: 10,
      logprobs: { top: 3 },
    });
    expect(request.choices).toBeUndefined();
    expect(request.fields).toEqual({
      images: "messages[1].content[1]",
      strict: "tools[0].function.strict",
      toolChoice: "tool_choice",
      maxTokens: "max_tokens",
      logprobs: "logprobs",
      responseFormat: "response_format",
      think: "reasoning_effort",
    });
  });
});

describe("fromOllamaChatRequest", () => {
  it("keeps the options without a neutral field by their Ollama names, and names every option used", () => {
    const request = fromOllamaChatRequest(
      ollamaChatRequest.parse({
        model: "m",
        messages: [{ role: "user", content: "x", images: [PNG] }],
        options: { num_ctx: 8192, temperature: 0.1, num_predict: -1, repeat_penalty: 1.1 },
        format: "json",
        think: "low",
      }),
    );
    expect(request).toMatchObject({
      temperature: 0.1,
      ollamaOptions: { num_ctx: 8192, num_predict: -1, repeat_penalty: 1.1 },
      responseFormat: { type: "json" },
      think: "low",
    });
    expect(request.fields).toMatchObject({
      temperature: "options.temperature",
      "options.num_ctx": "options.num_ctx",
      images: "messages[0].images",
      responseFormat: "format",
      think: "think",
    });
  });
});

describe("what providers cannot honour", () => {
  it("Ollama: forced or single tool calls, strict tools, schema descriptions, levels it lacks, n, tiers, metadata", () => {
    expect(ollamaUnhonoured(chat({ toolChoice: { mode: "required" } }))?.feature).toBe("toolChoice");
    expect(ollamaUnhonoured(chat({ toolChoice: { mode: "none" } }))).toBeUndefined();
    expect(ollamaUnhonoured(chat({ parallelToolCalls: false }))?.feature).toBe("parallelToolCalls");
    expect(ollamaUnhonoured(chat({ tools: [{ name: "f", strict: true }] }))?.feature).toBe("strict");
    expect(ollamaUnhonoured(chat({ think: "xhigh" }))?.feature).toBe("think");
    expect(ollamaUnhonoured(chat({ think: "high", seed: 1, ollamaOptions: { num_ctx: 1 } }))).toBeUndefined();
    expect(ollamaUnhonoured(chat({ choices: 2 }))?.feature).toBe("choices");
    expect(ollamaUnhonoured(chat({ metadata: { a: "b" } }))?.feature).toBe("metadata");
  });

  it("Bedrock: what Converse lacks, top_k outside Anthropic's models, images it cannot take", () => {
    expect(bedrockUnhonoured(chat({ seed: 1 }), CLAUDE)?.feature).toBe("seed");
    expect(bedrockUnhonoured(chat({ topK: 5 }), CLAUDE)).toBeUndefined();
    expect(bedrockUnhonoured(chat({ topK: 5 }), "meta.llama3-70b-instruct-v1:0")?.feature).toBe("topK");
    expect(bedrockUnhonoured(chat({ frequencyPenalty: 0, think: false }), CLAUDE)).toBeUndefined();
    expect(bedrockUnhonoured(chat({ think: true }), CLAUDE)?.feature).toBe("think");
    expect(bedrockUnhonoured(chat({ ollamaOptions: { num_ctx: 1 } }), CLAUDE)?.feature).toBe(
      "options.num_ctx",
    );
    const image = (images: string[], role: "user" | "assistant" = "user") =>
      bedrockUnhonoured(chat({ messages: [{ role, content: "x", images }] }), CLAUDE);
    expect(image([PNG, GIF])).toBeUndefined();
    expect(image([BMP])?.reason).toContain("png, jpeg, gif and webp");
    expect(image([PNG], "assistant")?.reason).toContain("user messages only");
  });

  it("tells image formats by their first bytes", () => {
    expect([PNG, GIF, BMP].map(imageFormat)).toEqual(["png", "gif", undefined]);
  });
});
