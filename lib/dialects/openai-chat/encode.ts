/**
 * OpenAI Chat Completions, caller side: canonical events and results in OpenAI's wire shapes
 * (issue 17), for an OpenAI chat caller served by a target of another dialect (Bedrock Converse,
 * Anthropic). A caller served by an OpenAI-compatible target gets the upstream's own bytes instead.
 *
 * Chunk object: https://platform.openai.com/docs/api-reference/chat-streaming/streaming; completion
 * object: https://platform.openai.com/docs/api-reference/chat/object.
 */
import type { GenerationEvent, GenerationResult } from "../../core/events.ts";
import type { Usage } from "../../core/usage.ts";
import { finishToOpenAI } from "./finish.ts";
import type { ChatChunk } from "./wire.ts";

/** Identity of one answer, shared by its completion or every chunk of its stream. */
export interface AnswerHead {
  id: string;
  created: number;
  model: string;
}

/** OpenAI's `usage` object, as the gateway writes it. */
export interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number; cache_write_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
}

/**
 * Canonical usage in OpenAI's shape. `prompt_tokens` counts every prompt token, cached ones included,
 * as OpenAI's does; cache reads are `prompt_tokens_details.cached_tokens`. Cache writes, which OpenAI
 * has no name for, are `prompt_tokens_details.cache_write_tokens`, as the Bedrock translation writes
 * them (and `usageFromOpenAI` reads them back).
 */
export function toOpenAIUsage(usage: Usage): OpenAIUsage {
  return {
    prompt_tokens: usage.inputTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: usage.inputTokens + usage.outputTokens,
    prompt_tokens_details: {
      cached_tokens: usage.cacheReadTokens,
      cache_write_tokens: usage.cacheWriteTokens,
    },
    completion_tokens_details: { reasoning_tokens: usage.reasoningTokens },
  };
}

type Delta = NonNullable<NonNullable<ChatChunk["choices"]>[number]["delta"]>;

/** A chunk as written to the caller: {@link ChatChunk} plus the fields every OpenAI chunk carries. */
export type EncodedChunk = ChatChunk & {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
};

/** Turns one answer's canonical events into OpenAI `chat.completion.chunk`s. */
export interface ChunkEncoder {
  /** The chunk an event is written as, or undefined for one OpenAI has no chunk for. */
  encode(event: GenerationEvent): EncodedChunk | undefined;
}

/**
 * An encoder for one streamed answer. Each choice's first chunk carries `role: "assistant"` in its
 * delta (OpenAI's opening), merged with the first piece. Tool calls keep the canonical `index`
 * (numbered per choice in order of appearance, as OpenAI's are): `id`, `type` and the name on the
 * start with empty arguments, then argument pieces alone. `tool-call-end` and a reasoning signature
 * have no OpenAI chunk. Usage is a chunk of its own with empty `choices`, as OpenAI sends it when
 * `stream_options.include_usage` is set (whether to write it is the caller's choice, not this one's).
 */
export function createChunkEncoder(head: AnswerHead): ChunkEncoder {
  const opened = new Set<number>();
  /** `choice:index` of custom tool calls: their pieces go in `custom.input`, not `function.arguments`. */
  const customCalls = new Set<string>();
  const chunk = (choice: number, delta: Delta, finish: string | null = null): EncodedChunk => {
    let opening = delta;
    if (!opened.has(choice)) {
      opened.add(choice);
      opening = { role: "assistant", ...delta };
    }
    return {
      id: head.id,
      object: "chat.completion.chunk",
      created: head.created,
      model: head.model,
      choices: [{ index: choice, delta: opening, finish_reason: finish }],
    };
  };
  return {
    encode(event) {
      switch (event.type) {
        case "text":
          return chunk(event.choice, { content: event.text });
        case "reasoning":
          return chunk(event.choice, { reasoning_content: event.text });
        case "refusal":
          return chunk(event.choice, { refusal: event.text });
        case "tool-call-start": {
          const call = event.custom
            ? { index: event.index, id: event.id, type: "custom", custom: { name: event.name, input: "" } }
            : {
                index: event.index,
                id: event.id,
                type: "function",
                function: { name: event.name, arguments: "" },
              };
          if (event.custom) customCalls.add(`${event.choice}:${event.index}`);
          // OpenAI's own opening of a tool-call answer says `content: null`.
          const delta: Delta = opened.has(event.choice)
            ? { tool_calls: [call] }
            : { content: null, tool_calls: [call] };
          return chunk(event.choice, delta);
        }
        case "tool-call-delta": {
          const call = customCalls.has(`${event.choice}:${event.index}`)
            ? { index: event.index, custom: { input: event.input } }
            : { index: event.index, function: { arguments: event.input } };
          return chunk(event.choice, { tool_calls: [call] });
        }
        case "finish":
          // An answer with nothing in it still opens as OpenAI's do: role and empty content.
          return chunk(
            event.choice,
            opened.has(event.choice) ? {} : { content: "" },
            finishToOpenAI(event.reason, event.raw),
          );
        case "usage":
          return {
            id: head.id,
            object: "chat.completion.chunk",
            created: head.created,
            model: head.model,
            choices: [],
            usage: toOpenAIUsage(event.usage),
          };
        default:
          // tool-call-end, reasoning-signature: nothing in OpenAI's stream says them.
          return undefined;
      }
    },
  };
}

/**
 * A whole canonical answer as an OpenAI `chat.completion`. Per choice: text parts joined as
 * `content` (null when the answer is only tool calls or a refusal, as OpenAI writes it), reasoning as
 * `reasoning_content` (DeepSeek's name), `refusal`, `tool_calls`; the finish by
 * {@link finishToOpenAI}. Reasoning signatures have no OpenAI field and are not written.
 */
export function toCompletion(result: GenerationResult, head: AnswerHead): Record<string, unknown> {
  const choices: unknown[] = [];
  for (let c = 0; c < result.choices.length; c++) {
    const choice = result.choices[c];
    if (choice === undefined) continue;
    let text = "";
    let hasText = false;
    let reasoning = "";
    let refusal: string | undefined;
    const toolCalls: unknown[] = [];
    for (const part of choice.content) {
      if (part.type === "text") {
        text += part.text;
        hasText = true;
      } else if (part.type === "reasoning") reasoning += part.text;
      else if (part.type === "refusal") refusal = (refusal ?? "") + part.text;
      else
        toolCalls.push(
          part.custom
            ? { id: part.id, type: "custom", custom: { name: part.name, input: part.input } }
            : { id: part.id, type: "function", function: { name: part.name, arguments: part.input } },
        );
    }
    const message: Record<string, unknown> = {
      role: "assistant",
      content: !hasText && (toolCalls.length > 0 || refusal !== undefined) ? null : text,
    };
    if (reasoning !== "") message.reasoning_content = reasoning;
    if (refusal !== undefined) message.refusal = refusal;
    if (toolCalls.length > 0) message.tool_calls = toolCalls;
    choices.push({
      index: c,
      message,
      logprobs: null,
      finish_reason: finishToOpenAI(choice.finish, choice.rawFinish),
    });
  }
  return {
    id: head.id,
    object: "chat.completion",
    created: head.created,
    model: head.model,
    choices,
    ...(result.usage === undefined ? {} : { usage: toOpenAIUsage(result.usage) }),
  };
}
