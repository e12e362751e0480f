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

/** The events of a body as they arrive; a last event without its blank line is still one. */
export async function* sseEvents(response: IncomingMessage): AsyncGenerator<SseEvent> {
  response.setEncoding("utf8");
  let pending = "";
  for await (const chunk of response as AsyncIterable<string>) {
    pending += chunk;
    let end = eventEnd(pending);
    while (end !== undefined) {
      const raw = pending.slice(0, end.at + end.length);
      pending = pending.slice(end.at + end.length);
      const event = parseEvent(raw);
      if (event !== undefined) yield event;
      end = eventEnd(pending);
    }
  }
  if (pending.trim() !== "") {
    const event = parseEvent(pending);
    if (event !== undefined) yield event;
  }
}

/** Where the first event of `text` ends: a blank line, in any of the spec's line endings. */
function eventEnd(text: string): { at: number; length: number } | undefined {
  const match = /\r\n\r\n|\n\n|\r\r/.exec(text);
  return match === null ? undefined : { at: match.index, length: match[0].length };
}

function parseEvent(raw: string): SseEvent | undefined {
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
