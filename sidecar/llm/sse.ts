// Server-sent events of a provider's streamed answer (OpenAI's chat and Responses, Anthropic's
// Messages), parsed as the WHATWG spec frames them: fields up to a blank line make one event.
import type { IncomingMessage } from "node:http";

export interface SseEvent {
  /** The `event:` field; "message" when the server sent none. */
  event: string;
  /** The `data:` lines, joined by newlines. */
  data: string;
  /** The event exactly as it came, blank line included, for relaying it unchanged. */
  raw: string;
}

/** The end of an event: a blank line, in any of the spec's line endings. */
const EVENT_END = /\r\n\r\n|\n\n|\r\r/g;

/**
 * The complete events of each piece of the body as it arrives, so that a relay handles all the
 * events of one read at once (one write, one pass of the redaction) instead of one by one; a
 * last event without its blank line is still one. A read that completes no event yields nothing.
 */
export async function* sseEventBatches(response: IncomingMessage): AsyncGenerator<SseEvent[]> {
  response.setEncoding("utf8");
  let pending = "";
  for await (const chunk of response as AsyncIterable<string>) {
    pending = pending === "" ? chunk : pending + chunk;
    const batch: SseEvent[] = [];
    let start = 0;
    EVENT_END.lastIndex = 0;
    for (let end = EVENT_END.exec(pending); end !== null; end = EVENT_END.exec(pending)) {
      const event = parseEvent(pending.slice(start, EVENT_END.lastIndex));
      if (event !== undefined) batch.push(event);
      start = EVENT_END.lastIndex;
    }
    pending = start === 0 ? pending : pending.slice(start);
    if (batch.length > 0) yield batch;
  }
  if (pending.trim() !== "") {
    const event = parseEvent(pending);
    if (event !== undefined) yield [event];
  }
}

/** The events of a body one by one, as they arrive. */
export async function* sseEvents(response: IncomingMessage): AsyncGenerator<SseEvent> {
  for await (const batch of sseEventBatches(response)) yield* batch;
}

function parseEvent(raw: string): SseEvent | undefined {
  // Nearly every event of a provider is one data line: read it without splitting into lines.
  if (raw.startsWith("data:") && raw.endsWith("\n\n") && raw.indexOf("\n") === raw.length - 2) {
    const from = raw.charCodeAt(5) === 32 ? 6 : 5;
    const data = raw.slice(from, -2);
    if (!data.includes("\r")) return { event: "message", data, raw };
  }
  let event = "message";
  const data: string[] = [];
  for (const line of raw.split(/\r\n|\n|\r/)) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  // A comment or a keep-alive alone is no event.
  if (data.length === 0) return undefined;
  return { event, data: data.join("\n"), raw };
}
