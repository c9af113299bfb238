import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { GenerationEvent, GenerationResult } from "../../../lib/core/events.ts";
import { openAIPassThrough } from "../../../lib/dialects/openai-chat/errors.ts";
import {
  createResponseStreamEncoder,
  type ResponseEncodingOptions,
  toResponse,
} from "../../../lib/dialects/openai-responses/encode.ts";
import { toResponseError, toResponsesErrorBody } from "../../../lib/dialects/openai-responses/errors.ts";
import { openReasoning } from "../../../lib/dialects/openai-responses/reasoning.ts";
import { streamCut, upstreamReported } from "../../../lib/errors.ts";
import { type Frame, framesOf, headFor } from "./frames.ts";

const usage = {
  inputTokens: 120,
  outputTokens: 30,
  cacheReadTokens: 100,
  cacheWriteTokens: 15,
  reasoningTokens: 4,
};

function encodeAll(events: GenerationEvent[], options: ResponseEncodingOptions = {}, end = true): Frame[] {
  const encoder = createResponseStreamEncoder(headFor(), options);
  let sse = "";
  for (const event of events) sse += encoder.encode(event);
  if (end) sse += encoder.end();
  return framesOf(sse);
}

/** The response object as written by hand for the head of {@link headFor}. */
function responseOf(status: string, output: unknown[], end: Record<string, unknown> = {}) {
  return {
    id: "resp_gw1",
    object: "response",
    created_at: 1_760_000_000,
    status,
    background: false,
    error: null,
    incomplete_details: null,
    instructions: null,
    max_output_tokens: null,
    model: "route-a",
    output,
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: true,
    temperature: 1,
    text: { format: { type: "text" } },
    tool_choice: "auto",
    tools: [],
    top_p: 1,
    truncation: "disabled",
    usage: null,
    metadata: {},
    ...end,
  };
}

const wireUsage = {
  input_tokens: 120,
  input_tokens_details: { cached_tokens: 100 },
  output_tokens: 30,
  output_tokens_details: { reasoning_tokens: 4 },
  total_tokens: 150,
};

