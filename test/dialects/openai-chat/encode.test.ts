import { describe, expect, it } from "vitest";
import type { GenerationEvent } from "../../../lib/core/events.ts";
import { createChunkDecoder } from "../../../lib/dialects/openai-chat/decode.ts";
import {
  createChunkEncoder,
  type EncodedChunk,
  toCompletion,
  toOpenAIUsage,
} from "../../../lib/dialects/openai-chat/encode.ts";
import { finishFromOpenAI, finishToOpenAI } from "../../../lib/dialects/openai-chat/finish.ts";
import type { ChatChunk } from "../../../lib/dialects/openai-chat/wire.ts";
import { assemble, fixtureChunks } from "./stream-fixtures.ts";

const head = { id: "chatcmpl-gw1", created: 1_760_000_000, model: "route-a" };

function encodeAll(events: GenerationEvent[]): EncodedChunk[] {
  const encoder = createChunkEncoder(head);
  const chunks: EncodedChunk[] = [];
  for (const event of events) {
    const chunk = encoder.encode(event);
    if (chunk !== undefined) chunks.push(chunk);
  }
  return chunks;
}

const frame = {
  id: "chatcmpl-gw1",
  object: "chat.completion.chunk",
  created: 1_760_000_000,
  model: "route-a",
};

describe("createChunkEncoder", () => {
  it("writes reasoning, text, a tool call, the finish and usage as OpenAI chunks", () => {
    // Act
    const chunks = encodeAll([
      { type: "reasoning", choice: 0, text: "Think." },
      { type: "reasoning-signature", choice: 0, signature: "sig", family: "anthropic" },
      { type: "text", choice: 0, text: "Hi" },
      { type: "tool-call-start", choice: 0, index: 0, id: "toolu_1", name: "get_weather" },
      { type: "tool-call-delta", choice: 0, index: 0, input: '{"city":' },
      { type: "tool-call-delta", choice: 0, index: 0, input: '"Paris"}' },
      { type: "tool-call-end", choice: 0, index: 0 },
      { type: "finish", choice: 0, reason: "tool-calls", raw: "tool_use" },
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
    const delta = (d: object, finish: string | null = null) => ({
      ...frame,
      choices: [{ index: 0, delta: d, finish_reason: finish }],
    });
    expect(chunks).toEqual([
      delta({ role: "assistant", reasoning_content: "Think." }),
      delta({ content: "Hi" }),
      delta({
        tool_calls: [
          { index: 0, id: "toolu_1", type: "function", function: { name: "get_weather", arguments: "" } },
        ],
      }),
      delta({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
      delta({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }),
      delta({}, "tool_calls"),
      {
        ...frame,
        choices: [],
        usage: {
          prompt_tokens: 120,
          completion_tokens: 30,
          total_tokens: 150,
          prompt_tokens_details: { cached_tokens: 100, cache_write_tokens: 15 },
          completion_tokens_details: { reasoning_tokens: 4 },
        },
      },
    ]);
  });

  it("opens a tool-call answer with content null, as OpenAI does, and custom calls in `custom.input`", () => {
    const chunks = encodeAll([
      { type: "tool-call-start", choice: 0, index: 0, id: "c1", name: "apply_patch", custom: true },
      { type: "tool-call-delta", choice: 0, index: 0, input: "*** Begin" },
      { type: "finish", choice: 0, reason: "tool-calls" },
    ]);
    expect(chunks.map((c) => c.choices?.[0])).toEqual([
      {
        index: 0,
        delta: {
          role: "assistant",
          content: null,
          tool_calls: [{ index: 0, id: "c1", type: "custom", custom: { name: "apply_patch", input: "" } }],
        },
        finish_reason: null,
      },
      {
        index: 0,
        delta: { tool_calls: [{ index: 0, custom: { input: "*** Begin" } }] },
        finish_reason: null,
      },
      { index: 0, delta: {}, finish_reason: "tool_calls" },
    ]);
  });

  it("opens an empty answer with role and empty content on its finish, and each choice once", () => {
    const chunks = encodeAll([
      { type: "finish", choice: 0, reason: "length" },
      { type: "text", choice: 1, text: "a" },
      { type: "refusal", choice: 1, text: "b" },
    ]);
    expect(chunks.map((c) => c.choices?.[0])).toEqual([
      { index: 0, delta: { role: "assistant", content: "" }, finish_reason: "length" },
      { index: 1, delta: { role: "assistant", content: "a" }, finish_reason: null },
      { index: 1, delta: { refusal: "b" }, finish_reason: null },
    ]);
  });
});

describe("finish reasons both ways", () => {
  it.each([
    ["stop", "stop"],
    ["length", "length"],
    ["tool_calls", "tool-calls"],
    ["function_call", "tool-calls"],
    ["content_filter", "content-filter"],
    ["insufficient_system_resource", "other"],
  ] as const)("from OpenAI %s is %s", (raw, reason) => {
    expect(finishFromOpenAI(raw)).toBe(reason);
  });

  it.each([
    ["stop", undefined, "stop"],
    ["length", undefined, "length"],
    ["tool-calls", undefined, "tool_calls"],
    ["content-filter", undefined, "content_filter"],
    ["stop-sequence", undefined, "stop"],
    ["other", undefined, "stop"],
    // The upstream's own name wins when it is OpenAI's; another dialect's is mapped.
    ["tool-calls", "function_call", "function_call"],
    ["stop-sequence", "stop_sequence", "stop"],
    ["length", "max_tokens", "length"],
    ["content-filter", "refusal", "content_filter"],
    ["other", "insufficient_system_resource", "stop"],
  ] as const)("to OpenAI %s (raw %s) is %s", (reason, raw, name) => {
    expect(finishToOpenAI(reason, raw)).toBe(name);
  });
});

describe("toOpenAIUsage and toCompletion", () => {
  it("usage: cached and written tokens inside prompt_tokens, reasoning inside completion_tokens", () => {
    expect(
      toOpenAIUsage({
        inputTokens: 10,
        outputTokens: 5,
        cacheReadTokens: 3,
        cacheWriteTokens: 2,
        reasoningTokens: 1,
      }),
    ).toEqual({
      prompt_tokens: 10,
      completion_tokens: 5,
      total_tokens: 15,
      prompt_tokens_details: { cached_tokens: 3, cache_write_tokens: 2 },
      completion_tokens_details: { reasoning_tokens: 1 },
    });
  });

  it("a chat.completion per choice: text, reasoning, refusal, tool calls, finish", () => {
    // Act
    const completion = toCompletion(
      {
        id: "msg_upstream",
        model: "claude-x",
        choices: [
          {
            content: [
              { type: "reasoning", text: "Hmm.", signature: "sig" },
              { type: "text", text: "Hello " },
              { type: "text", text: "there." },
            ],
            finish: "stop-sequence",
            rawFinish: "stop_sequence",
          },
          {
            content: [{ type: "tool-call", id: "t1", name: "f", input: "{}" }],
            finish: "tool-calls",
          },
          { content: [{ type: "refusal", text: "No." }], finish: "content-filter" },
        ],
        usage: {
          inputTokens: 7,
          outputTokens: 3,
          cacheReadTokens: 0,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
        },
      },
      head,
    );
    // Assess
    expect(completion).toEqual({
      id: "chatcmpl-gw1",
      object: "chat.completion",
      created: 1_760_000_000,
      model: "route-a",
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: "Hello there.", reasoning_content: "Hmm." },
          logprobs: null,
          finish_reason: "stop",
        },
        {
          index: 1,
          message: {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "t1", type: "function", function: { name: "f", arguments: "{}" } }],
          },
          logprobs: null,
          finish_reason: "tool_calls",
        },
        {
          index: 2,
          message: { role: "assistant", content: null, refusal: "No." },
          logprobs: null,
          finish_reason: "content_filter",
        },
      ],
      usage: {
        prompt_tokens: 7,
        completion_tokens: 3,
        total_tokens: 10,
        prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 0 },
      },
    });
  });
});

