// Answers the agent's chat request, whole or as a stream written event by event (SSE or
// NDJSON) with backpressure honoured, and aborts the provider call when the agent goes away.
// The agent-facing APIs differ only in the shapes they give the answer.
import type { ServerResponse } from "node:http";
import type { FastifyReply } from "fastify";
import type { LlmCall } from "./api.ts";
import type { AnswerEvent, ChatEvent, ChatRequest, ChatResult } from "./chat.ts";
import type { Failure } from "./failure.ts";

/** A signal that fires when the agent closes the connection before the answer is complete. */
export function agentGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.on("close", () => {
    if (!reply.raw.writableFinished) controller.abort(new Error("the agent closed the connection"));
  });
  return controller.signal;
}

export interface StreamFormat {
  contentType: string;
  /** Text for one event; empty when the event has no representation in this protocol. */
  event(event: AnswerEvent): string;
  /** Text that tells the agent the stream failed after it started. */
  error(failure: Failure): string;
  /** Text after the last event, such as SSE's [DONE]. */
  end: string;
}

/** How one agent-facing API shapes a chat answer. */
export interface ChatAnswerShape {
  /** The answer of a request that did not ask to stream. */
  whole(result: ChatResult, model: string): object;
  /** How the stream is written, once the model that answers is known. */
  stream(model: string): StreamFormat;
}

/**
 * Asks the router and sends the answer whole or streamed; a failure before the first byte is
 * answered with its status, one after it ends the stream (see writeStream).
 */
export async function answerChat(
  call: LlmCall,
  chat: ChatRequest,
  api: string,
  stream: boolean,
  shape: ChatAnswerShape,
): Promise<FastifyReply> {
  const { reply, router } = call;
  const signal = agentGone(reply);
  if (!stream) {
    try {
      const answer = await router.chat(chat, api, signal);
      const { raw } = answer.value;
      // A passed-through answer goes back as the provider wrote it, credentials removed.
      if (raw !== undefined) return reply.type("application/json").send(call.redact(raw));
      return reply.send(shape.whole(answer.value, answer.provider.model));
    } catch (error) {
      return call.fail(error);
    }
  }
  let answer: Awaited<ReturnType<LlmCall["router"]["chatStream"]>>;
  try {
    answer = await router.chatStream(chat, api, signal);
  } catch (error) {
    return call.fail(error);
  }
  await writeStream(call, answer.value, shape.stream(answer.provider.model));
  return reply;
}

async function writeStream(
  call: LlmCall,
  events: AsyncIterable<ChatEvent>,
  format: StreamFormat,
): Promise<void> {
  const { reply } = call;
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { "content-type": format.contentType, "cache-control": "no-cache" });
  // A passed-through stream is the provider's events as they came, its own end included.
  let passedThrough = false;
  try {
    for await (const event of events) {
      if (event.type === "raw") passedThrough = true;
      const text = event.type === "raw" ? call.redact(event.text) : passedThrough ? "" : format.event(event);
      if (text !== "" && !res.write(text)) await drained(res);
      if (res.destroyed) return;
    }
    res.end(passedThrough ? "" : format.end);
  } catch (error) {
    // The agent left: nobody to tell, and nothing went wrong on our side.
    if (res.destroyed) return;
    const failure = call.describe(error);
    reply.log.warn({ code: failure.code }, failure.message);
    res.end(format.error(failure));
  }
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}
