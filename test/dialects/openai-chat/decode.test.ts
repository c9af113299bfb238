import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { GenerationEvent } from "../../../lib/core/events.ts";
import { createChunkDecoder, fromCompletion } from "../../../lib/dialects/openai-chat/decode.ts";
import type { ChatChunk } from "../../../lib/dialects/openai-chat/wire.ts";
import { fixtureChunks } from "./stream-fixtures.ts";

/**
 * The recorded OpenAI and DeepSeek streams (test/fixtures/, sources in its README) decoded into
 * canonical events. Expected texts and events are written out by hand from what each fixture says.
 */

function decodeAll(chunks: ChatChunk[]): GenerationEvent[] {
  const decoder = createChunkDecoder();
  const events: GenerationEvent[] = [];
  for (const chunk of chunks) for (const event of decoder.push(chunk)) events.push(event);
  return events;
}

function textOf(events: GenerationEvent[], type: "text" | "reasoning"): string {
  let text = "";
  for (const event of events) if (event.type === type) text += event.text;
  return text;
}

function fixtureJson(fixture: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`../../fixtures/${fixture}`, import.meta.url), "utf8"));
}

describe("createChunkDecoder over recorded streams", () => {
  it("OpenAI text: the pieces, one finish, then the usage chunk's figures", () => {
    // Act
    const events = decodeAll(fixtureChunks("openai/chat-stream-text.sse"));
    // Assess: the role chunk's empty content says nothing; ten pieces of text follow.
    expect(events.filter((e) => e.type === "text").map((e) => (e.type === "text" ? e.text : ""))).toEqual([
      "Hello",
      "!",
      " 👋",
      " Un",
      " café",
      " crème",
      " —",
      " à",
      " bientôt",
      ".",
    ]);
    expect(events.slice(-2)).toEqual([
      { type: "finish", choice: 0, reason: "stop", raw: "stop" },
      {
        type: "usage",
        usage: {
          inputTokens: 19,
          outputTokens: 10,
          cacheReadTokens: 0,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
        },
      },
    ]);
    expect(events).toHaveLength(12);
  });

  it("OpenAI parallel tool calls: start, argument pieces, both ended before the finish", () => {
    // Act
    const events = decodeAll(fixtureChunks("openai/chat-stream-tool-calls.sse"));
    // Assess
    const pieces = (index: number, city: string): GenerationEvent[] =>
      ['{"', "city", '":"', city, '","', "unit", '":"', "celsius", '"}'].map((input) => ({
        type: "tool-call-delta",
        choice: 0,
        index,
        input,
      }));
    expect(events).toEqual([
      { type: "tool-call-start", choice: 0, index: 0, id: "call_Pq7fixtureParis0001", name: "get_weather" },
      ...pieces(0, "Paris"),
      { type: "tool-call-start", choice: 0, index: 1, id: "call_Tk9fixtureTokyo0002", name: "get_weather" },
      ...pieces(1, "Tokyo"),
      { type: "tool-call-end", choice: 0, index: 0 },
      { type: "tool-call-end", choice: 0, index: 1 },
      { type: "finish", choice: 0, reason: "tool-calls", raw: "tool_calls" },
      {
        type: "usage",
        usage: {
          inputTokens: 82,
          outputTokens: 52,
          cacheReadTokens: 0,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
        },
      },
    ]);
  });

  it("DeepSeek reasoner: reasoning first, then the answer, usage with reasoning tokens on the finish chunk", () => {
    // Act
    const events = decodeAll(fixtureChunks("deepseek/chat-stream-reasoner.sse"));
    // Assess
    expect(textOf(events, "reasoning")).toBe("The user asks 9.11 vs 9.8. 0.8 > 0.11, so 9.8 is greater.");
    expect(textOf(events, "text")).toBe("9.8 is greater than 9.11.");
    const firstText = events.findIndex((e) => e.type === "text");
    const lastReasoning = events.findLastIndex((e) => e.type === "reasoning");
    expect(lastReasoning).toBeLessThan(firstText);
    expect(events.slice(-2)).toEqual([
      { type: "finish", choice: 0, reason: "stop", raw: "stop" },
      {
        type: "usage",
        usage: {
          inputTokens: 18,
          outputTokens: 22,
          cacheReadTokens: 0,
          cacheWriteTokens: 0,
          reasoningTokens: 16,
        },
      },
    ]);
  });

  it("DeepSeek tool call: cached prompt tokens read from prompt_tokens_details", () => {
    // Act
    const events = decodeAll(fixtureChunks("deepseek/chat-stream-tool-call.sse"));
    // Assess
    expect(events[0]).toEqual({
      type: "tool-call-start",
      choice: 0,
      index: 0,
      id: "call_0_3f6b9a2c-7d1e-4f5a-9b8c-fixture00001",
      name: "get_weather",
    });
    let args = "";
    for (const e of events) if (e.type === "tool-call-delta") args += e.input;
    expect(args).toBe('{"location": "Hangzhou"}');
    expect(events.slice(-3)).toEqual([
      { type: "tool-call-end", choice: 0, index: 0 },
      { type: "finish", choice: 0, reason: "tool-calls", raw: "tool_calls" },
      {
        type: "usage",
        usage: {
          inputTokens: 156,
          outputTokens: 19,
          cacheReadTokens: 128,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
        },
      },
    ]);
  });
});

