/**
 * OpenAI Chat Completions, upstream side: an OpenAI-compatible server's stream chunks and whole
 * completions in canonical terms (issue 17), for a caller of another dialect (Anthropic Messages,
 * Responses) served by an OpenAI-compatible target, and for the engine's reading of any answer.
 *
 * Chunk object: https://platform.openai.com/docs/api-reference/chat-streaming/streaming. An error
 * event inside a stream never reaches this decoder: the provider throws it
 * (`errorFromStreamEvent`, lib/retry/classify.ts) before any chunk is decoded.
 */
import type { GenerationEvent, GenerationResult } from "../../core/events.ts";
import type { AssistantPart, ToolCallPart } from "../../core/request.ts";
import { isObject, type Obj } from "../fields.ts";
import { finishFromOpenAI } from "./finish.ts";
import { type ChatChunk, usageFromOpenAI } from "./wire.ts";

/** Turns one upstream stream's chunks into canonical events, in order. */
export interface ChunkDecoder {
  /** The events one chunk says (none for a role-only opening or an empty piece). */
  push(chunk: ChatChunk): GenerationEvent[];
}

/** One tool call of one choice, as the upstream numbers it (`key`) and as the canonical events do. */
interface OpenCall {
  index: number;
  id: string;
  ended: boolean;
}

interface ChoiceState {
  /** Calls by the upstream's key: its `index`, or the call's id when the upstream sends no index. */
  calls: Map<number | string, OpenCall>;
  /** Calls in order of appearance (canonical `index` = position), to end them in order. */
  order: OpenCall[];
  lastKey: number | string | undefined;
}

/**
 * A decoder for one upstream stream. Tool calls are numbered per choice in order of appearance; the
 * first delta of a call (the one with its `id` and `function.name`) gives `tool-call-start`, each
 * non-empty `arguments` piece a `tool-call-delta`, and the choice's `finish_reason` ends every call
 * still open before the `finish` event. Usage, on a chunk of its own (OpenAI) or on the finish chunk
 * (DeepSeek), comes after that chunk's choice events.
 */
export function createChunkDecoder(): ChunkDecoder {
  const choices = new Map<number, ChoiceState>();
  const stateOf = (choice: number): ChoiceState => {
    let state = choices.get(choice);
    if (state === undefined) {
      state = { calls: new Map(), order: [], lastKey: undefined };
      choices.set(choice, state);
    }
    return state;
  };
  return {
    push(chunk) {
      const events: GenerationEvent[] = [];
      const list = Array.isArray(chunk.choices) ? chunk.choices : [];
      for (let c = 0; c < list.length; c++) {
        const item = list[c];
        if (item === undefined || item === null) continue;
        const choice = typeof item.index === "number" ? item.index : c;
        const delta = item.delta;
        if (delta !== undefined && delta !== null) {
          if (nonEmpty(delta.reasoning_content))
            events.push({ type: "reasoning", choice, text: delta.reasoning_content });
          if (nonEmpty(delta.content)) events.push({ type: "text", choice, text: delta.content });
          if (nonEmpty(delta.refusal)) events.push({ type: "refusal", choice, text: delta.refusal });
          if (Array.isArray(delta.tool_calls)) {
            const state = stateOf(choice);
            for (const call of delta.tool_calls) toolCallDelta(call, choice, state, events);
          }
        }
        if (nonEmpty(item.finish_reason)) {
          const state = choices.get(choice);
          if (state !== undefined) {
            for (const call of state.order) {
              if (call.ended) continue;
              call.ended = true;
              events.push({ type: "tool-call-end", choice, index: call.index });
            }
          }
          const raw = item.finish_reason;
          events.push({ type: "finish", choice, reason: finishFromOpenAI(raw), raw });
        }
      }
      if (isObject(chunk.usage)) events.push({ type: "usage", usage: usageFromOpenAI(chunk.usage) });
      return events;
    },
  };
}

/**
 * One element of a delta's `tool_calls`: `{index, id?, type?, function?: {name?, arguments?}}`, or a
 * custom tool's `{index, id?, type: "custom", custom?: {name?, input?}}`. A server that sends no
 * `index` (some OpenAI-compatible ones) is followed by id: a new id is a new call, none continues the
 * last. A known index arriving with another id is a new call too (servers that number every call 0).
 */
