import type { ConverseResponse, ConverseStreamOutput } from "@aws-sdk/client-bedrock-runtime";
import { describe, expect, it } from "vitest";
import type { GenerationEvent } from "../../lib/core/events.ts";
import { createChunkEncoder, toCompletion } from "../../lib/dialects/openai-chat/encode.ts";
import { openAIErrorType } from "../../lib/dialects/openai-chat/errors.ts";
import { finishToOpenAI } from "../../lib/dialects/openai-chat/finish.ts";
import { toGeneration } from "../../lib/dialects/openai-chat/parse.ts";
import { chatPlaces } from "../../lib/dialects/openai-chat/places.ts";
import type { ChatRequest } from "../../lib/dialects/openai-chat/wire.ts";
import { InvalidRequestError } from "../../lib/errors.ts";
import {
  answerExceedsDepth,
  createStreamTranslator,
  finishReason,
  fromConverseResponse,
  type TranslateLimits,
  toConverseRequest,
  toUsage,
  unreadableAnswer,
} from "../../lib/providers/bedrock-translate.ts";

const head = { id: "chatcmpl-1", created: 1_700_000_000, model: "anthropic.claude-test" };

/** An OpenAI chat body as the Bedrock provider translates it: parsed, then built for Converse. */
function toConverse(body: ChatRequest, limits?: TranslateLimits) {
  const canonical = toGeneration(body);
  return toConverseRequest(canonical, body.model, limits, chatPlaces(body, canonical));
}

function refused(request: ChatRequest): InvalidRequestError {
  try {
    toConverse(request);
  } catch (error) {
    if (error instanceof InvalidRequestError) return error;
    throw error;
  }
  throw new Error("expected a 400");
}

