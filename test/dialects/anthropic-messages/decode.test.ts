import { afterEach, describe, expect, it } from "vitest";
import type { GenerationEvent } from "../../../lib/core/events.ts";
import { createEventDecoder, fromMessage } from "../../../lib/dialects/anthropic-messages/decode.ts";
import { finishFromAnthropic, finishToAnthropic } from "../../../lib/dialects/anthropic-messages/finish.ts";
import { toAnthropicUsage, usageFromAnthropic } from "../../../lib/dialects/anthropic-messages/usage.ts";
import { UpstreamError } from "../../../lib/errors.ts";
import {
  FAKE_ANTHROPIC_KEY,
  FAKE_SIGNATURE,
  type FakeAnthropic,
  startFakeAnthropic,
} from "../../support/fake-anthropic.ts";

/**
 * A stream as the Messages API sends it (shape after the streaming guide's examples: thinking with
 * its signature, text, a tool call in JSON pieces, a citations delta, pings), as the SSE text.
 */
const RECORDED = [
  'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":10,"cache_read_input_tokens":1200,"output_tokens":1}}}',
  'event: ping\ndata: {"type":"ping"}',
  'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants"}}',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":" the weather."}}',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}}',
  'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}',
  'event: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Let me"}}',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"citations_delta","citation":{"type":"char_location"}}}',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":" check."}}',
  'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}',
  'event: ping\ndata: {"type":"ping"}',
  'event: content_block_start\ndata: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{}}}',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\\"location\\": \\"San Fra"}}',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"ncisco\\"}"}}',
  'event: content_block_stop\ndata: {"type":"content_block_stop","index":2}',
  'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89,"output_tokens_details":{"thinking_tokens":12}}}',
  'event: message_stop\ndata: {"type":"message_stop"}',
]
  .map((frame) => `${frame}\n\n`)
  .join("");

/** The `data` of each SSE event, parsed: string splitting only. */
function sseEvents(text: string): Array<Record<string, unknown>> {
  return text
    .split("\n\n")
    .filter((block) => block.trim() !== "")
    .map((block) => {
      const data = block.split("\n").find((line) => line.startsWith("data: "));
      return JSON.parse(data?.slice("data: ".length) ?? "{}") as Record<string, unknown>;
    });
}

function decodeAll(text: string, toolName?: (wire: string) => string): GenerationEvent[] {
  const decoder = createEventDecoder(toolName === undefined ? {} : { toolName });
  const events: GenerationEvent[] = [];
  for (const event of sseEvents(text)) for (const out of decoder.push(event)) events.push(out);
  return events;
}

