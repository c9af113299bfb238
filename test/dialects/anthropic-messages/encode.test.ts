import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import Anthropic from "@anthropic-ai/sdk";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { GenerationEvent } from "../../../lib/core/events.ts";
import { createEventDecoder } from "../../../lib/dialects/anthropic-messages/decode.ts";
import { createMessageStreamEncoder, toMessage } from "../../../lib/dialects/anthropic-messages/encode.ts";
import { upstreamReported } from "../../../lib/errors.ts";

/** An upstream's 529, as the engine hands it to the encoder. */
const overloaded = (message: string) =>
  upstreamReported("anthropic", message, { status: 529, action: "failover" });

const head = { id: "msg_gw1", model: "route-a", inputTokens: 321 };

interface Frame {
  event: string;
  data: Record<string, unknown>;
}

/** SSE text as frames, by string splitting; every frame must have exactly an event and a data line. */
function frames(text: string): Frame[] {
  if (text === "") return [];
  expect(text.endsWith("\n\n")).toBe(true);
  return text
    .slice(0, -2)
    .split("\n\n")
    .map((block) => {
      const [event, data, ...rest] = block.split("\n");
      expect(rest).toEqual([]);
      expect(event?.startsWith("event: ")).toBe(true);
      expect(data?.startsWith("data: ")).toBe(true);
      const parsed = JSON.parse(data?.slice(6) ?? "") as Record<string, unknown>;
      expect(parsed.type).toBe(event?.slice(7));
      return { event: event?.slice(7) ?? "", data: parsed };
    });
}

function encodeAll(events: GenerationEvent[], close: "end" | "fail" = "end"): Frame[] {
  const encoder = createMessageStreamEncoder(head);
  let text = "";
  for (const event of events) text += encoder.push(event);
  text += close === "end" ? encoder.end() : encoder.fail(overloaded("boom"));
  return frames(text);
}

const start = {
  event: "message_start",
  data: {
    type: "message_start",
    message: {
      id: "msg_gw1",
      type: "message",
      role: "assistant",
      model: "route-a",
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: {
        input_tokens: 321,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        output_tokens: 1,
      },
    },
  },
};
const blockStart = (index: number, content_block: object) => ({
  event: "content_block_start",
  data: { type: "content_block_start", index, content_block },
});
const blockDelta = (index: number, delta: object) => ({
  event: "content_block_delta",
  data: { type: "content_block_delta", index, delta },
});
const blockStop = (index: number) => ({
  event: "content_block_stop",
  data: { type: "content_block_stop", index },
});