describe("createResponseStreamEncoder", () => {
  it("writes a text answer as OpenAI's event grammar, every event numbered", () => {
    // Act
    const frames = encodeAll([
      { type: "text", choice: 0, text: "Hi" },
      { type: "text", choice: 0, text: " there" },
      { type: "finish", choice: 0, reason: "stop", raw: "stop" },
      { type: "usage", usage },
    ]);
    // Assess: written out by hand.
    const at = { item_id: "msg_gw1_0", output_index: 0, content_index: 0 };
    const done = {
      id: "msg_gw1_0",
      type: "message",
      status: "completed",
      content: [{ type: "output_text", annotations: [], logprobs: [], text: "Hi there" }],
      role: "assistant",
    };
    expect(frames).toEqual([
      { type: "response.created", sequence_number: 0, response: responseOf("in_progress", []) },
      { type: "response.in_progress", sequence_number: 1, response: responseOf("in_progress", []) },
      {
        type: "response.output_item.added",
        sequence_number: 2,
        output_index: 0,
        item: { id: "msg_gw1_0", type: "message", status: "in_progress", content: [], role: "assistant" },
      },
      {
        type: "response.content_part.added",
        sequence_number: 3,
        ...at,
        part: { type: "output_text", annotations: [], logprobs: [], text: "" },
      },
      { type: "response.output_text.delta", sequence_number: 4, ...at, delta: "Hi", logprobs: [] },
      { type: "response.output_text.delta", sequence_number: 5, ...at, delta: " there", logprobs: [] },
      { type: "response.output_text.done", sequence_number: 6, ...at, text: "Hi there", logprobs: [] },
      {
        type: "response.content_part.done",
        sequence_number: 7,
        ...at,
        part: { type: "output_text", annotations: [], logprobs: [], text: "Hi there" },
      },
      { type: "response.output_item.done", sequence_number: 8, output_index: 0, item: done },
      {
        type: "response.completed",
        sequence_number: 9,
        response: responseOf("completed", [done], { usage: wireUsage }),
      },
    ]);
  });

  it("writes reasoning with its sealed signature, then a function call with streamed arguments", () => {
    // Act
    const frames = encodeAll([
      { type: "reasoning", choice: 0, text: "Think." },
      { type: "reasoning-signature", choice: 0, signature: "sig", family: "anthropic" },
      { type: "tool-call-start", choice: 0, index: 0, id: "toolu_1", name: "get_weather" },
      { type: "tool-call-delta", choice: 0, index: 0, input: '{"city":' },
      { type: "tool-call-delta", choice: 0, index: 0, input: '"Paris"}' },
      { type: "tool-call-end", choice: 0, index: 0 },
      { type: "finish", choice: 0, reason: "tool-calls", raw: "tool_use" },
    ]);
    // Assess
    expect(frames.map((frame) => frame.type)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.reasoning_text.delta",
      "response.reasoning_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.completed",
    ]);
    const reasoning = frames[7]?.item as Record<string, unknown>;
    expect(reasoning).toMatchObject({
      id: "rs_gw1_0",
      type: "reasoning",
      summary: [],
      content: [{ type: "reasoning_text", text: "Think." }],
    });
    expect(openReasoning(String(reasoning.encrypted_content))).toEqual({
      family: "anthropic",
      signature: "sig",
    });
    expect(frames[11]).toEqual({
      type: "response.function_call_arguments.done",
      sequence_number: 11,
      item_id: "fc_gw1_1",
      output_index: 1,
      name: "get_weather",
      arguments: '{"city":"Paris"}',
    });
    expect(frames[12]?.item).toEqual({
      id: "fc_gw1_1",
      type: "function_call",
      status: "completed",
      arguments: '{"city":"Paris"}',
      call_id: "toolu_1",
      name: "get_weather",
    });
  });

  it("writes reasoning as a summary when the caller asked for one", () => {
    // Act
    const frames = encodeAll(
      [
        { type: "reasoning", choice: 0, text: "Plan" },
        { type: "text", choice: 0, text: "ok" },
        { type: "finish", choice: 0, reason: "stop" },
      ],
      { reasoningSummary: true },
    );
    // Assess
    expect(frames.slice(3, 7).map((frame) => frame.type)).toEqual([
      "response.reasoning_summary_part.added",
      "response.reasoning_summary_text.delta",
      "response.reasoning_summary_text.done",
      "response.reasoning_summary_part.done",
    ]);
    expect(frames[7]?.item).toEqual({
      id: "rs_gw1_0",
      type: "reasoning",
      summary: [{ type: "summary_text", text: "Plan" }],
    });
  });

  it("turns a function call to a custom tool back into a custom tool call", () => {
    // Act: a chat target called apply_patch as a function of one string parameter.
    const frames = encodeAll(
      [
        { type: "tool-call-start", choice: 0, index: 0, id: "call_9", name: "apply_patch" },
        { type: "tool-call-delta", choice: 0, index: 0, input: '{"input":"*** Begin' },
        { type: "tool-call-delta", choice: 0, index: 0, input: ' Patch\\n"}' },
        { type: "tool-call-end", choice: 0, index: 0 },
        { type: "finish", choice: 0, reason: "tool-calls" },
      ],
      { customTools: ["apply_patch"] },
    );
    // Assess
    const at = { item_id: "ctc_gw1_0", output_index: 0 };
    expect(frames.slice(2, 6)).toEqual([
      {
        type: "response.output_item.added",
        sequence_number: 2,
        output_index: 0,
        item: {
          id: "ctc_gw1_0",
          type: "custom_tool_call",
          call_id: "call_9",
          name: "apply_patch",
          input: "",
        },
      },
      {
        type: "response.custom_tool_call_input.delta",
        sequence_number: 3,
        ...at,
        delta: "*** Begin Patch\n",
      },
      { type: "response.custom_tool_call_input.done", sequence_number: 4, ...at, input: "*** Begin Patch\n" },
      {
        type: "response.output_item.done",
        sequence_number: 5,
        output_index: 0,
        item: {
          id: "ctc_gw1_0",
          type: "custom_tool_call",
          call_id: "call_9",
          name: "apply_patch",
          input: "*** Begin Patch\n",
        },
      },
    ]);
  });

  it("streams a native custom call's input as it comes", () => {
    // Act
    const frames = encodeAll([
      { type: "tool-call-start", choice: 0, index: 0, id: "call_1", name: "raw", custom: true },
      { type: "tool-call-delta", choice: 0, index: 0, input: "a" },
      { type: "tool-call-delta", choice: 0, index: 0, input: "b" },
      { type: "finish", choice: 0, reason: "tool-calls" },
    ]);
    // Assess: the finish ends the call still open.
    expect(frames.slice(3).map((frame) => [frame.type, frame.delta ?? frame.input])).toEqual([
      ["response.custom_tool_call_input.delta", "a"],
      ["response.custom_tool_call_input.delta", "b"],
      ["response.custom_tool_call_input.done", "ab"],
      ["response.output_item.done", undefined],
      ["response.completed", undefined],
    ]);
  });

  it("ends a length stop with response.incomplete, its items incomplete", () => {
    // Act
    const frames = encodeAll([
      { type: "text", choice: 0, text: "Once upon" },
      { type: "refusal", choice: 0, text: "No." },
      { type: "finish", choice: 0, reason: "length", raw: "max_tokens" },
    ]);
    // Assess
    const last = frames[frames.length - 1];
    expect(last?.type).toBe("response.incomplete");
    expect(last?.response).toMatchObject({
      status: "incomplete",
      incomplete_details: { reason: "max_output_tokens" },
      output: [
        {
          status: "incomplete",
          content: [
            { type: "output_text", text: "Once upon" },
            { type: "refusal", refusal: "No." },
          ],
        },
      ],
    });
    expect(frames.filter((frame) => frame.type === "response.completed")).toEqual([]);
  });

  it("ends a failure with response.failed and the error, never response.completed", () => {
    // Prepare
    const encoder = createResponseStreamEncoder(headFor());
    const error = streamCut("openai", "the stream was cut");
    // Act
    const sse =
      encoder.encode({ type: "text", choice: 0, text: "Hal" }) + encoder.fail(error) + encoder.end();
    // Assess
    const frames = framesOf(sse);
    expect(frames.slice(-3).map((frame) => frame.type)).toEqual([
      "response.content_part.done",
      "response.output_item.done",
      "response.failed",
    ]);
    expect(frames[frames.length - 1]?.response).toMatchObject({
      status: "failed",
      error: { code: "upstream_stream_cut", message: "openai: the stream was cut" },
      output: [{ status: "incomplete", content: [{ type: "output_text", text: "Hal" }] }],
    });
    expect(encoder.encode({ type: "text", choice: 0, text: "more" })).toBe("");
  });

  it("fails an answer whose events end without a finish", () => {
    // Act
    const frames = encodeAll([{ type: "text", choice: 0, text: "Hal" }]);
    // Assess
    expect(frames[frames.length - 1]).toMatchObject({
      type: "response.failed",
      response: { error: { code: "server_error" } },
    });
  });
});