describe("createEventDecoder", () => {
  it("reads a recorded-like stream as canonical events, in order", () => {
    expect(decodeAll(RECORDED)).toEqual([
      {
        type: "usage",
        usage: {
          inputTokens: 1235,
          outputTokens: 1,
          cacheReadTokens: 1200,
          cacheWriteTokens: 10,
          reasoningTokens: 0,
        },
      },
      { type: "reasoning", choice: 0, text: "The user wants" },
      { type: "reasoning", choice: 0, text: " the weather." },
      {
        type: "reasoning-signature",
        choice: 0,
        signature: "EqQBCgIYAhIM1gbcDa9GJwZA2b3h",
        family: "anthropic",
      },
      { type: "text", choice: 0, text: "Let me" },
      { type: "text", choice: 0, text: " check." },
      { type: "tool-call-start", choice: 0, index: 0, id: "toolu_01A", name: "get_weather" },
      { type: "tool-call-delta", choice: 0, index: 0, input: '{"location": "San Fra' },
      { type: "tool-call-delta", choice: 0, index: 0, input: 'ncisco"}' },
      { type: "tool-call-end", choice: 0, index: 0 },
      {
        type: "usage",
        usage: {
          inputTokens: 1235,
          outputTokens: 89,
          cacheReadTokens: 1200,
          cacheWriteTokens: 10,
          reasoningTokens: 12,
        },
      },
      { type: "finish", choice: 0, reason: "tool-calls", raw: "tool_use" },
    ]);
  });

  it("reads a redacted block, numbers calls in order of appearance and maps their names back", () => {
    const decoder = createEventDecoder({ toolName: (wire) => (wire === "a_b_1234abcd" ? "a.b" : wire) });
    const events = [
      { type: "content_block_start", index: 0, content_block: { type: "redacted_thinking", data: "opaque" } },
      { type: "content_block_stop", index: 0 },
      {
        type: "content_block_start",
        index: 1,
        content_block: { type: "server_tool_use", id: "s", name: "web_search" },
      },
      { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: '{"q":1}' } },
      { type: "content_block_stop", index: 1 },
      {
        type: "content_block_start",
        index: 2,
        content_block: { type: "tool_use", id: "t1", name: "a_b_1234abcd", input: {} },
      },
      {
        type: "content_block_start",
        index: 3,
        content_block: { type: "tool_use", id: "t2", name: "c", input: { x: 1 } },
      },
      { type: "content_block_delta", index: 2, delta: { type: "input_json_delta", partial_json: "{}" } },
      { type: "content_block_stop", index: 3 },
      { type: "content_block_stop", index: 2 },
      // A delta for a block never started is no event (and no crash).
      { type: "content_block_delta", index: 9, delta: { type: "text_delta", text: "lost" } },
      { type: "message_delta", delta: { stop_reason: "pause_turn" }, usage: { output_tokens: 3 } },
    ].flatMap((event) => decoder.push(event));
    expect(events).toEqual([
      { type: "reasoning-signature", choice: 0, redacted: "opaque", family: "anthropic" },
      { type: "tool-call-start", choice: 0, index: 0, id: "t1", name: "a.b" },
      { type: "tool-call-start", choice: 0, index: 1, id: "t2", name: "c" },
      { type: "tool-call-delta", choice: 0, index: 1, input: '{"x":1}' },
      { type: "tool-call-delta", choice: 0, index: 0, input: "{}" },
      { type: "tool-call-end", choice: 0, index: 1 },
      { type: "tool-call-end", choice: 0, index: 0 },
      {
        type: "usage",
        usage: {
          inputTokens: 0,
          outputTokens: 3,
          cacheReadTokens: 0,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
        },
      },
      { type: "finish", choice: 0, reason: "other", raw: "pause_turn" },
    ]);
  });

  it("throws an error event as the provider's upstream error, retried when overloaded", () => {
    const decoder = createEventDecoder({ providerId: "claude-api" });
    let thrown: unknown;
    try {
      decoder.push({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(UpstreamError);
    const error = thrown as UpstreamError;
    expect(error.providerId).toBe("claude-api");
    expect(error.action).toBe("retry");
    expect(error.message).toBe("claude-api sent an error event: Overloaded");
  });
});

describe("fromMessage", () => {
  it("reads a whole Message: blocks in order, the finish and usage", () => {
    const result = fromMessage({
      id: "msg_1",
      type: "message",
      role: "assistant",
      model: "claude-sonnet-4-5",
      content: [
        { type: "thinking", thinking: "Hmm.", signature: "sig" },
        { type: "redacted_thinking", data: "opaque" },
        { type: "text", text: "Here." },
        { type: "web_search_tool_result", tool_use_id: "s", content: [] },
        { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
      ],
      stop_reason: "tool_use",
      stop_sequence: null,
      usage: {
        input_tokens: 5,
        cache_read_input_tokens: 10,
        cache_creation_input_tokens: 0,
        output_tokens: 7,
      },
    });
    expect(result).toEqual({
      id: "msg_1",
      model: "claude-sonnet-4-5",
      choices: [
        {
          content: [
            { type: "reasoning", text: "Hmm.", signature: "sig", family: "anthropic" },
            { type: "reasoning", text: "", redacted: "opaque", family: "anthropic" },
            { type: "text", text: "Here." },
            { type: "tool-call", id: "toolu_1", name: "get_weather", input: '{"city":"Paris"}' },
          ],
          finish: "tool-calls",
          rawFinish: "tool_use",
        },
      ],
      usage: {
        inputTokens: 15,
        outputTokens: 7,
        cacheReadTokens: 10,
        cacheWriteTokens: 0,
        reasoningTokens: 0,
      },
    });
  });
});

describe("stop reasons and usage both ways", () => {
  it.each([
    ["end_turn", "stop"],
    ["max_tokens", "length"],
    ["tool_use", "tool-calls"],
    ["stop_sequence", "stop-sequence"],
    ["refusal", "content-filter"],
    ["pause_turn", "other"],
    ["model_context_window_exceeded", "other"],
    ["something_new", "other"],
  ] as const)("from Anthropic %s is %s", (raw, reason) => {
    expect(finishFromAnthropic(raw)).toBe(reason);
  });

  it.each([
    ["stop", undefined, "end_turn"],
    ["length", undefined, "max_tokens"],
    ["tool-calls", undefined, "tool_use"],
    ["stop-sequence", undefined, "stop_sequence"],
    ["content-filter", undefined, "refusal"],
    ["other", undefined, "end_turn"],
    ["other", "pause_turn", "pause_turn"],
    // An OpenAI name is not Anthropic's: the canonical reason decides.
    ["tool-calls", "tool_calls", "tool_use"],
    ["length", "length", "max_tokens"],
  ] as const)("to Anthropic %s (raw %s) is %s", (reason, raw, name) => {
    expect(finishToAnthropic(reason, raw)).toBe(name);
  });

  it("counts cache reads and writes into the canonical input, and takes them out again", () => {
    const usage = usageFromAnthropic({
      input_tokens: 3,
      cache_read_input_tokens: 1000,
      cache_creation_input_tokens: 200,
      output_tokens: 50,
      output_tokens_details: { thinking_tokens: 80 },
    });
    expect(usage).toEqual({
      inputTokens: 1203,
      outputTokens: 50,
      cacheReadTokens: 1000,
      cacheWriteTokens: 200,
      reasoningTokens: 50,
    });
    expect(toAnthropicUsage(usage)).toEqual({
      input_tokens: 3,
      cache_read_input_tokens: 1000,
      cache_creation_input_tokens: 200,
      output_tokens: 50,
    });
    expect(usageFromAnthropic({ input_tokens: null, output_tokens: "7" })).toEqual({
      inputTokens: 0,
      outputTokens: 0,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
    });
  });
});

describe("the fake Anthropic API, read by the decoder", () => {
  let fake: FakeAnthropic | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  const post = (url: string, body: object, over: Record<string, string | undefined> = {}) => {
    const headers: Record<string, string> = {};
    const all = {
      "content-type": "application/json",
      "x-api-key": FAKE_ANTHROPIC_KEY,
      "anthropic-version": "2023-06-01",
      ...over,
    };
    for (const [name, value] of Object.entries(all)) if (value !== undefined) headers[name] = value;
    return fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
  };

  it("streams thinking with its signature and text as real SSE, and records the request", async () => {
    fake = await startFakeAnthropic();
    fake.queue.push({ kind: "thinking", thinking: ["Hm", "m."], tokens: ["Hi", "!"] });
    const response = await post(
      `${fake.url}/v1/messages?beta=true`,
      {
        model: "claude-x",
        max_tokens: 10,
        stream: true,
        messages: [{ role: "user", content: "hi" }],
      },
      { "anthropic-beta": "interleaved-thinking-2025-05-14" },
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const events = decodeAll(await response.text()).filter((event) => event.type !== "usage");
    expect(events).toEqual([
      { type: "reasoning", choice: 0, text: "Hm" },
      { type: "reasoning", choice: 0, text: "m." },
      { type: "reasoning-signature", choice: 0, signature: FAKE_SIGNATURE, family: "anthropic" },
      { type: "text", choice: 0, text: "Hi" },
      { type: "text", choice: 0, text: "!" },
      { type: "finish", choice: 0, reason: "stop", raw: "end_turn" },
    ]);
    expect(fake.requests[0]?.path).toBe("/v1/messages?beta=true");
    expect(fake.requests[0]?.headers["anthropic-beta"]).toBe("interleaved-thinking-2025-05-14");
    expect(fake.requests[0]?.body.max_tokens).toBe(10);
  });

  it("scripts an overloaded error event mid-stream, which the decoder throws, and a cut with no message_stop", async () => {
    fake = await startFakeAnthropic();
    fake.queue.push({ kind: "errorEvent", afterTokens: 2 }, { kind: "cut", afterTokens: 1 });
    const body = {
      model: "claude-x",
      max_tokens: 10,
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    };
    const failed = await (await post(`${fake.url}/v1/messages`, body)).text();
    expect(
      failed.endsWith(
        'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n',
      ),
    ).toBe(true);
    expect(() => decodeAll(failed)).toThrow("anthropic sent an error event: Overloaded");

    const cut = await post(`${fake.url}/v1/messages`, body);
    const text = await cut.text().catch(() => "(body errored)");
    expect(text).not.toContain("message_stop");
    expect(text).not.toContain("message_delta");
  });

  it("answers a tool call whole, refuses a wrong key and a missing version, scripts 529 with retry-after, counts tokens", async () => {
    fake = await startFakeAnthropic();
    const body = { model: "claude-x", max_tokens: 10, messages: [{ role: "user", content: "hi" }] };
    fake.queue.push(
      { kind: "tool", inputPieces: ['{"a":', "1}"] },
      { kind: "status", status: 529, type: "overloaded_error", retryAfter: "3" },
    );
    const whole = fromMessage(
      (await (await post(`${fake.url}/v1/messages`, body)).json()) as Record<string, unknown>,
    );
    expect(whole.choices[0]?.content).toEqual([
      { type: "text", text: "Let me check." },
      { type: "tool-call", id: "toolu_fake1", name: "get_weather", input: '{"a":1}' },
    ]);
    const overloaded = await post(`${fake.url}/v1/messages`, body);
    expect(overloaded.status).toBe(529);
    expect(overloaded.headers.get("retry-after")).toBe("3");
    expect(await overloaded.json()).toEqual({
      type: "error",
      error: { type: "overloaded_error", message: "fake overloaded_error" },
    });
    expect((await post(`${fake.url}/v1/messages`, body, { "x-api-key": "wrong" })).status).toBe(401);
    const unversioned = await post(`${fake.url}/v1/messages`, body, { "anthropic-version": undefined });
    expect(unversioned.status).toBe(400);
    expect(await unversioned.json()).toEqual({
      type: "error",
      error: { type: "invalid_request_error", message: "anthropic-version: header is required" },
    });
    fake.countTokens = 42;
    expect(await (await post(`${fake.url}/v1/messages/count_tokens`, body)).json()).toEqual({
      input_tokens: 42,
    });
  });
});