describe("toConverseRequest", () => {
  it("carries system, user, assistant and tool messages, merging turns Converse wants alternating", () => {
    // Prepare: a conversation with two parallel tool calls answered by two tool messages.
    const request: ChatRequest = {
      model: "us.anthropic.claude-test",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "developer", content: [{ type: "text", text: "Use tools." }] },
        { role: "user", content: "Weather in Paris and Rome?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "call_1", type: "function", function: { name: "weather", arguments: '{"city":"Paris"}' } },
            { id: "call_2", type: "function", function: { name: "weather", arguments: '{"city":"Rome"}' } },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: "18C" },
        { role: "tool", tool_call_id: "call_2", name: "weather", content: [{ type: "text", text: "24C" }] },
        { role: "user", content: "Thanks" },
      ],
      tools: [
        {
          type: "function",
          function: { name: "weather", description: "Weather now", parameters: { type: "object" } },
        },
      ],
      tool_choice: "required",
      temperature: 0.2,
      top_p: 0.9,
      max_tokens: 50,
      max_completion_tokens: 100,
      stop: "END",
    };
    // Act
    const converse = toConverse(request);
    // Assess
    expect(converse.modelId).toBe("us.anthropic.claude-test");
    expect(converse.system).toEqual([{ text: "Be brief." }, { text: "Use tools." }]);
    expect(converse.messages).toEqual([
      { role: "user", content: [{ text: "Weather in Paris and Rome?" }] },
      {
        role: "assistant",
        content: [
          { toolUse: { toolUseId: "call_1", name: "weather", input: { city: "Paris" } } },
          { toolUse: { toolUseId: "call_2", name: "weather", input: { city: "Rome" } } },
        ],
      },
      {
        role: "user",
        content: [
          { toolResult: { toolUseId: "call_1", content: [{ text: "18C" }] } },
          { toolResult: { toolUseId: "call_2", content: [{ text: "24C" }] } },
          { text: "Thanks" },
        ],
      },
    ]);
    expect(converse.inferenceConfig).toEqual({
      maxTokens: 100,
      temperature: 0.2,
      topP: 0.9,
      stopSequences: ["END"],
    });
    expect(converse.toolConfig).toEqual({
      tools: [
        {
          toolSpec: {
            name: "weather",
            description: "Weather now",
            inputSchema: { json: { type: "object" } },
          },
        },
      ],
      toolChoice: { any: {} },
    });
  });

  it("maps tool_choice auto, a named function, and none without tool history", () => {
    const base = {
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      tools: [{ type: "function", function: { name: "f" } }],
    };
    expect(toConverse({ ...base, tool_choice: "auto" }).toolConfig?.toolChoice).toBeUndefined();
    expect(
      toConverse({ ...base, tool_choice: { type: "function", function: { name: "f" } } }).toolConfig
        ?.toolChoice,
    ).toEqual({ tool: { name: "f" } });
    expect(toConverse({ ...base, tool_choice: "none" }).toolConfig).toBeUndefined();
    // A tool without parameters still gets the object schema Converse requires.
    expect(toConverse(base).toolConfig?.tools?.[0]).toEqual({
      toolSpec: { name: "f", inputSchema: { json: { type: "object", properties: {} } } },
    });
  });

  it("turns a data-URL image into image bytes and refuses a remote URL, naming the part", () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47]);
    const converse = toConverse({
      model: "m",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is this?" },
            { type: "image_url", image_url: { url: `data:image/png;base64,${png.toString("base64")}` } },
          ],
        },
      ],
    });
    const block = converse.messages?.[0]?.content?.[1];
    expect(block?.image?.format).toBe("png");
    expect(Buffer.from(block?.image?.source?.bytes ?? new Uint8Array()).equals(png)).toBe(true);

    const error = refused({
      model: "m",
      messages: [
        { role: "user", content: [{ type: "image_url", image_url: { url: "https://x.test/a.png" } }] },
      ],
    });
    expect(error.status).toBe(400);
    expect(error.param).toBe("messages[0].content[0].image_url.url");
  });

  it.each([
    ["seed", { seed: 1 }],
    ["logprobs", { logprobs: true }],
    ["frequency_penalty", { frequency_penalty: 0.5 }],
    ["n", { n: 2 }],
    ["response_format", { response_format: { type: "json_object" } }],
    ["parallel_tool_calls", { parallel_tool_calls: false }],
    ["bedrock.unknownThing", { bedrock: { unknownThing: 1 } }],
  ])("refuses %s with a 400 that names it", (param, extra) => {
    const error = refused({ model: "m", messages: [{ role: "user", content: "hi" }], ...extra });
    expect(error.status).toBe(400);
    expect(error.param).toBe(param);
    expect(error.message).toContain(param);
  });

  it("accepts fields sent as null (not set) and a message name on a tool result", () => {
    const converse = toConverse({
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      seed: null,
      temperature: null,
      n: 1,
    });
    expect(converse.inferenceConfig).toBeUndefined();
    expect(refused({ model: "m", messages: [{ role: "user", content: "hi", name: "bob" }] }).param).toBe(
      "messages[0].name",
    );
  });

  it("carries an assistant refusal in the history as its text", () => {
    const converse = toConverse({
      model: "m",
      messages: [
        { role: "user", content: "Do the bad thing" },
        { role: "assistant", content: null, refusal: "I can't help with that." },
        { role: "user", content: "OK, something else" },
      ],
    });
    expect(converse.messages?.[1]).toEqual({
      role: "assistant",
      content: [{ text: "I can't help with that." }],
    });
  });

  it("refuses tool arguments that are not JSON, naming them", () => {
    const error = refused({
      model: "m",
      messages: [
        { role: "user", content: "hi" },
        {
          role: "assistant",
          tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{" } }],
        },
      ],
    });
    expect(error.param).toBe("messages[1].tool_calls[0].function.arguments");
  });

  it("passes the bedrock extension: model fields, cache points, metadata", () => {
    const converse = toConverse({
      model: "m",
      messages: [
        { role: "system", content: "long system prompt" },
        { role: "user", content: [{ type: "text", text: "doc", cache_control: { type: "ephemeral" } }] },
        { role: "assistant", content: "ok" },
        { role: "user", content: "question" },
      ],
      tools: [{ type: "function", function: { name: "f" } }],
      bedrock: {
        additionalModelRequestFields: { top_k: 5 },
        additionalModelResponseFieldPaths: ["/stop_sequence"],
        cachePoints: { system: true, tools: true, messages: [2] },
        requestMetadata: { team: "search" },
      },
    });
    const cachePoint = { cachePoint: { type: "default" } };
    expect(converse.additionalModelRequestFields).toEqual({ top_k: 5 });
    expect(converse.additionalModelResponseFieldPaths).toEqual(["/stop_sequence"]);
    expect(converse.requestMetadata).toEqual({ team: "search" });
    expect(converse.system).toEqual([{ text: "long system prompt" }, cachePoint]);
    expect(converse.toolConfig?.tools?.[1]).toEqual(cachePoint);
    expect(converse.messages?.[0]?.content).toEqual([{ text: "doc" }, cachePoint]);
    expect(converse.messages?.[1]?.content).toEqual([{ text: "ok" }, cachePoint]);
  });

  it("names a refused field as the caller wrote it: OpenAI's message index, or the canonical place", () => {
    // Prepare: a system message first, so the canonical message index is one less than OpenAI's.
    const body: ChatRequest = {
      model: "m",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: [{ type: "image_url", image_url: { url: "https://x.test/a.png" } }] },
      ],
    };
    expect(refused(body).param).toBe("messages[1].content[0].image_url.url");
    const calls: ChatRequest = {
      model: "m",
      messages: [
        { role: "developer", content: "Use tools." },
        { role: "user", content: "hi" },
        {
          role: "assistant",
          content: "Calling.",
          tool_calls: [
            { id: "a", type: "function", function: { name: "f", arguments: "{}" } },
            { id: "b", type: "function", function: { name: "f", arguments: "{" } },
          ],
        },
      ],
    };
    expect(refused(calls).param).toBe("messages[2].tool_calls[1].function.arguments");
    // Another dialect's caller (no places given) is told the canonical place.
    const error = (() => {
      try {
        toConverseRequest(toGeneration(body), "m");
      } catch (e) {
        return e as InvalidRequestError;
      }
      throw new Error("expected a 400");
    })();
    expect(error.param).toBe("messages[0].content[0].url");
  });

  it("refuses reasoning it cannot sign back, and carries Claude's own with its signature", () => {
    const body: ChatRequest = {
      model: "m",
      messages: [
        { role: "user", content: "hi" },
        { role: "assistant", content: "ok", reasoning_content: "thought" },
      ],
    };
    expect(refused(body).param).toBe("messages[1].reasoning_content");
    const canonical = toGeneration({ model: "m", messages: [{ role: "user", content: "hi" }] });
    canonical.messages.push(
      {
        role: "assistant",
        content: [
          { type: "reasoning", text: "thought", signature: "sig", family: "anthropic" },
          { type: "text", text: "ok" },
        ],
      },
      { role: "user", content: [{ type: "text", text: "more" }] },
    );
    expect(toConverseRequest(canonical, "m").messages?.[1]?.content).toEqual([
      { reasoningContent: { reasoningText: { text: "thought", signature: "sig" } } },
      { text: "ok" },
    ]);
    expect(toConverseRequest(canonical, "us.anthropic.claude-x-v1:0").messages?.[1]?.content).toEqual([
      { reasoningContent: { reasoningText: { text: "thought", signature: "sig" } } },
      { text: "ok" },
    ]);
    // Claude's signature is never sent to another vendor's model (issue 18).
    expect(toConverseRequest(canonical, "amazon.nova-pro-v1:0").messages?.[1]?.content).toEqual([
      { text: "ok" },
    ]);
    expect(toConverseRequest(canonical, "us.meta.llama4-v1:0").messages?.[1]?.content).toEqual([
      { text: "ok" },
    ]);
  });

  it("takes a trailing assistant message as a prefill, without the trailing whitespace Claude refuses", () => {
    const converse = toConverse({
      model: "m",
      messages: [
        { role: "user", content: "Count to five" },
        { role: "assistant", content: "One, two, ", prefix: true },
      ],
    });
    expect(converse.messages?.[1]).toEqual({ role: "assistant", content: [{ text: "One, two," }] });
  });
});