describe("toResponse", () => {
  it("writes the same response object as the stream's terminal event for the same answer", () => {
    // Prepare
    const events: GenerationEvent[] = [
      { type: "reasoning", choice: 0, text: "Hmm." },
      { type: "reasoning-signature", choice: 0, signature: "gAAAA", family: "openai" },
      { type: "text", choice: 0, text: "Sure." },
      { type: "tool-call-start", choice: 0, index: 0, id: "c1", name: "f" },
      { type: "tool-call-delta", choice: 0, index: 0, input: "{}" },
      { type: "tool-call-start", choice: 0, index: 1, id: "c2", name: "apply_patch" },
      { type: "tool-call-delta", choice: 0, index: 1, input: '{"input":"p"}' },
      { type: "finish", choice: 0, reason: "tool-calls" },
      { type: "usage", usage },
    ];
    const result: GenerationResult = {
      model: "upstream-model",
      choices: [
        {
          finish: "tool-calls",
          content: [
            { type: "reasoning", text: "Hmm.", signature: "gAAAA", family: "openai" },
            { type: "text", text: "Sure." },
            { type: "tool-call", id: "c1", name: "f", input: "{}" },
            { type: "tool-call", id: "c2", name: "apply_patch", input: '{"input":"p"}' },
          ],
        },
      ],
      usage,
    };
    // Act
    const frames = encodeAll(events, { customTools: ["apply_patch"] });
    const whole = toResponse(result, headFor(), { customTools: ["apply_patch"] });
    // Assess
    expect(whole).toEqual(frames[frames.length - 1]?.response);
    expect(whole.output).toEqual([
      {
        id: "rs_gw1_0",
        type: "reasoning",
        summary: [],
        content: [{ type: "reasoning_text", text: "Hmm." }],
        encrypted_content: "gAAAA",
      },
      {
        id: "msg_gw1_1",
        type: "message",
        status: "completed",
        content: [{ type: "output_text", annotations: [], logprobs: [], text: "Sure." }],
        role: "assistant",
      },
      {
        id: "fc_gw1_2",
        type: "function_call",
        status: "completed",
        arguments: "{}",
        call_id: "c1",
        name: "f",
      },
      { id: "ctc_gw1_3", type: "custom_tool_call", call_id: "c2", name: "apply_patch", input: "p" },
    ]);
    expect(whole).not.toHaveProperty("output_text");
  });
});

