import type { ConverseResponse, ConverseStreamOutput } from "@aws-sdk/client-bedrock-runtime";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { GenerationEvent } from "../../lib/core/events.ts";
import { openAIErrorType } from "../../lib/dialects/openai-chat/errors.ts";
import { toGeneration } from "../../lib/dialects/openai-chat/parse.ts";
import { chatPlaces } from "../../lib/dialects/openai-chat/places.ts";
import type { ChatRequest } from "../../lib/dialects/openai-chat/wire.ts";
import { GatewayError, InvalidRequestError, MAX_ECHO_CHARS } from "../../lib/errors.ts";
import { DEFAULT_MAX_NESTING_DEPTH, exceedsDepth } from "../../lib/json-depth.ts";
import {
  answerExceedsDepth,
  createStreamTranslator,
  fromConverseResponse,
  toConverseRequest,
  unreadableAnswer,
} from "../../lib/providers/bedrock-translate.ts";
import { chatRequestValue, fuzzSeed, nestedValue } from "./arbitraries.ts";

/**
 * Property-based fuzzing of the OpenAI ⇄ Bedrock Converse translation (issue 16: a system message of
 * 130,000 parts and tool arguments nested 100,000 deep were 500s). Whatever the request's shape or
 * size, the OpenAI chat parse and the Converse translation of its canonical request (issue 17) return
 * a Converse request the SDK can serialise, or refuse it with a 400 naming the field; they never
 * throw anything else. A failure prints the seed; replay it with
 * FUZZ_SEED=<seed>.
 */
const RUNS = 300;

/** How much deeper than a document it carries a Converse request is (converse.toolConfig.tools[i]...). */
const WRAPPING_LEVELS = 8;

/** Longest message of a 400: the translator's words plus at most two quoted pieces of caller text. */
const MAX_MESSAGE = 200 + 2 * (MAX_ECHO_CHARS + 1);

/** An OpenAI chat body as the Bedrock provider translates it: parsed, then built for Converse. */
function toConverse(body: ChatRequest) {
  const canonical = toGeneration(body);
  return toConverseRequest(canonical, "m", undefined, chatPlaces(body, canonical));
}

describe("toConverseRequest under fuzzing", () => {
  it("returns a bounded Converse request or throws a 400 naming the field, nothing else", () => {
    fc.assert(
      fc.property(chatRequestValue, (request) => {
        let converse: ReturnType<typeof toConverseRequest>;
        try {
          converse = toConverse(request as ChatRequest);
        } catch (error) {
          // Not a RangeError from the stack, not a TypeError from a shape.
          expect(error).toBeInstanceOf(InvalidRequestError);
          const refused = error as InvalidRequestError;
          expect(refused).toBeInstanceOf(GatewayError);
          expect(refused.status).toBe(400);
          expect(openAIErrorType(refused)).toBe("invalid_request_error");
          expect(refused.param).toEqual(expect.any(String));
          expect(refused.param?.length).toBeLessThanOrEqual(MAX_MESSAGE);
          expect(refused.message.length).toBeLessThanOrEqual(MAX_MESSAGE);
          return;
        }
        expect(converse.modelId).toBe("m");
        expect(Array.isArray(converse.messages)).toBe(true);
        // What the SDK serialises recursively nests no deeper than the limit allows.
        expect(exceedsDepth(converse, DEFAULT_MAX_NESTING_DEPTH + WRAPPING_LEVELS)).toBe(false);
      }),
      { numRuns: RUNS, ...fuzzSeed() },
    );
  });

  it("refuses deep tool arguments and schemas at the limit, and carries what is just inside it", () => {
    const call = (args: string) => ({
      model: "m",
      messages: [
        { role: "user", content: "hi" },
        {
          role: "assistant",
          tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: args } }],
        },
      ],
    });
    const schema = (parameters: unknown) => ({
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      tools: [{ type: "function", function: { name: "f", parameters } }],
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 * DEFAULT_MAX_NESTING_DEPTH }), (depth) => {
        // Both nest `depth` levels: the arguments' value, and the schema object around its properties.
        const args = JSON.stringify(nestedValue(depth));
        const parameters = { type: "object", properties: nestedValue(depth - 1) };
        for (const request of [call(args), schema(parameters)]) {
          if (depth <= DEFAULT_MAX_NESTING_DEPTH) expect(() => toConverse(request)).not.toThrow();
          else expect(() => toConverse(request)).toThrow(/deeper than the limit of 64 levels/);
        }
      }),
      { numRuns: 100, ...fuzzSeed() },
    );
  });
});

