/**
 * OpenAI Responses, upstream side: a Responses server's stream events and response objects in
 * canonical terms (issue 19), for an OpenAI target declared to speak Responses (`responsesApi`) when
 * it serves a Responses caller: the engine reads a passed-through answer through these (text for a
 * continuation, the finish, usage). Events: https://platform.openai.com/docs/api-reference/responses-streaming.
 *
 * A failure inside the stream (`response.failed`, `error`) is not decoded: the provider reads it
 * with {@link streamFailure} and throws its classified error first, as it does for chat streams.
 */
import type { FinishReason, GenerationEvent, GenerationResult } from "../../core/events.ts";
import type { AssistantPart } from "../../core/request.ts";
import type { Usage } from "../../core/usage.ts";
import { isObject, type Obj } from "../fields.ts";
import { openReasoning } from "./reasoning.ts";

/** Turns one upstream Responses stream's events (the parsed `data:` JSON) into canonical events. */
export interface ResponseEventDecoder {
  push(event: unknown): GenerationEvent[];
}

interface CallState {
  index: number;
  /** Whether any delta came: a server that sends only the `.done` gets its text from there. */
  streamed: boolean;
  ended: boolean;
}

/**
 * A decoder for one upstream stream. Text, refusal and reasoning deltas (raw or summary) become
 * their canonical events; a `function_call` or `custom_tool_call` item opens a tool call (numbered in
 * order of appearance), its deltas follow, its `output_item.done` ends it. A reasoning item's
 * `encrypted_content`, on its `output_item.done`, is the block's signature. The terminal event
 * (`response.completed`, `response.incomplete`) gives usage then the finish: `tool-calls` when the
 * answer called a tool, `length` or `content-filter` for an incomplete one, `stop` otherwise.
 */
export function createResponseEventDecoder(): ResponseEventDecoder {
  const calls = new Map<string, CallState>();
  let callCount = 0;
  const callOf = (itemId: unknown): CallState | undefined =>
    typeof itemId === "string" ? calls.get(itemId) : undefined;
  return {
    push(value) {
      const events: GenerationEvent[] = [];
      if (!isObject(value)) return events;
      switch (value.type) {
        case "response.output_text.delta":
          if (nonEmpty(value.delta)) events.push({ type: "text", choice: 0, text: value.delta });
          break;
        case "response.refusal.delta":
          if (nonEmpty(value.delta)) events.push({ type: "refusal", choice: 0, text: value.delta });
          break;
        case "response.reasoning_text.delta":
        case "response.reasoning_summary_text.delta":
          if (nonEmpty(value.delta)) events.push({ type: "reasoning", choice: 0, text: value.delta });
          break;
        case "response.output_item.added": {
          const item = value.item;
          if (!isObject(item) || typeof item.id !== "string") break;
          if (item.type !== "function_call" && item.type !== "custom_tool_call") break;
          const state: CallState = { index: callCount++, streamed: false, ended: false };
          calls.set(item.id, state);
          events.push({
            type: "tool-call-start",
            choice: 0,
            index: state.index,
            id: typeof item.call_id === "string" ? item.call_id : item.id,
            name: typeof item.name === "string" ? item.name : "",
            ...(item.type === "custom_tool_call" ? { custom: true } : {}),
          });
          break;
        }
        case "response.function_call_arguments.delta":
        case "response.custom_tool_call_input.delta": {
          const state = callOf(value.item_id);
          if (state === undefined || !nonEmpty(value.delta)) break;
          state.streamed = true;
          events.push({ type: "tool-call-delta", choice: 0, index: state.index, input: value.delta });
          break;
        }
        case "response.output_item.done": {
          const item = value.item;
          if (!isObject(item)) break;
          if (item.type === "reasoning") {
            if (nonEmpty(item.encrypted_content)) events.push(signatureEvent(item.encrypted_content));
            break;
          }
          const state = callOf(item.id);
          if (state === undefined || state.ended) break;
          state.ended = true;
          const text = item.type === "custom_tool_call" ? item.input : item.arguments;
          if (!state.streamed && nonEmpty(text))
            events.push({ type: "tool-call-delta", choice: 0, index: state.index, input: text });
          events.push({ type: "tool-call-end", choice: 0, index: state.index });
          break;
        }
        case "response.completed":
        case "response.incomplete": {
          const response = isObject(value.response) ? value.response : {};
          for (const state of calls.values()) {
            if (state.ended) continue;
            state.ended = true;
            events.push({ type: "tool-call-end", choice: 0, index: state.index });
          }
          if (isObject(response.usage))
            events.push({ type: "usage", usage: usageFromResponses(response.usage) });
          const { reason, raw } = finishOf(response, callCount > 0);
          events.push({ type: "finish", choice: 0, reason, raw });
          break;
        }
      }
      return events;
    },
  };
}

