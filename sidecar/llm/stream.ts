// Writes an answer stream to the agent event by event (SSE or NDJSON), honouring
// backpressure, and aborts the provider call when the agent goes away.
import type { ServerResponse } from "node:http";
import type { FastifyReply } from "fastify";
import type { ChatEvent } from "./chat.ts";
import { describeFailure, type Failure } from "./failure.ts";

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
  event(event: ChatEvent): string;
  /** Text that tells the agent the stream failed after it started. */
  error(failure: Failure): string;
  /** Text after the last event, such as SSE's [DONE]. */
  end: string;
}

export async function writeStream(
  reply: FastifyReply,
  events: AsyncIterable<ChatEvent>,
  format: StreamFormat,
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { "content-type": format.contentType, "cache-control": "no-cache" });
  try {
    for await (const event of events) {
      const text = format.event(event);
      if (text !== "" && !res.write(text)) await drained(res);
      if (res.destroyed) return;
    }
    res.end(format.end);
  } catch (error) {
    // The agent left: nobody to tell, and nothing went wrong on our side.
    if (res.destroyed) return;
    const failure = describeFailure(error);
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
