import { describe, expect, it } from "vitest";
import { parseSse, type SseEvent } from "../../lib/http/sse.ts";

async function parse(parts: string[]): Promise<SseEvent[]> {
  async function* body() {
    for (const part of parts) yield new TextEncoder().encode(part);
  }
  const out: SseEvent[] = [];
  for await (const event of parseSse(body())) out.push(event);
  return out;
}

describe("parseSse", () => {
  it("reads data events and keep-alives", async () => {
    const events = await parse([': keep-alive\n\ndata: {"a":1}\n\n\ndata: [DONE]\n\n']);
    expect(events).toEqual([
      { kind: "keepalive" },
      { kind: "keepalive" },
      { kind: "data", data: '{"a":1}', event: undefined },
      { kind: "keepalive" },
      { kind: "data", data: "[DONE]", event: undefined },
    ]);
  });

  it("joins events split anywhere across chunks, CRLF and split UTF-8 included", async () => {
    const bytes = new TextEncoder().encode('data: {"t":"héllo"}\r\n\r\ndata: x\r\n\r\n');
    const parts = Array.from(bytes, (b) => String.fromCharCode(b));
    async function* body() {
      for (const p of parts) yield Uint8Array.of(p.charCodeAt(0));
    }
    const events: SseEvent[] = [];
    for await (const event of parseSse(body())) events.push(event);
    expect(events).toEqual([
      { kind: "data", data: '{"t":"héllo"}', event: undefined },
      { kind: "data", data: "x", event: undefined },
    ]);
  });

  it("joins multi-line data and reads the event name", async () => {
    const events = await parse(["event: error\ndata: line1\ndata: line2\n\n"]);
    expect(events).toEqual([{ kind: "data", data: "line1\nline2", event: "error" }]);
  });

  it("keeps a last event that was not followed by a blank line", async () => {
    const events = await parse(["data: tail"]);
    expect(events).toEqual([{ kind: "data", data: "tail", event: undefined }]);
  });
});