describe("decode then encode reproduces what a client builds from the recorded streams", () => {
  function roundTrip(fixture: string): { original: ChatChunk[]; encoded: EncodedChunk[] } {
    const original = fixtureChunks(fixture);
    const decoder = createChunkDecoder();
    const encoder = createChunkEncoder(head);
    const encoded: EncodedChunk[] = [];
    for (const chunk of original)
      for (const event of decoder.push(chunk)) {
        const out = encoder.encode(event);
        if (out !== undefined) encoded.push(out);
      }
    return { original, encoded };
  }

  it("OpenAI text", () => {
    const { original, encoded } = roundTrip("openai/chat-stream-text.sse");
    const got = assemble(encoded);
    expect(got.content).toBe("Hello! 👋 Un café crème — à bientôt.");
    expect(got.finishReasons).toEqual(["stop"]);
    expect(got.usages).toEqual([
      {
        prompt_tokens: 19,
        completion_tokens: 10,
        total_tokens: 29,
        prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 0 },
      },
    ]);
    expect(got.content).toBe(assemble(original).content);
    expect(encoded[0]?.choices?.[0]?.delta?.role).toBe("assistant");
  });

  it("OpenAI parallel tool calls", () => {
    const { original, encoded } = roundTrip("openai/chat-stream-tool-calls.sse");
    const got = assemble(encoded);
    expect(got.toolCalls).toEqual([
      { id: "call_Pq7fixtureParis0001", name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' },
      { id: "call_Tk9fixtureTokyo0002", name: "get_weather", arguments: '{"city":"Tokyo","unit":"celsius"}' },
    ]);
    expect(got.toolCalls).toEqual(assemble(original).toolCalls);
    expect(got.finishReasons).toEqual(["tool_calls"]);
    expect(got.usages).toMatchObject([{ prompt_tokens: 82, completion_tokens: 52, total_tokens: 134 }]);
  });

  it("DeepSeek reasoner", () => {
    const { original, encoded } = roundTrip("deepseek/chat-stream-reasoner.sse");
    const got = assemble(encoded);
    expect(got.reasoning).toBe("The user asks 9.11 vs 9.8. 0.8 > 0.11, so 9.8 is greater.");
    expect(got.content).toBe("9.8 is greater than 9.11.");
    expect({ reasoning: got.reasoning, content: got.content }).toEqual({
      reasoning: assemble(original).reasoning,
      content: assemble(original).content,
    });
    expect(got.finishReasons).toEqual(["stop"]);
    expect(got.usages).toMatchObject([
      { prompt_tokens: 18, completion_tokens: 22, completion_tokens_details: { reasoning_tokens: 16 } },
    ]);
  });

  it("DeepSeek text after keep-alives, and its tool call with cached tokens", () => {
    const text = assemble(roundTrip("deepseek/chat-stream-text-keepalive.sse").encoded);
    expect(text.content).toBe("你好！Nice to meet you — 有什么可以帮你的吗？");
    expect(text.finishReasons).toEqual(["stop"]);
    const tool = assemble(roundTrip("deepseek/chat-stream-tool-call.sse").encoded);
    expect(tool.toolCalls).toEqual([
      {
        id: "call_0_3f6b9a2c-7d1e-4f5a-9b8c-fixture00001",
        name: "get_weather",
        arguments: '{"location": "Hangzhou"}',
      },
    ]);
    expect(tool.finishReasons).toEqual(["tool_calls"]);
    expect(tool.usages).toMatchObject([
      { prompt_tokens: 156, completion_tokens: 19, prompt_tokens_details: { cached_tokens: 128 } },
    ]);
  });
});