describe("createMessageStreamEncoder", () => {
  it("writes reasoning with its signature, text, a tool call, the stop reason and usage as Messages events", () => {
    // Act
    const out = encodeAll([
      { type: "reasoning", choice: 0, text: "Think." },
      { type: "reasoning-signature", choice: 0, signature: "sig", family: "anthropic" },
      { type: "text", choice: 0, text: "Hi" },
      { type: "tool-call-start", choice: 0, index: 0, id: "toolu_1", name: "get_weather" },
      { type: "tool-call-delta", choice: 0, index: 0, input: '{"city":' },
      { type: "tool-call-delta", choice: 0, index: 0, input: '"Paris"}' },
      { type: "tool-call-end", choice: 0, index: 0 },
      { type: "finish", choice: 0, reason: "tool-calls", raw: "tool_calls" },
      {
        type: "usage",
        usage: {
          inputTokens: 120,
          outputTokens: 30,
          cacheReadTokens: 100,
          cacheWriteTokens: 15,
          reasoningTokens: 4,
        },
      },
    ]);
    // Assess: written out by hand.
    expect(out).toEqual([
      start,
      blockStart(0, { type: "thinking", thinking: "" }),
      blockDelta(0, { type: "thinking_delta", thinking: "Think." }),
      blockDelta(0, { type: "signature_delta", signature: "sig" }),
      blockStop(0),
      blockStart(1, { type: "text", text: "" }),
      blockDelta(1, { type: "text_delta", text: "Hi" }),
      blockStop(1),
      blockStart(2, { type: "tool_use", id: "toolu_1", name: "get_weather", input: {} }),
      blockDelta(2, { type: "input_json_delta", partial_json: '{"city":' }),
      blockDelta(2, { type: "input_json_delta", partial_json: '"Paris"}' }),
      blockStop(2),
      {
        event: "message_delta",
        data: {
          type: "message_delta",
          delta: { stop_reason: "tool_use", stop_sequence: null },
          usage: {
            input_tokens: 5,
            cache_creation_input_tokens: 15,
            cache_read_input_tokens: 100,
            output_tokens: 30,
          },
        },
      },
      { event: "message_stop", data: { type: "message_stop" } },
    ]);
  });

  it("writes interleaved tool calls one block at a time, the later one whole once the first ends", () => {
    const out = encodeAll([
      { type: "tool-call-start", choice: 0, index: 0, id: "c0", name: "a" },
      { type: "tool-call-start", choice: 0, index: 1, id: "c1", name: "b" },
      { type: "tool-call-delta", choice: 0, index: 1, input: '{"y":' },
      { type: "tool-call-delta", choice: 0, index: 0, input: '{"x":1}' },
      { type: "tool-call-delta", choice: 0, index: 1, input: "2}" },
      { type: "tool-call-end", choice: 0, index: 0 },
      { type: "tool-call-end", choice: 0, index: 1 },
      { type: "finish", choice: 0, reason: "tool-calls" },
    ]);
    expect(out.slice(1, -2)).toEqual([
      blockStart(0, { type: "tool_use", id: "c0", name: "a", input: {} }),
      blockDelta(0, { type: "input_json_delta", partial_json: '{"x":1}' }),
      blockStop(0),
      blockStart(1, { type: "tool_use", id: "c1", name: "b", input: {} }),
      blockDelta(1, { type: "input_json_delta", partial_json: '{"y":2}' }),
      blockStop(1),
    ]);
  });

  it("estimates usage when none came, never says a zero prompt, writes a redacted block and drops a foreign signature", () => {
    const encoder = createMessageStreamEncoder({ ...head, inputTokens: 0 });
    const out = frames(
      [
        encoder.ping(),
        encoder.push({ type: "reasoning", choice: 0, text: "abcd" }),
        encoder.push({ type: "reasoning-signature", choice: 0, signature: "enc", family: "openai" }),
        encoder.push({ type: "reasoning-signature", choice: 0, redacted: "opaque", family: "anthropic" }),
        encoder.push({ type: "refusal", choice: 0, text: "No: 12345678" }),
        encoder.push({ type: "text", choice: 1, text: "another choice" }),
        encoder.push({ type: "finish", choice: 0, reason: "content-filter" }),
        encoder.push({ type: "text", choice: 0, text: "after the finish" }),
        encoder.end(),
        encoder.end(),
        encoder.ping(),
      ].join(""),
    );
    expect(out).toEqual([
      {
        ...start,
        data: {
          ...start.data,
          message: {
            ...start.data.message,
            usage: {
              input_tokens: 1,
              cache_creation_input_tokens: 0,
              cache_read_input_tokens: 0,
              output_tokens: 1,
            },
          },
        },
      },
      { event: "ping", data: { type: "ping" } },
      blockStart(0, { type: "thinking", thinking: "" }),
      blockDelta(0, { type: "thinking_delta", thinking: "abcd" }),
      blockStop(0),
      blockStart(1, { type: "redacted_thinking", data: "opaque" }),
      blockStop(1),
      blockStart(2, { type: "text", text: "" }),
      blockDelta(2, { type: "text_delta", text: "No: 12345678" }),
      blockStop(2),
      {
        event: "message_delta",
        data: {
          type: "message_delta",
          delta: { stop_reason: "refusal", stop_sequence: null },
          // 16 characters written: 4 tokens by the estimate.
          usage: {
            input_tokens: 1,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
            output_tokens: 4,
          },
        },
      },
      { event: "message_stop", data: { type: "message_stop" } },
    ]);
    expect(encoder.closed).toBe(true);
  });

  it("fails with an error event, nothing closed and never message_stop; nothing after it", () => {
    const encoder = createMessageStreamEncoder(head);
    const text =
      encoder.push({ type: "text", choice: 0, text: "Hel" }) +
      encoder.fail(overloaded("anthropic: overloaded")) +
      encoder.push({ type: "text", choice: 0, text: "lo" }) +
      encoder.end() +
      encoder.ping();
    expect(frames(text)).toEqual([
      start,
      blockStart(0, { type: "text", text: "" }),
      blockDelta(0, { type: "text_delta", text: "Hel" }),
      {
        event: "error",
        data: { type: "error", error: { type: "overloaded_error", message: "anthropic: overloaded" } },
      },
    ]);
  });

  it("ends a stream that never finished as a failure, not as a whole answer", () => {
    const out = encodeAll([{ type: "text", choice: 0, text: "cut" }]);
    expect(out.map((frame) => frame.event)).toEqual([
      "message_start",
      "content_block_start",
      "content_block_delta",
      "error",
    ]);
    expect(out[3]?.data).toEqual({
      type: "error",
      error: { type: "api_error", message: "The upstream's stream ended before the answer was complete." },
    });
  });

  it("keeps the grammar under any sequence of canonical events", () => {
    const index = fc.integer({ min: 0, max: 3 });
    const choice = fc.constantFrom(0, 0, 0, 1);
    const event: fc.Arbitrary<GenerationEvent> = fc.oneof(
      fc.record({ type: fc.constant("text" as const), choice, text: fc.string({ maxLength: 3 }) }),
      fc.record({ type: fc.constant("reasoning" as const), choice, text: fc.string({ maxLength: 3 }) }),
      fc.record({ type: fc.constant("refusal" as const), choice, text: fc.string({ maxLength: 3 }) }),
      fc.record(
        {
          type: fc.constant("reasoning-signature" as const),
          choice,
          signature: fc.string({ minLength: 1, maxLength: 3 }),
          redacted: fc.string({ maxLength: 3 }),
          family: fc.constantFrom("anthropic", "openai"),
        },
        { requiredKeys: ["type", "choice"] },
      ),
      fc.record({
        type: fc.constant("tool-call-start" as const),
        choice,
        index,
        id: fc.constantFrom("a", "b"),
        name: fc.constantFrom("f", "g"),
      }),
      fc.record({
        type: fc.constant("tool-call-delta" as const),
        choice,
        index,
        input: fc.string({ maxLength: 3 }),
      }),
      fc.record({ type: fc.constant("tool-call-end" as const), choice, index }),
      fc.record({
        type: fc.constant("usage" as const),
        usage: fc.record({
          inputTokens: fc.nat(50),
          outputTokens: fc.nat(50),
          cacheReadTokens: fc.nat(5),
          cacheWriteTokens: fc.nat(5),
          reasoningTokens: fc.nat(5),
        }),
      }),
      fc.record({
        type: fc.constant("finish" as const),
        choice,
        reason: fc.constantFrom(
          "stop",
          "length",
          "tool-calls",
          "content-filter",
          "stop-sequence",
          "other" as const,
        ),
      }),
    );
    const step = fc.oneof(
      { weight: 8, arbitrary: event.map((e) => ({ kind: "event" as const, event: e })) },
      { weight: 1, arbitrary: fc.constant({ kind: "ping" as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: "fail" as const }) },
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), fc.boolean(), (steps, endIt) => {
        const encoder = createMessageStreamEncoder(head);
        let text = "";
        let finished = false;
        let failed = false;
        for (const s of steps) {
          if (s.kind === "ping") text += encoder.ping();
          else if (s.kind === "fail") {
            text += encoder.fail(new Error("x"));
            failed = true;
          } else {
            if (s.event.type === "finish" && s.event.choice === 0) finished = true;
            text += encoder.push(s.event);
          }
        }
        if (endIt) text += encoder.end();
        checkGrammar(frames(text), { finished: finished && !failed, ended: endIt && !failed });
      }),
      { numRuns: 2000 },
    );
  });
});