function toolCallDelta(value: unknown, choice: number, state: ChoiceState, events: GenerationEvent[]): void {
  if (!isObject(value)) return;
  const id = typeof value.id === "string" && value.id !== "" ? value.id : undefined;
  const key = typeof value.index === "number" ? value.index : (id ?? state.lastKey ?? 0);
  const custom = value.type === "custom" || isObject(value.custom);
  const body = custom ? value.custom : value.function;
  const fields: Obj = isObject(body) ? body : {};
  let call = state.calls.get(key);
  if (call === undefined || (id !== undefined && id !== call.id)) {
    const index = state.order.length;
    call = { index, id: id ?? `call_${choice}_${index}`, ended: false };
    state.calls.set(key, call);
    state.order.push(call);
    const name = typeof fields.name === "string" ? fields.name : "";
    events.push({
      type: "tool-call-start",
      choice,
      index,
      id: call.id,
      name,
      ...(custom ? { custom: true } : {}),
    });
  }
  state.lastKey = key;
  const piece = custom ? fields.input : fields.arguments;
  if (nonEmpty(piece)) events.push({ type: "tool-call-delta", choice, index: call.index, input: piece });
}

/**
 * A whole `chat.completion` in canonical terms: per choice its reasoning (`reasoning_content`), text,
 * refusal and tool calls, and the finish; usage read by {@link usageFromOpenAI}.
 */
export function fromCompletion(json: Record<string, unknown>): GenerationResult {
  const result: GenerationResult = { model: typeof json.model === "string" ? json.model : "", choices: [] };
  if (typeof json.id === "string") result.id = json.id;
  const list = Array.isArray(json.choices) ? json.choices : [];
  for (let c = 0; c < list.length; c++) {
    const item: unknown = list[c];
    if (!isObject(item)) continue;
    const message = isObject(item.message) ? item.message : {};
    const raw = typeof item.finish_reason === "string" ? item.finish_reason : undefined;
    result.choices.push({
      content: messageParts(message),
      finish: raw === undefined ? "other" : finishFromOpenAI(raw),
      ...(raw === undefined ? {} : { rawFinish: raw }),
    });
  }
  if (isObject(json.usage)) result.usage = usageFromOpenAI(json.usage);
  return result;
}

function messageParts(message: Obj): AssistantPart[] {
  const parts: AssistantPart[] = [];
  if (nonEmpty(message.reasoning_content)) parts.push({ type: "reasoning", text: message.reasoning_content });
  const content = message.content;
  if (nonEmpty(content)) parts.push({ type: "text", text: content });
  else if (Array.isArray(content)) {
    // Some compatible servers answer with text parts.
    for (const part of content) {
      if (isObject(part) && part.type === "text" && nonEmpty(part.text))
        parts.push({ type: "text", text: part.text });
    }
  }
  if (nonEmpty(message.refusal)) parts.push({ type: "refusal", text: message.refusal });
  const calls = message.tool_calls;
  if (Array.isArray(calls)) {
    for (let j = 0; j < calls.length; j++) {
      const call = completedCall(calls[j], j);
      if (call !== undefined) parts.push(call);
    }
  }
  return parts;
}

function completedCall(value: unknown, j: number): ToolCallPart | undefined {
  if (!isObject(value)) return undefined;
  const id = typeof value.id === "string" ? value.id : `call_0_${j}`;
  if (value.type === "custom" && isObject(value.custom)) {
    const { name, input } = value.custom;
    return {
      type: "tool-call",
      id,
      name: typeof name === "string" ? name : "",
      input: typeof input === "string" ? input : "",
      custom: true,
    };
  }
  if (!isObject(value.function)) return undefined;
  const { name, arguments: args } = value.function;
  return {
    type: "tool-call",
    id,
    name: typeof name === "string" ? name : "",
    input: typeof args === "string" ? args : "",
  };
}

function nonEmpty(value: unknown): value is string {
  return typeof value === "string" && value !== "";
}