/** JSON text nesting `depth` arrays: `[[[...]]]`. */
const nestedArrays = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;

/** A value nesting `depth` objects: `{a: {a: ... {}}}`, built without recursion. */
function nestedObject(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = {};
  for (let i = 1; i < depth; i++) value = { a: value };
  return value;
}

const toolCall = (args: string) => ({
  role: "assistant",
  tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: args } }],
});

describe("toConverseRequest bounds (issue 16: shapes that once gave a 500)", () => {
  it("carries a system message of 130,000 text parts (3.5 MB) without overflowing the stack", () => {
    const parts = Array.from({ length: 130_000 }, () => ({
      type: "text",
      text: "twenty-seven characters...",
    }));
    const converse = toConverse({
      model: "m",
      messages: [
        { role: "system", content: parts },
        { role: "user", content: "hi" },
        // A second user message of as many parts, merged into the first user turn.
        { role: "user", content: parts },
      ],
    });
    expect(converse.system).toHaveLength(130_000);
    expect(converse.system?.[129_999]).toEqual({ text: "twenty-seven characters..." });
    expect(converse.messages).toHaveLength(1);
    expect(converse.messages?.[0]?.content).toHaveLength(130_001);
  });

  it("refuses tool-call arguments nested 100,000 deep with a 400 naming them, before parsing", () => {
    const error = refused({
      model: "m",
      messages: [{ role: "user", content: "hi" }, toolCall(nestedArrays(100_000))],
    });
    expect(error.status).toBe(400);
    expect(openAIErrorType(error)).toBe("invalid_request_error");
    expect(error.code).toBe("nesting_too_deep");
    expect(error.param).toBe("messages[1].tool_calls[0].function.arguments");
    expect(error.message).toContain("64 levels");
  });

  it("takes arguments at the depth limit, counts no bracket inside a string, and honours a configured limit", () => {
    // A string holding brackets, an escaped backslash and an escaped quote: none of it nests.
    const tricky = '[[[[\\"[[[{{{';
    const at = toConverse({
      model: "m",
      messages: [
        { role: "user", content: "hi" },
        toolCall(`{"q":${nestedArrays(63)},"s":${JSON.stringify(tricky)}}`),
      ],
    });
    expect(at.messages?.[1]?.content?.[0]?.toolUse?.input).toMatchObject({ s: tricky });
    expect(() =>
      toConverse({
        model: "m",
        messages: [{ role: "user", content: "hi" }, toolCall(`{"q":${nestedArrays(64)}}`)],
      }),
    ).toThrow(InvalidRequestError);
    const small = { model: "m", messages: [{ role: "user", content: "hi" }, toolCall("[[[[1]]]]")] };
    expect(() => toConverse(small, { maxNestingDepth: 3 })).toThrow(/deeper than the limit of 3/);
    expect(toConverse(small, { maxNestingDepth: 4 }).messages?.[1]?.content?.[0]?.toolUse?.input).toEqual([
      [[[1]]],
    ]);
  });

  it.each([
    [
      "tools[0].function.parameters",
      { tools: [{ type: "function", function: { name: "f", parameters: nestedObject(65) } }] },
    ],
    ["bedrock.additionalModelRequestFields", { bedrock: { additionalModelRequestFields: nestedObject(65) } }],
    ["bedrock.guardrailConfig", { bedrock: { guardrailConfig: nestedObject(10_000) } }],
    ["bedrock.performanceConfig", { bedrock: { performanceConfig: nestedObject(65) } }],
  ])("refuses %s nested past the limit, naming it", (param, extra) => {
    const error = refused({ model: "m", messages: [{ role: "user", content: "hi" }], ...extra });
    expect(error).toMatchObject({ status: 400, param, code: "nesting_too_deep" });
  });

  it.each([
    ["messages", { messages: "hello" }],
    ["messages[0]", { messages: [null] }],
    ["messages[0].role", { messages: [{ role: "constructor", content: "hi" }] }],
    ["messages[0].role", { messages: [{ role: "toString", content: "hi" }] }],
    ["messages[0].role", { messages: [{ role: 7, content: "hi" }] }],
  ])("refuses an odd shape at %s with a 400, not a TypeError", (param, fields) => {
    expect(refused({ model: "m", ...fields } as unknown as ChatRequest).param).toBe(param);
  });

  it("quotes a caller's field name or part type cut to a bounded length", () => {
    const long = "x".repeat(100_000);
    const field = refused({ model: "m", messages: [{ role: "user", content: "hi" }], [long]: 1 });
    expect(field.message.length).toBeLessThan(400);
    expect(field.param?.length).toBeLessThan(300);
    const part = refused({ model: "m", messages: [{ role: "user", content: [{ type: long }] }] });
    // A part of a kind Converse has no block for is named by its place (its type is caller text).
    expect(part.param).toBe("messages[0].content[0]");
    expect(part.message.length).toBeLessThan(400);
  });
});