/** Every rule of the Messages stream grammar a client relies on. */
function checkGrammar(out: Frame[], expected: { finished: boolean; ended: boolean }): void {
  let open: { index: number; type: string } | undefined;
  let next = 0;
  let over = false;
  let signed = new Set<number>();
  for (let i = 0; i < out.length; i++) {
    const frame = out[i] as Frame;
    expect(over, "nothing after message_stop or error").toBe(false);
    if (i === 0 && frame.event !== "error") {
      expect(frame.event).toBe("message_start");
      const usage = (frame.data.message as { usage: Record<string, number> }).usage;
      expect(
        (usage.input_tokens ?? 0) +
          (usage.cache_read_input_tokens ?? 0) +
          (usage.cache_creation_input_tokens ?? 0),
      ).toBeGreaterThan(0);
    } else expect(frame.event).not.toBe("message_start");
    const index = frame.data.index;
    switch (frame.event) {
      case "content_block_start": {
        expect(open, "a block stopped before the next starts").toBeUndefined();
        expect(index).toBe(next);
        next++;
        open = { index: index as number, type: (frame.data.content_block as { type: string }).type };
        break;
      }
      case "content_block_delta": {
        expect(open?.index, "no delta outside its block").toBe(index);
        const type = (frame.data.delta as { type: string }).type;
        const allowed: Record<string, string[]> = {
          text: ["text_delta"],
          thinking: ["thinking_delta", "signature_delta"],
          tool_use: ["input_json_delta"],
          redacted_thinking: [],
        };
        expect(allowed[open?.type ?? ""]).toContain(type);
        if (type === "signature_delta") signed.add(index as number);
        else expect(signed.has(index as number), "the signature is the block's last delta").toBe(false);
        break;
      }
      case "content_block_stop":
        expect(open?.index).toBe(index);
        open = undefined;
        break;
      case "message_delta":
        expect(open).toBeUndefined();
        expect(typeof (frame.data.delta as { stop_reason: unknown }).stop_reason).toBe("string");
        expect(out[i + 1]?.event).toBe("message_stop");
        break;
      case "message_stop":
        expect(expected.finished && expected.ended, "message_stop only for a whole answer").toBe(true);
        over = true;
        break;
      case "error":
        over = true;
        break;
    }
  }
  if (expected.finished && expected.ended) expect(out[out.length - 1]?.event).toBe("message_stop");
  signed = new Set();
}