/** The error a failed stream event says (`response.failed`'s `response.error`, or an `error` event). */
export function streamFailure(event: unknown): { code: string | null; message: string } | undefined {
  if (!isObject(event)) return undefined;
  let error: unknown;
  if (event.type === "response.failed") error = isObject(event.response) ? event.response.error : undefined;
  else if (event.type === "error") error = event;
  else return undefined;
  if (!isObject(error)) return { code: null, message: "The upstream response failed." };
  return {
    code: typeof error.code === "string" ? error.code : null,
    message: typeof error.message === "string" ? error.message : "The upstream response failed.",
  };
}

/**
 * Responses usage in canonical terms. Input counts cached tokens too (`input_tokens_details.cached_tokens`);
 * the API has no figure for cache writes.
 */
export function usageFromResponses(usage: Obj): Usage {
  const input = isObject(usage.input_tokens_details) ? usage.input_tokens_details : {};
  const output = isObject(usage.output_tokens_details) ? usage.output_tokens_details : {};
  return {
    inputTokens: count(usage.input_tokens),
    outputTokens: count(usage.output_tokens),
    cacheReadTokens: count(input.cached_tokens),
    cacheWriteTokens: 0,
    reasoningTokens: count(output.reasoning_tokens),
  };
}

/** The finish of a response: its status, `incomplete_details.reason`, and whether it called a tool. */
function finishOf(response: Obj, calledTool: boolean): { reason: FinishReason; raw: string } {
  const status = typeof response.status === "string" ? response.status : "completed";
  if (status === "incomplete") {
    const details = isObject(response.incomplete_details) ? response.incomplete_details : {};
    const why = typeof details.reason === "string" ? details.reason : "max_output_tokens";
    return { reason: why === "content_filter" ? "content-filter" : "length", raw: why };
  }
  if (status !== "completed") return { reason: "other", raw: status };
  return { reason: calledTool ? "tool-calls" : "stop", raw: status };
}

function signatureEvent(encrypted: string): GenerationEvent {
  const seal = openReasoning(encrypted);
  return {
    type: "reasoning-signature",
    choice: 0,
    family: seal.family,
    ...(seal.signature === undefined ? {} : { signature: seal.signature }),
    ...(seal.redacted === undefined ? {} : { redacted: seal.redacted }),
  };
}

/** A whole response object in canonical terms: its output items as parts, its finish and usage. */
export function fromResponse(json: Obj): GenerationResult {
  const result: GenerationResult = { model: typeof json.model === "string" ? json.model : "", choices: [] };
  if (typeof json.id === "string") result.id = json.id;
  const content: AssistantPart[] = [];
  let calledTool = false;
  const output = Array.isArray(json.output) ? json.output : [];
  for (const item of output) {
    if (!isObject(item)) continue;
    if (item.type === "message" && Array.isArray(item.content)) {
      for (const part of item.content) {
        if (!isObject(part)) continue;
        if (part.type === "output_text" && nonEmpty(part.text))
          content.push({ type: "text", text: part.text });
        else if (part.type === "refusal" && nonEmpty(part.refusal))
          content.push({ type: "refusal", text: part.refusal });
      }
    } else if (item.type === "reasoning") {
      content.push(reasoningOf(item));
    } else if (item.type === "function_call" || item.type === "custom_tool_call") {
      calledTool = true;
      const custom = item.type === "custom_tool_call";
      const text = custom ? item.input : item.arguments;
      content.push({
        type: "tool-call",
        id: typeof item.call_id === "string" ? item.call_id : typeof item.id === "string" ? item.id : "",
        name: typeof item.name === "string" ? item.name : "",
        input: typeof text === "string" ? text : "",
        ...(custom ? { custom: true } : {}),
      });
    }
  }
  const { reason, raw } = finishOf(json, calledTool);
  result.choices.push({ content, finish: reason, rawFinish: raw });
  if (isObject(json.usage)) result.usage = usageFromResponses(json.usage);
  return result;
}

function reasoningOf(item: Obj): AssistantPart {
  let text = "";
  const pieces = Array.isArray(item.content) && item.content.length > 0 ? item.content : item.summary;
  if (Array.isArray(pieces)) {
    for (const piece of pieces) if (isObject(piece) && typeof piece.text === "string") text += piece.text;
  }
  if (!nonEmpty(item.encrypted_content)) return { type: "reasoning", text, family: "openai" };
  const seal = openReasoning(item.encrypted_content);
  return {
    type: "reasoning",
    text,
    family: seal.family,
    ...(seal.signature === undefined ? {} : { signature: seal.signature }),
    ...(seal.redacted === undefined ? {} : { redacted: seal.redacted }),
  };
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;
}

function nonEmpty(value: unknown): value is string {
  return typeof value === "string" && value !== "";
}