// Answers as the SDK hands them on: whatever JSON the 200 carried, unchecked.
const loose = fc.jsonValue({ maxDepth: 4 });
const block = fc.oneof(
  fc.record({ text: fc.oneof(fc.string({ maxLength: 10 }), loose) }),
  fc.record({
    toolUse: fc.oneof(
      fc.record({
        toolUseId: fc.oneof(fc.constant("t"), loose),
        name: fc.oneof(fc.constant("f"), loose),
        input: fc.oneof(loose, fc.integer({ min: 0, max: 200 }).map(nestedValue)),
      }),
      loose,
    ),
  }),
  fc.record({ reasoningContent: fc.oneof(fc.record({ reasoningText: fc.record({ text: loose }) }), loose) }),
  loose,
);
const answer = fc.record(
  {
    output: fc.oneof(
      fc.record({
        message: fc.record({ role: fc.constant("assistant"), content: fc.array(block, { maxLength: 4 }) }),
      }),
      fc.record({ message: fc.record({ content: loose }) }),
      loose,
    ),
    stopReason: fc.oneof(fc.constantFrom("end_turn", "tool_use", "max_tokens"), loose),
    usage: fc.oneof(
      fc.record({ inputTokens: fc.nat(), outputTokens: fc.nat(), totalTokens: fc.nat() }),
      fc.record(
        { inputTokens: loose, outputTokens: loose, cacheReadInputTokens: loose },
        { requiredKeys: [] },
      ),
      loose,
    ),
    additionalModelResponseFields: fc.oneof(loose, fc.integer({ min: 0, max: 200 }).map(nestedValue)),
  },
  { requiredKeys: [] },
);

/** Usage the ledger can add up: counts, never strings or NaN. */
function expectCounts(usage: unknown): void {
  if (usage === undefined) return;
  const u = usage as Record<string, unknown>;
  for (const field of [
    "inputTokens",
    "outputTokens",
    "cacheReadTokens",
    "cacheWriteTokens",
    "reasoningTokens",
  ])
    expect(Number.isSafeInteger(u[field]) && (u[field] as number) >= 0).toBe(true);
}

/** What the relay and the dialect encoders read of an event is of the type the union says. */
function expectWellTyped(event: GenerationEvent): void {
  if ("text" in event) expect(typeof event.text).toBe("string");
  if (event.type === "tool-call-start")
    expect([typeof event.id, typeof event.name]).toEqual(["string", "string"]);
  if (event.type === "tool-call-delta") expect(typeof event.input).toBe("string");
  if (event.type === "finish") expect(event.raw === undefined || typeof event.raw === "string").toBe(true);
  if (event.type === "usage") expectCounts(event.usage);
}

describe("Converse answers back in canonical terms under fuzzing", () => {
  it("judges an answer unreadable or too deep, or translates it to a serialisable completion", () => {
    fc.assert(
      fc.property(answer, (response) => {
        const converse = response as unknown as ConverseResponse;
        const problem = unreadableAnswer(converse);
        if (problem !== undefined) {
          expect(problem).toEqual(expect.any(String));
          return;
        }
        if (answerExceedsDepth(converse, DEFAULT_MAX_NESTING_DEPTH)) return;
        const result = fromConverseResponse(converse, "m");
        expect(typeof JSON.stringify(result)).toBe("string");
        for (const part of result.choices[0]?.content ?? []) {
          if (part.type === "tool-call")
            expect([typeof part.id, typeof part.name]).toEqual(["string", "string"]);
          else expect(typeof part.text).toBe("string");
        }
        expectCounts(result.usage);
      }),
      { numRuns: RUNS, ...fuzzSeed() },
    );
  });

  it("turns any sequence of stream events into well-typed canonical events without throwing", () => {
    const event = fc.oneof(
      fc.record({ messageStart: fc.oneof(fc.record({ role: fc.constant("assistant") }), loose) }),
      fc.record({ contentBlockStart: loose }),
      fc.record({
        contentBlockDelta: fc.oneof(
          fc.record({ contentBlockIndex: fc.oneof(fc.nat(3), loose), delta: loose }),
          loose,
        ),
      }),
      fc.record({ messageStop: fc.oneof(fc.record({ stopReason: loose }), loose) }),
      fc.record({ metadata: fc.oneof(fc.record({ usage: loose }), loose) }),
      loose,
    );
    fc.assert(
      fc.property(fc.array(event, { maxLength: 12 }), (events) => {
        const translator = createStreamTranslator();
        for (const e of events) {
          for (const event of translator.push((e ?? {}) as ConverseStreamOutput)) {
            expect(typeof JSON.stringify(event)).toBe("string");
            expectWellTyped(event);
          }
        }
      }),
      { numRuns: RUNS, ...fuzzSeed() },
    );
  });
});