describe("createChunkDecoder over shapes other servers send", () => {
  it("follows calls by id when a server sends no index, and a reused index with a new id is a new call", () => {
    // Prepare: no `index` at all, then a server that numbers every call 0.
    const decoder = createChunkDecoder();
    const delta = (toolCalls: unknown[]): ChatChunk => ({
      choices: [{ index: 0, delta: { tool_calls: toolCalls } }],
    });
    // Act
    const events = [
      ...decoder.push(delta([{ id: "a", function: { name: "f", arguments: "{" } }])),
      ...decoder.push(delta([{ function: { arguments: "}" } }])),
      ...decoder.push(delta([{ index: 0, id: "b", function: { name: "g", arguments: "" } }])),
      ...decoder.push(delta([{ index: 0, id: "c", function: { name: "h", arguments: "[]" } }])),
      ...decoder.push({ choices: [{ index: 0, delta: {}, finish_reason: "tool_calls" }] }),
    ];
    // Assess
    expect(events).toEqual([
      { type: "tool-call-start", choice: 0, index: 0, id: "a", name: "f" },
      { type: "tool-call-delta", choice: 0, index: 0, input: "{" },
      { type: "tool-call-delta", choice: 0, index: 0, input: "}" },
      { type: "tool-call-start", choice: 0, index: 1, id: "b", name: "g" },
      { type: "tool-call-start", choice: 0, index: 2, id: "c", name: "h" },
      { type: "tool-call-delta", choice: 0, index: 2, input: "[]" },
      { type: "tool-call-end", choice: 0, index: 0 },
      { type: "tool-call-end", choice: 0, index: 1 },
      { type: "tool-call-end", choice: 0, index: 2 },
      { type: "finish", choice: 0, reason: "tool-calls", raw: "tool_calls" },
    ]);
  });

  it("decodes refusals, custom tool calls, several choices and an unknown finish reason", () => {
    // Prepare
    const decoder = createChunkDecoder();
    // Act
    const events = [
      ...decoder.push({
        choices: [
          { index: 0, delta: { role: "assistant", refusal: "No." } },
          {
            index: 1,
            delta: {
              tool_calls: [
                { index: 0, id: "p", type: "custom", custom: { name: "apply_patch", input: "***" } },
              ],
            },
          },
        ],
      }),
      ...decoder.push({
        choices: [
          { index: 0, delta: {}, finish_reason: "content_filter" },
          { index: 1, delta: {}, finish_reason: "insufficient_system_resource" },
        ],
      }),
    ];
    // Assess
    expect(events).toEqual([
      { type: "refusal", choice: 0, text: "No." },
      { type: "tool-call-start", choice: 1, index: 0, id: "p", name: "apply_patch", custom: true },
      { type: "tool-call-delta", choice: 1, index: 0, input: "***" },
      { type: "finish", choice: 0, reason: "content-filter", raw: "content_filter" },
      { type: "tool-call-end", choice: 1, index: 0 },
      { type: "finish", choice: 1, reason: "other", raw: "insufficient_system_resource" },
    ]);
  });
});

describe("fromCompletion", () => {
  it("OpenAI text", () => {
    expect(fromCompletion(fixtureJson("openai/chat-completion-text.json"))).toEqual({
      id: "chatcmpl-CfX3wholetextFixture03",
      model: "gpt-4o-mini-2024-07-18",
      choices: [
        {
          content: [{ type: "text", text: "Hello! 👋 Un café crème — à bientôt." }],
          finish: "stop",
          rawFinish: "stop",
        },
      ],
      usage: {
        inputTokens: 19,
        outputTokens: 10,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        reasoningTokens: 0,
      },
    });
  });

  it("OpenAI tool calls, content null", () => {
    const result = fromCompletion(fixtureJson("openai/chat-completion-tool-calls.json"));
    expect(result.choices).toEqual([
      {
        content: [
          {
            type: "tool-call",
            id: "call_Pq7fixtureParis0001",
            name: "get_weather",
            input: '{"city":"Paris","unit":"celsius"}',
          },
          {
            type: "tool-call",
            id: "call_Tk9fixtureTokyo0002",
            name: "get_weather",
            input: '{"city":"Tokyo","unit":"celsius"}',
          },
        ],
        finish: "tool-calls",
        rawFinish: "tool_calls",
      },
    ]);
  });

  it("DeepSeek reasoner: reasoning before the text, reasoning tokens", () => {
    const result = fromCompletion(fixtureJson("deepseek/chat-completion-reasoner.json"));
    expect(result.choices[0]?.content).toEqual([
      { type: "reasoning", text: "The user asks 9.11 vs 9.8. 0.8 > 0.11, so 9.8 is greater." },
      { type: "text", text: "9.8 is greater than 9.11." },
    ]);
    expect(result.usage).toEqual({
      inputTokens: 18,
      outputTokens: 22,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 16,
    });
  });

  it("a refusal, and a choice with no finish reason", () => {
    const result = fromCompletion({
      model: "m",
      choices: [
        { index: 0, message: { role: "assistant", content: null, refusal: "I can't." }, finish_reason: null },
      ],
    });
    expect(result).toEqual({
      model: "m",
      choices: [{ content: [{ type: "refusal", text: "I can't." }], finish: "other" }],
    });
  });
});