describe("fromConverseResponse", () => {
  const response: ConverseResponse = {
    output: {
      message: {
        role: "assistant",
        content: [
          { text: "Checking." },
          { toolUse: { toolUseId: "tu_1", name: "weather", input: { city: "Paris" } } },
        ],
      },
    },
    stopReason: "tool_use",
    usage: {
      inputTokens: 10,
      outputTokens: 5,
      totalTokens: 45,
      cacheReadInputTokens: 20,
      cacheWriteInputTokens: 10,
    },
    metrics: { latencyMs: 1 },
  };

  it("reads text, tool calls, the finish and cached-token usage in canonical terms", () => {
    expect(fromConverseResponse(response, "anthropic.claude-test")).toEqual({
      model: "anthropic.claude-test",
      choices: [
        {
          content: [
            { type: "text", text: "Checking." },
            { type: "tool-call", id: "tu_1", name: "weather", input: '{"city":"Paris"}' },
          ],
          finish: "tool-calls",
          rawFinish: "tool_use",
        },
      ],
      usage: {
        inputTokens: 40,
        outputTokens: 5,
        cacheReadTokens: 20,
        cacheWriteTokens: 10,
        reasoningTokens: 0,
      },
    });
  });

  it("is, for an OpenAI caller, the chat.completion it was before", () => {
    const completion = toCompletion(fromConverseResponse(response, head.model), head);
    expect(completion).toEqual({
      id: "chatcmpl-1",
      object: "chat.completion",
      created: 1_700_000_000,
      model: "anthropic.claude-test",
      choices: [
        {
          index: 0,
          logprobs: null,
          finish_reason: "tool_calls",
          message: {
            role: "assistant",
            content: "Checking.",
            tool_calls: [
              { id: "tu_1", type: "function", function: { name: "weather", arguments: '{"city":"Paris"}' } },
            ],
          },
        },
      ],
      usage: {
        prompt_tokens: 40,
        completion_tokens: 5,
        total_tokens: 45,
        prompt_tokens_details: { cached_tokens: 20, cache_write_tokens: 10 },
        completion_tokens_details: { reasoning_tokens: 0 },
      },
    });
  });

  it("keeps Claude's reasoning with its signature, of family anthropic", () => {
    const result = fromConverseResponse(
      {
        output: {
          message: {
            role: "assistant",
            content: [
              { reasoningContent: { reasoningText: { text: "Think.", signature: "sig-1" } } },
              { text: "Done." },
            ],
          },
        },
        stopReason: "end_turn",
        usage: undefined,
        metrics: undefined,
      } as unknown as ConverseResponse,
      "m",
    );
    expect(result.choices[0]?.content).toEqual([
      { type: "reasoning", text: "Think.", signature: "sig-1", family: "anthropic" },
      { type: "text", text: "Done." },
    ]);
    expect(result.usage).toBeUndefined();
  });

  it.each([
    ["end_turn", "stop", "stop"],
    ["stop_sequence", "stop-sequence", "stop"],
    ["max_tokens", "length", "length"],
    ["tool_use", "tool-calls", "tool_calls"],
    ["content_filtered", "content-filter", "content_filter"],
    ["guardrail_intervened", "content-filter", "content_filter"],
    ["something_new", "other", "stop"],
  ])("maps stop reason %s to %s (OpenAI's %s)", (stop, canonical, openai) => {
    expect(finishReason(stop)).toBe(canonical);
    expect(finishToOpenAI(finishReason(stop), stop)).toBe(openai);
  });

  it("has no usage when Bedrock sent none", () => {
    expect(toUsage(undefined)).toBeUndefined();
  });
});

