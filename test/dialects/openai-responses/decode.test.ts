import { describe, expect, it } from "vitest";
import type { GenerationEvent } from "../../../lib/core/events.ts";
import {
  createResponseEventDecoder,
  fromResponse,
  streamFailure,
} from "../../../lib/dialects/openai-responses/decode.ts";
import { createResponseStreamEncoder } from "../../../lib/dialects/openai-responses/encode.ts";
import { framesOf, headFor } from "./frames.ts";

function decodeAll(events: unknown[]): GenerationEvent[] {
  const decoder = createResponseEventDecoder();
  return events.flatMap((event) => decoder.push(event));
}

describe("createResponseEventDecoder", () => {
  it("reads an OpenAI Responses stream: reasoning summary, text, a function call, usage and the finish", () => {
    // Prepare: the events OpenAI sends (abridged to what the decoder reads), written by hand.
    const upstream = [
      { type: "response.created", sequence_number: 0, response: { status: "in_progress" } },
      {
        type: "response.output_item.added",
        output_index: 0,
        item: { id: "rs_1", type: "reasoning", summary: [] },
      },
      { type: "response.reasoning_summary_text.delta", item_id: "rs_1", output_index: 0, delta: "Plan." },
      {
        type: "response.output_item.done",
        output_index: 0,
        item: { id: "rs_1", type: "reasoning", summary: [], encrypted_content: "gAAAAx" },
      },
      { type: "response.output_text.delta", item_id: "msg_1", output_index: 1, delta: "Hi" },
      {
        type: "response.output_item.added",
        output_index: 2,
        item: { id: "fc_1", type: "function_call", call_id: "call_1", name: "f", arguments: "" },
      },
      { type: "response.function_call_arguments.delta", item_id: "fc_1", output_index: 2, delta: '{"a":1}' },
      {
        type: "response.function_call_arguments.done",
        item_id: "fc_1",
        output_index: 2,
        arguments: '{"a":1}',
      },
      { type: "response.output_item.done", output_index: 2, item: { id: "fc_1", type: "function_call" } },
      {
        type: "response.completed",
        response: {
          status: "completed",
          usage: {
            input_tokens: 10,
            input_tokens_details: { cached_tokens: 4 },
            output_tokens: 6,
            output_tokens_details: { reasoning_tokens: 2 },
            total_tokens: 16,
          },
        },
      },
    ];
    // Act
    const events = decodeAll(upstream);
    // Assess
    expect(events).toEqual([
      { type: "reasoning", choice: 0, text: "Plan." },
      { type: "reasoning-signature", choice: 0, family: "openai", signature: "gAAAAx" },
      { type: "text", choice: 0, text: "Hi" },
      { type: "tool-call-start", choice: 0, index: 0, id: "call_1", name: "f" },
      { type: "tool-call-delta", choice: 0, index: 0, input: '{"a":1}' },
      { type: "tool-call-end", choice: 0, index: 0 },
      {
        type: "usage",
        usage: {
          inputTokens: 10,
          outputTokens: 6,
          cacheReadTokens: 4,
          cacheWriteTokens: 0,
          reasoningTokens: 2,
        },
      },
      { type: "finish", choice: 0, reason: "tool-calls", raw: "completed" },
    ]);
  });

  it("reads back what the encoder writes: the same canonical answer", () => {
    // Prepare
    const answer: GenerationEvent[] = [
      { type: "reasoning", choice: 0, text: "Think." },
      { type: "reasoning-signature", choice: 0, signature: "sig", family: "anthropic" },
      { type: "text", choice: 0, text: "Patch:" },
      { type: "tool-call-start", choice: 0, index: 0, id: "c1", name: "apply_patch", custom: true },
      { type: "tool-call-delta", choice: 0, index: 0, input: "*** Begin Patch" },
      { type: "tool-call-end", choice: 0, index: 0 },
      { type: "finish", choice: 0, reason: "length" },
    ];
    const encoder = createResponseStreamEncoder(headFor());
    const sse = answer.map((event) => encoder.encode(event)).join("") + encoder.end();
    // Act
    const events = decodeAll(framesOf(sse));
    // Assess
    expect(events).toEqual([
      ...answer.slice(0, -1),
      { type: "finish", choice: 0, reason: "length", raw: "max_output_tokens" },
    ]);
  });

  it("says the error of a failed stream, for the provider to throw", () => {
    // Act / Assess
    expect(
      streamFailure({
        type: "response.failed",
        response: { error: { code: "server_error", message: "boom" } },
      }),
    ).toEqual({ code: "server_error", message: "boom" });
    expect(streamFailure({ type: "error", code: null, message: "bad" })).toEqual({
      code: null,
      message: "bad",
    });
    expect(streamFailure({ type: "response.output_text.delta" })).toBeUndefined();
  });
});

describe("fromResponse", () => {
  it("reads a whole response object: items as parts, the finish and usage", () => {
    // Act
    const result = fromResponse({
      id: "resp_1",
      model: "gpt-5",
      status: "incomplete",
      incomplete_details: { reason: "max_output_tokens" },
      output: [
        { type: "reasoning", id: "rs", summary: [{ type: "summary_text", text: "S" }] },
        {
          type: "message",
          content: [
            { type: "output_text", text: "Hel" },
            { type: "refusal", refusal: "No" },
          ],
        },
        { type: "custom_tool_call", call_id: "c", name: "raw", input: "x" },
      ],
      usage: { input_tokens: 3, output_tokens: 2 },
    });
    // Assess
    expect(result).toEqual({
      id: "resp_1",
      model: "gpt-5",
      choices: [
        {
          content: [
            { type: "reasoning", text: "S", family: "openai" },
            { type: "text", text: "Hel" },
            { type: "refusal", text: "No" },
            { type: "tool-call", id: "c", name: "raw", input: "x", custom: true },
          ],
          finish: "length",
          rawFinish: "max_output_tokens",
        },
      ],
      usage: { inputTokens: 3, outputTokens: 2, cacheReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 },
    });
  });
});
