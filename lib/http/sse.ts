/**
 * Server-sent events, as OpenAI-compatible providers send them: `data: <json>` lines separated by a
 * blank line, `data: [DONE]` at the end, `: comment` lines as keep-alives. Only what that wire format
 * needs: multi-line `data` is joined with "\n", `event`/`id`/`retry` fields are read and ignored
 * except `event: error`.
 */

export type SseEvent =
  | { kind: "data"; data: string; event: string | undefined }
  /** A comment or an empty event: proof of life for the socket, not content. */
  | { kind: "keepalive" };

/** Splits a byte stream into SSE events. Handles `\n`, `\r\n` and `\r` line ends and split UTF-8. */
export async function* parseSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  let event: string | undefined;

  for await (const bytes of body) {
    buffer += decoder.decode(bytes, { stream: true });
    let start = 0;
    for (;;) {
      const nl = nextLineEnd(buffer, start);
      if (nl === -1) break;
      const line = buffer.slice(start, nl);
      start = nl + (buffer[nl] === "\r" && buffer[nl + 1] === "\n" ? 2 : 1);
      if (line === "") {
        if (data.length > 0) {
          yield { kind: "data", data: data.length === 1 ? (data[0] as string) : data.join("\n"), event };
        } else {
          yield { kind: "keepalive" };
        }
        data = [];
        event = undefined;
      } else if (line.startsWith(":")) {
        yield { kind: "keepalive" };
      } else {
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") data.push(value);
        else if (field === "event") event = value;
      }
    }
    buffer = buffer.slice(start);
    // A lone trailing "\r" may be the first half of "\r\n": keep it for the next chunk.
  }
  buffer += decoder.decode();
  if (buffer.length > 0 && buffer !== "\r") {
    const line = buffer.replace(/\r$/, "");
    if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
  }
  if (data.length > 0) yield { kind: "data", data: data.join("\n"), event };
}

function nextLineEnd(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) return i;
    if (c === 13) {
      // "\r" at the very end could be followed by "\n" in the next chunk.
      if (i === text.length - 1) return -1;
      return i;
    }
  }
  return -1;
}

/** One SSE `data` event, as the gateway writes it to its callers. */
export function sseData(payload: string): string {
  return `data: ${payload}\n\n`;
}

export const SSE_DONE = "data: [DONE]\n\n";