describe("unreadableAnswer and answerExceedsDepth", () => {
  const answer = (content: unknown) =>
    ({ output: { message: { role: "assistant", content } } }) as unknown as ConverseResponse;

  it("says what is missing from a 200 that is not an answer, and nothing for one that is", () => {
    expect(unreadableAnswer({} as ConverseResponse)).toBe("no output.message");
    expect(unreadableAnswer({ output: "x" } as unknown as ConverseResponse)).toBe("no output.message");
    expect(unreadableAnswer(answer("text"))).toMatch(/not a list/);
    expect(unreadableAnswer(answer([null]))).toMatch(/not an object/);
    expect(unreadableAnswer(answer([]))).toBeUndefined();
    expect(unreadableAnswer(answer([{ text: "hi" }]))).toBeUndefined();
  });

  it("finds a tool input or response field nested past the limit", () => {
    const tool = (input: unknown) => answer([{ toolUse: { toolUseId: "t", name: "f", input } }]);
    expect(answerExceedsDepth(tool(nestedObject(64)), 64)).toBe(false);
    expect(answerExceedsDepth(tool(nestedObject(65)), 64)).toBe(true);
    expect(
      answerExceedsDepth(
        { ...answer([]), additionalModelResponseFields: nestedObject(65) } as ConverseResponse,
        64,
      ),
    ).toBe(true);
  });
});