describe("errors", () => {
  it("writes OpenAI's error body and a failed response's error object", () => {
    // Prepare
    // An upstream's 429 passed back without a code: the failed response still says rate_limit_exceeded.
    const limited = upstreamReported("p", "Too many requests", {
      status: 429,
      action: "return",
      passThrough: openAIPassThrough({
        error: { message: "Too many requests", type: "rate_limit_error", param: null, code: null },
      }),
    });
    // Act / Assess
    expect(toResponsesErrorBody(limited)).toEqual({
      error: { message: "Too many requests", type: "rate_limit_error", param: null, code: null },
    });
    expect(toResponseError(limited)).toEqual({ code: "rate_limit_exceeded", message: "Too many requests" });
    expect(toResponseError(new TypeError("secret internals"))).toEqual({
      code: "server_error",
      message: "Internal server error",
    });
  });
});

// ---- The grammar, over random event sequences ---------------------------------------------------

const eventArbitrary: fc.Arbitrary<GenerationEvent> = fc.oneof(
  fc.record({ type: fc.constant("text" as const), choice: fc.constantFrom(0, 0, 1), text: fc.string() }),
  fc.record({ type: fc.constant("refusal" as const), choice: fc.constant(0), text: fc.string() }),
  fc.record({ type: fc.constant("reasoning" as const), choice: fc.constant(0), text: fc.string() }),
  fc.record({
    type: fc.constant("reasoning-signature" as const),
    choice: fc.constant(0),
    signature: fc.string(),
    family: fc.constantFrom("openai", "anthropic"),
  }),
  fc.record({
    type: fc.constant("tool-call-start" as const),
    choice: fc.constant(0),
    index: fc.nat(2),
    id: fc.constantFrom("c1", "c2"),
    name: fc.constantFrom("f", "apply_patch", "raw"),
    custom: fc.boolean(),
  }),
  fc.record({
    type: fc.constant("tool-call-delta" as const),
    choice: fc.constant(0),
    index: fc.nat(2),
    input: fc.string(),
  }),
  fc.record({ type: fc.constant("tool-call-end" as const), choice: fc.constant(0), index: fc.nat(2) }),
  fc.record({ type: fc.constant("usage" as const), usage: fc.constant(usage) }),
  fc.record({
    type: fc.constant("finish" as const),
    choice: fc.constant(0),
    reason: fc.constantFrom(
      "stop" as const,
      "length" as const,
      "tool-calls" as const,
      "content-filter" as const,
    ),
  }),
);

const TERMINAL = new Set(["response.completed", "response.incomplete", "response.failed"]);

