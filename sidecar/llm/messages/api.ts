// Anthropic's Messages API (/v1/messages, /v1/messages/count_tokens) over the configured
// providers, for Claude Code and the Anthropic SDKs (ANTHROPIC_BASE_URL=http://127.0.0.1:4000).
// What a request may hold is request.ts; the answer shapes are answer.ts.
import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { type LlmServices, registerLlmApi } from "../api.ts";
import { estimateTokens, offerAsItCame } from "../chat.ts";
import { answerChat } from "../stream.ts";
import { AnthropicStreamer, anthropicError, anthropicStreamError, toAnthropicMessage } from "./answer.ts";
import { anthropicCountTokensRequest, anthropicMessagesRequest, fromAnthropicRequest } from "./request.ts";

export function registerAnthropicApi(app: FastifyInstance, services: () => LlmServices): void {
  registerLlmApi(
    app,
    { prefix: "/v1/messages", name: "Anthropic Messages", errorShape: anthropicError, services },
    (routes) => {
      routes.post(
        "",
        anthropicMessagesRequest,
        async (body, call) => {
          const id = `msg_${randomUUID().replaceAll("-", "")}`;
          const chat = fromAnthropicRequest(body);
          offerAsItCame(chat, "anthropic-messages", call.body, call.heldBack);
          return answerChat(call, chat, "anthropic", body.stream === true, {
            whole: (result, model) => toAnthropicMessage(result, model, id),
            stream: (model) => {
              const streamer = new AnthropicStreamer(model, id);
              return {
                contentType: "text/event-stream",
                event: (event) => streamer.events(event),
                error: anthropicStreamError,
                end: "",
              };
            },
          });
        },
        "anthropic-messages",
      );

      // No provider counts tokens without generating; this is the estimate the sidecar's own
      // tokens/min budget uses (about four characters a token), the same for every provider.
      routes.post("/count_tokens", anthropicCountTokensRequest, async (body, call) =>
        call.reply.send({ input_tokens: estimateTokens(fromAnthropicRequest(body)) }),
      );
    },
  );
}