describe("createStreamTranslator", () => {
  it("turns a tool-call stream into canonical events with tool indexes, then finish and usage", () => {
    const t = createStreamTranslator();
    const events: ConverseStreamOutput[] = [
      { messageStart: { role: "assistant" } },
      { contentBlockDelta: { contentBlockIndex: 0, delta: { text: "Let me check." } } },
      { contentBlockStop: { contentBlockIndex: 0 } },
      {
        contentBlockStart: {
          contentBlockIndex: 1,
          start: { toolUse: { toolUseId: "tu_1", name: "weather" } },
        },
      },
      { contentBlockDelta: { contentBlockIndex: 1, delta: { toolUse: { input: '{"city":' } } } },
      { contentBlockDelta: { contentBlockIndex: 1, delta: { toolUse: { input: '"Paris"}' } } } },
      { contentBlockStop: { contentBlockIndex: 1 } },
      {
        contentBlockStart: { contentBlockIndex: 2, start: { toolUse: { toolUseId: "tu_2", name: "time" } } },
      },
      { contentBlockDelta: { contentBlockIndex: 2, delta: { toolUse: { input: "{}" } } } },
      { messageStop: { stopReason: "tool_use" } },
      { metadata: { usage: { inputTokens: 3, outputTokens: 4, totalTokens: 7 }, metrics: { latencyMs: 1 } } },
    ];
    const canonical = events.flatMap((e) => t.push(e));
    expect(canonical).toEqual([
      { type: "text", choice: 0, text: "Let me check." },
      { type: "tool-call-start", choice: 0, index: 0, id: "tu_1", name: "weather" },
      { type: "tool-call-delta", choice: 0, index: 0, input: '{"city":' },
      { type: "tool-call-delta", choice: 0, index: 0, input: '"Paris"}' },
      { type: "tool-call-end", choice: 0, index: 0 },
      { type: "tool-call-start", choice: 0, index: 1, id: "tu_2", name: "time" },
      { type: "tool-call-delta", choice: 0, index: 1, input: "{}" },
      // The second call's block never stopped: it ends before the finish.
      { type: "tool-call-end", choice: 0, index: 1 },
      { type: "finish", choice: 0, reason: "tool-calls", raw: "tool_use" },
      {
        type: "usage",
        usage: {
          inputTokens: 3,
          outputTokens: 4,
          cacheReadTokens: 0,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
        },
      },
    ] satisfies GenerationEvent[]);
    expect(t.stopped).toBe(true);

    // Encoded for an OpenAI caller: the deltas, finish and usage chunk it got before.
    const encoder = createChunkEncoder(head);
    const chunks = canonical.flatMap((e) => encoder.encode(e) ?? []);
    expect(chunks.slice(0, -1).map((c) => c.choices?.[0]?.delta)).toEqual([
      { role: "assistant", content: "Let me check." },
      {
        tool_calls: [
          { index: 0, id: "tu_1", type: "function", function: { name: "weather", arguments: "" } },
        ],
      },
      { tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] },
      { tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] },
      { tool_calls: [{ index: 1, id: "tu_2", type: "function", function: { name: "time", arguments: "" } }] },
      { tool_calls: [{ index: 1, function: { arguments: "{}" } }] },
      {},
    ]);
    expect(chunks.at(-2)?.choices?.[0]?.finish_reason).toBe("tool_calls");
    expect(chunks.at(-1)).toMatchObject({
      object: "chat.completion.chunk",
      choices: [],
      usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
    });
  });

  it("reads reasoning deltas and Claude's signature", () => {
    const t = createStreamTranslator();
    const out = [
      { contentBlockDelta: { contentBlockIndex: 0, delta: { reasoningContent: { text: "Hmm." } } } },
      { contentBlockDelta: { contentBlockIndex: 0, delta: { reasoningContent: { signature: "sig" } } } },
    ].flatMap((e) => t.push(e as ConverseStreamOutput));
    expect(out).toEqual([
      { type: "reasoning", choice: 0, text: "Hmm." },
      { type: "reasoning-signature", choice: 0, signature: "sig", family: "anthropic" },
    ]);
  });

  it("is not stopped (a cut answer) until messageStop arrives", () => {
    const t = createStreamTranslator();
    t.push({ messageStart: { role: "assistant" } });
    expect(t.push({ contentBlockDelta: { contentBlockIndex: 0, delta: { text: "Half an ans" } } })).toEqual([
      { type: "text", choice: 0, text: "Half an ans" },
    ]);
    expect(t.stopped).toBe(false);
  });
});