describe("toMessage", () => {
  it("writes a whole answer as a Message: blocks, the stop reason and usage", () => {
    const message = toMessage(
      {
        model: "upstream-model",
        choices: [
          {
            content: [
              { type: "reasoning", text: "Hmm.", signature: "sig", family: "anthropic" },
              { type: "reasoning", text: "DeepSeek thought." },
              { type: "text", text: "Here." },
              { type: "tool-call", id: "call_1", name: "get_weather", input: '{"city":"Paris"}' },
              { type: "tool-call", id: "call_2", name: "broken", input: "{not json" },
            ],
            finish: "tool-calls",
            rawFinish: "tool_calls",
          },
        ],
        usage: {
          inputTokens: 20,
          outputTokens: 9,
          cacheReadTokens: 5,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
        },
      },
      head,
    );
    expect(message).toEqual({
      id: "msg_gw1",
      type: "message",
      role: "assistant",
      model: "route-a",
      content: [
        { type: "thinking", thinking: "Hmm.", signature: "sig" },
        { type: "thinking", thinking: "DeepSeek thought." },
        { type: "text", text: "Here." },
        { type: "tool_use", id: "call_1", name: "get_weather", input: { city: "Paris" } },
        { type: "tool_use", id: "call_2", name: "broken", input: {} },
      ],
      stop_reason: "tool_use",
      stop_sequence: null,
      usage: {
        input_tokens: 15,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 5,
        output_tokens: 9,
      },
    });
    expect(
      toMessage(
        { model: "m", choices: [{ content: [{ type: "text", text: "12345678" }], finish: "length" }] },
        head,
      ),
    ).toMatchObject({
      stop_reason: "max_tokens",
      usage: { input_tokens: 321, output_tokens: 2 },
    });
  });
});