/** Every rule of the stream grammar the SDK and Codex rely on; throws naming the first one broken. */
function checkGrammar(frames: Frame[], failed: boolean): void {
  const openItems = new Map<number, string>();
  const openParts = new Set<string>();
  const everAdded = new Set<number>();
  let terminal = 0;
  frames.forEach((frame, n) => {
    if (frame.sequence_number !== n) throw new Error(`sequence ${frame.sequence_number} at ${n}`);
    if (terminal > 0) throw new Error(`${frame.type} after the terminal event`);
    if (n === 0 && frame.type !== "response.created") throw new Error("first is not response.created");
    if (n === 1 && frame.type !== "response.in_progress")
      throw new Error("second is not response.in_progress");
    const index = frame.output_index as number;
    const part = `${index}:${String(frame.content_index ?? frame.summary_index)}`;
    switch (frame.type) {
      case "response.output_item.added":
        if (everAdded.has(index)) throw new Error(`output ${index} added twice`);
        everAdded.add(index);
        openItems.set(index, String((frame.item as { id: string }).id));
        return;
      case "response.output_item.done":
        if (!openItems.delete(index)) throw new Error(`output ${index} done but not open`);
        for (const key of openParts)
          if (key.startsWith(`${index}:`)) throw new Error(`part ${key} still open`);
        return;
      case "response.content_part.added":
      case "response.reasoning_summary_part.added":
        if (!openItems.has(index)) throw new Error(`part added outside an open item ${index}`);
        openParts.add(part);
        return;
      case "response.content_part.done":
      case "response.reasoning_summary_part.done":
        if (!openParts.delete(part)) throw new Error(`part ${part} done but not open`);
        return;
      case "response.output_text.delta":
      case "response.output_text.done":
      case "response.refusal.delta":
      case "response.refusal.done":
      case "response.reasoning_text.delta":
      case "response.reasoning_text.done":
      case "response.reasoning_summary_text.delta":
      case "response.reasoning_summary_text.done":
        if (!openParts.has(part)) throw new Error(`${frame.type} outside its part ${part}`);
        if (frame.item_id !== openItems.get(index)) throw new Error(`${frame.type} names another item`);
        return;
      case "response.function_call_arguments.delta":
      case "response.function_call_arguments.done":
      case "response.custom_tool_call_input.delta":
      case "response.custom_tool_call_input.done":
        if (frame.item_id !== openItems.get(index)) throw new Error(`${frame.type} outside its item`);
        return;
      default:
        if (TERMINAL.has(frame.type)) {
          terminal++;
          if (openItems.size > 0) throw new Error(`terminal with items open: ${[...openItems.keys()]}`);
        }
    }
  });
  if (terminal !== 1) throw new Error(`${terminal} terminal events`);
  const last = frames[frames.length - 1];
  if (failed && last?.type !== "response.failed") throw new Error(`${last?.type} after fail`);
}

describe("the stream grammar, for any canonical event sequence", () => {
  it("numbers events from 0, closes every item it opens, keeps deltas in their part, ends exactly once", () => {
    fc.assert(
      fc.property(
        fc.array(eventArbitrary, { maxLength: 40 }),
        fc.constantFrom("end", "fail", "fail-then-end"),
        fc.boolean(),
        (events, ending, summary) => {
          const encoder = createResponseStreamEncoder(headFor(), {
            customTools: ["apply_patch"],
            reasoningSummary: summary,
          });
          let sse = encoder.start();
          for (const event of events) sse += encoder.encode(event);
          if (ending === "end") sse += encoder.end();
          else sse += encoder.fail(new Error("boom")) + encoder.end();
          checkGrammar(framesOf(sse), ending !== "end");
        },
      ),
      { numRuns: 300 },
    );
  });

  it("the checker itself refuses a stream that ends twice", () => {
    // Prepare: a whole stream, with a second terminal event appended.
    const encoder = createResponseStreamEncoder(headFor());
    const frames = framesOf(encoder.encode({ type: "finish", choice: 0, reason: "stop" }) + encoder.end());
    const twice = [...frames, { ...(frames[frames.length - 1] as Frame), sequence_number: frames.length }];
    // Act / Assess
    expect(() => checkGrammar(frames, false)).not.toThrow();
    expect(() => checkGrammar(twice, false)).toThrow("after the terminal event");
  });
});
