// OpenAI's Responses API (/v1/responses) over the configured providers, for the OpenAI Agents
// SDK, Codex and the openai SDKs' responses.create. previous_response_id continues a
// conversation the sidecar kept (store.ts). What a request may hold is request.ts; the answer
// shapes are answer.ts.
import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { type LlmServices, registerLlmApi } from "../api.ts";
import { type ChatMessage, type ChatResult, offerAsItCame } from "../chat.ts";
import { openAiError } from "../openai-api.ts";
import { answerChat } from "../stream.ts";
import { outputItems, type ResponseContext, ResponsesStreamer, toResponse } from "./answer.ts";
import { fromResponsesRequest, responsesRequest } from "./request.ts";
import { RESPONSE_STORE_LIMITS, ResponseStore } from "./store.ts";

/** The answer as the assistant turn that the next response continues from. */
function answerMessage(result: ChatResult): ChatMessage {
  const message: ChatMessage = { role: "assistant", content: result.text };
  if (result.thinking !== "") message.thinking = result.thinking;
  if (result.toolCalls.length > 0) message.toolCalls = result.toolCalls;
  return message;
}

export function registerResponsesApi(app: FastifyInstance, services: () => LlmServices): void {
  // One store per sidecar, kept across config reloads: a conversation outlives a rotated Secret.
  const store = new ResponseStore();
  registerLlmApi(
    app,
    { prefix: "/v1/responses", name: "OpenAI Responses", errorShape: openAiError, services },
    (routes) => {
      routes.post("", responsesRequest, async (body, call) => {
        const previousId = body.previous_response_id ?? undefined;
        const history = previousId === undefined ? [] : store.get(previousId);
        if (history === undefined) {
          return call.reply.code(400).send(
            openAiError({
              status: 400,
              type: "invalid_request_error",
              code: "previous_response_not_found",
              param: "previous_response_id",
              message: `previous response "${previousId}" is not in the sidecar's store: it was created with store: false, or forgotten (the sidecar keeps the last ${RESPONSE_STORE_LIMITS.maxEntries} responses, ${RESPONSE_STORE_LIMITS.maxBytes / 1024 / 1024} MiB, until it restarts); send the conversation's items as input instead`,
            }),
          );
        }
        const { request, conversation } = fromResponsesRequest(body, history);
        // A response the sidecar need not keep, and that continues none it kept, may go as it
        // came to a provider that speaks Responses; its ids are then the provider's.
        if (body.store === false && previousId === undefined)
          offerAsItCame(request, "openai-responses", call.body);
        const id = `resp_${randomUUID().replaceAll("-", "")}`;
        const keep = (result: ChatResult) => {
          if (body.store !== false) store.put(id, [...conversation, answerMessage(result)]);
        };
        const context = (model: string): ResponseContext => ({
          id,
          createdAt: Math.floor(Date.now() / 1000),
          model,
          body,
        });
        return answerChat(call, request, "responses", body.stream === true, {
          whole: (result, model) => {
            keep(result);
            return toResponse(context(model), outputItems(result), result);
          },
          stream: (model) => {
            const streamer = new ResponsesStreamer(context(model), keep);
            return {
              contentType: "text/event-stream",
              event: (event) => streamer.events(event),
              error: (failure) => streamer.error(failure),
              end: "",
            };
          },
        });
      });
    },
  );
}