describe("the official SDK reads the encoder's stream", () => {
  /** A local server answering every request with these SSE frames. */
  async function serve(text: string): Promise<{ url: string; close: () => Promise<void> }> {
    const server = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end(text);
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: async () => {
        server.close();
        server.closeAllConnections();
        await once(server, "close");
      },
    };
  }

  const request = { model: "route-a", max_tokens: 100, messages: [{ role: "user" as const, content: "hi" }] };

  it("assembles thinking with its signature, text and a tool call, and the round trip decodes the same", async () => {
    // Prepare
    const events: GenerationEvent[] = [
      { type: "reasoning", choice: 0, text: "Think" },
      { type: "reasoning", choice: 0, text: "ing." },
      { type: "reasoning-signature", choice: 0, signature: "sig-xyz", family: "anthropic" },
      { type: "text", choice: 0, text: "Hello" },
      { type: "text", choice: 0, text: " there." },
      { type: "tool-call-start", choice: 0, index: 0, id: "toolu_9", name: "get_weather" },
      { type: "tool-call-delta", choice: 0, index: 0, input: '{"city":' },
      { type: "tool-call-delta", choice: 0, index: 0, input: '"Paris"}' },
      { type: "tool-call-end", choice: 0, index: 0 },
      { type: "finish", choice: 0, reason: "tool-calls" },
      {
        type: "usage",
        usage: {
          inputTokens: 40,
          outputTokens: 12,
          cacheReadTokens: 30,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
        },
      },
    ];
    const encoder = createMessageStreamEncoder(head);
    let text = encoder.ping();
    for (const event of events) text += encoder.push(event);
    text += encoder.end();
    const server = await serve(text);
    try {
      const client = new Anthropic({ apiKey: "k", baseURL: server.url, maxRetries: 0 });
      // Act
      const message = await client.messages.stream(request).finalMessage();
      // Assess
      expect(message.id).toBe("msg_gw1");
      expect(message.stop_reason).toBe("tool_use");
      expect(message.content).toEqual([
        { type: "thinking", thinking: "Thinking.", signature: "sig-xyz" },
        { type: "text", text: "Hello there." },
        { type: "tool_use", id: "toolu_9", name: "get_weather", input: { city: "Paris" } },
      ]);
      expect(message.usage).toMatchObject({
        input_tokens: 10,
        cache_read_input_tokens: 30,
        cache_creation_input_tokens: 0,
        output_tokens: 12,
      });
      // And the gateway's own decoder reads back what it wrote.
      const decoder = createEventDecoder();
      const back = frames(text).flatMap((frame) => decoder.push(frame.data));
      expect(back.filter((event) => event.type !== "usage")).toEqual(
        events.slice(0, -1).map((event) => (event.type === "finish" ? { ...event, raw: "tool_use" } : event)),
      );
    } finally {
      await server.close();
    }
  });

  it("raises the error event of a failed stream, and never sees a whole message", async () => {
    const encoder = createMessageStreamEncoder(head);
    const text =
      encoder.push({ type: "text", choice: 0, text: "Hel" }) +
      encoder.fail(overloaded("upstream overloaded"));
    const server = await serve(text);
    try {
      const client = new Anthropic({ apiKey: "k", baseURL: server.url, maxRetries: 0 });
      const error = await client.messages
        .stream(request)
        .finalMessage()
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(Anthropic.APIError);
      expect(String((error as Error).message)).toContain("overloaded_error");
    } finally {
      await server.close();
    }
  });
});
