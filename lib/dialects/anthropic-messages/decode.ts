/**
 * Anthropic Messages, upstream side: an Anthropic-speaking target's stream events and whole Message
 * in canonical terms (issue 18), for a caller of another dialect (an OpenAI chat caller) served by an
 * `anthropic` or a Claude-on-Bedrock target, and for the engine's reading of any answer (the text for
 * continuation, the finish, usage). A Messages caller served by such a target gets the upstream's
 * own bytes instead.
 *
 * Stream events: https://docs.anthropic.com/en/docs/build-with-claude/streaming. An `error` event is
 * thrown as the provider's {@link UpstreamError} (by {@link errorFromStreamEvent}, the one place
 * stream errors are classified), never decoded as content.
 */
import type { GenerationEvent, GenerationResult } from "../../core/events.ts";
import type { AssistantPart } from "../../core/request.ts";
import { errorFromStreamEvent } from "../../retry/classify.ts";
import { isObject, type Obj } from "../fields.ts";
import { finishFromAnthropic } from "./finish.ts";
import { ANTHROPIC_FAMILY } from "./parse.ts";
import { usageFromAnthropic } from "./usage.ts";

export interface DecodeOptions {
  /** The caller's tool name for a name the target answered with (`ToolNames.fromWire`, request.ts). */
  toolName?: ((wire: string) => string) | undefined;
  /** Named in the error an upstream `error` event is thrown as. */
  providerId?: string | undefined;
}

/** Turns one upstream stream's events (each SSE `data`, parsed) into canonical events, in order. */
export interface EventDecoder {
  /** The events one upstream event says (none for `ping`, `message_stop`, an empty delta). */
  push(event: Obj): GenerationEvent[];
}

type Block =
  | { kind: "text" }
  | { kind: "thinking"; signature: string }
  | { kind: "tool"; index: number }
  | { kind: "other" };

/**
 * A decoder for one upstream stream. Blocks are followed by their `index`: a `text` block's deltas
 * are text, a `thinking` block's are reasoning and its signature (sent whole, or in pieces, before
 * the block's stop) is one `reasoning-signature` at the stop; a `redacted_thinking` block is a
 * `reasoning-signature` with its data; `tool_use` blocks are tool calls numbered in order of
 * appearance, started with their id and name, their `input_json_delta` pieces as deltas, ended at the
 * block's stop. A server tool's blocks (`server_tool_use`, `web_search_tool_result`) have no
 * canonical event and are skipped. `message_start` gives a first `usage` (the prompt's figures),
 * `message_delta` the whole usage (figures it repeats replace the start's) and the finish, with the
 * upstream's name as `raw`. Each `usage` event is the answer's usage so far; the last is the total.
 */
export function createEventDecoder(options: DecodeOptions = {}): EventDecoder {
  const toolName = options.toolName ?? ((name: string) => name);
  const blocks = new Map<number, Block>();
  let calls = 0;
  let usage: Obj = {};
  return {
    push(event) {
      const events: GenerationEvent[] = [];
      switch (event.type) {
        case "message_start": {
          const message = isObject(event.message) ? event.message : {};
          if (isObject(message.usage)) {
            usage = { ...message.usage };
            events.push({ type: "usage", usage: usageFromAnthropic(usage) });
          }
          break;
        }
        case "content_block_start": {
          const index = typeof event.index === "number" ? event.index : blocks.size;
          const block = isObject(event.content_block) ? event.content_block : {};
          if (block.type === "text") {
            blocks.set(index, { kind: "text" });
            // A start may carry text already (the API sends it empty; other servers need not).
            if (nonEmpty(block.text)) events.push({ type: "text", choice: 0, text: block.text });
          } else if (block.type === "thinking") {
            blocks.set(index, {
              kind: "thinking",
              signature: typeof block.signature === "string" ? block.signature : "",
            });
            if (nonEmpty(block.thinking)) events.push({ type: "reasoning", choice: 0, text: block.thinking });
          } else if (block.type === "redacted_thinking") {
            blocks.set(index, { kind: "other" });
            if (typeof block.data === "string")
              events.push({
                type: "reasoning-signature",
                choice: 0,
                redacted: block.data,
                family: ANTHROPIC_FAMILY,
              });
          } else if (block.type === "tool_use") {
            const call = calls++;
            blocks.set(index, { kind: "tool", index: call });
            events.push({
              type: "tool-call-start",
              choice: 0,
              index: call,
              id: typeof block.id === "string" ? block.id : `toolu_${call}`,
              name: toolName(typeof block.name === "string" ? block.name : ""),
            });
            // The API starts a call with `input: {}`; a non-empty input is the call's whole input.
            if (isObject(block.input) && Object.keys(block.input).length > 0)
              events.push({
                type: "tool-call-delta",
                choice: 0,
                index: call,
                input: JSON.stringify(block.input),
              });
          } else blocks.set(index, { kind: "other" });
          break;
        }
        case "content_block_delta": {
          const block = typeof event.index === "number" ? blocks.get(event.index) : undefined;
          const delta = isObject(event.delta) ? event.delta : {};
          if (block === undefined) break;
          if (delta.type === "text_delta" && block.kind === "text" && nonEmpty(delta.text))
            events.push({ type: "text", choice: 0, text: delta.text });
          else if (delta.type === "thinking_delta" && block.kind === "thinking" && nonEmpty(delta.thinking))
            events.push({ type: "reasoning", choice: 0, text: delta.thinking });
          else if (delta.type === "signature_delta" && block.kind === "thinking" && nonEmpty(delta.signature))
            block.signature += delta.signature;
          else if (delta.type === "input_json_delta" && block.kind === "tool" && nonEmpty(delta.partial_json))
            events.push({
              type: "tool-call-delta",
              choice: 0,
              index: block.index,
              input: delta.partial_json,
            });
          // `citations_delta` and any later kind: nothing canonical says them.
          break;
        }
        case "content_block_stop": {
          const block = typeof event.index === "number" ? blocks.get(event.index) : undefined;
          if (block?.kind === "tool") events.push({ type: "tool-call-end", choice: 0, index: block.index });
          else if (block?.kind === "thinking" && block.signature !== "")
            events.push({
              type: "reasoning-signature",
              choice: 0,
              signature: block.signature,
              family: ANTHROPIC_FAMILY,
            });
          break;
        }
        case "message_delta": {
          if (isObject(event.usage)) {
            for (const key of Object.keys(event.usage)) {
              const value = event.usage[key];
              if (value !== null && value !== undefined) usage[key] = value;
            }
            events.push({ type: "usage", usage: usageFromAnthropic(usage) });
          }
          const delta = isObject(event.delta) ? event.delta : {};
          if (nonEmpty(delta.stop_reason))
            events.push({
              type: "finish",
              choice: 0,
              reason: finishFromAnthropic(delta.stop_reason),
              raw: delta.stop_reason,
            });
          break;
        }
        case "error":
          // `{type: "error", error: {type, message}}`: the inner object is the error, as in OpenAI's.
          throw errorFromStreamEvent(options.providerId ?? "anthropic", event.error);
        default:
          // `ping`, `message_stop` and any later event type.
          break;
      }
      return events;
    },
  };
}

/**
 * A whole Messages `message` in canonical terms: its text, thinking (signed, family `anthropic`),
 * redacted thinking and tool calls in order, the finish and usage. Server tools' blocks are skipped.
 */
export function fromMessage(json: Obj, options: Pick<DecodeOptions, "toolName"> = {}): GenerationResult {
  const toolName = options.toolName ?? ((name: string) => name);
  const content: AssistantPart[] = [];
  const blocks = Array.isArray(json.content) ? json.content : [];
  for (let j = 0; j < blocks.length; j++) {
    const block: unknown = blocks[j];
    if (!isObject(block)) continue;
    if (block.type === "text" && typeof block.text === "string")
      content.push({ type: "text", text: block.text });
    else if (block.type === "thinking" && typeof block.thinking === "string") {
      const signature =
        typeof block.signature === "string" && block.signature !== "" ? block.signature : undefined;
      content.push(
        signature === undefined
          ? { type: "reasoning", text: block.thinking }
          : { type: "reasoning", text: block.thinking, signature, family: ANTHROPIC_FAMILY },
      );
    } else if (block.type === "redacted_thinking" && typeof block.data === "string")
      content.push({ type: "reasoning", text: "", redacted: block.data, family: ANTHROPIC_FAMILY });
    else if (block.type === "tool_use")
      content.push({
        type: "tool-call",
        id: typeof block.id === "string" ? block.id : `toolu_${j}`,
        name: toolName(typeof block.name === "string" ? block.name : ""),
        input: block.input === undefined ? "{}" : JSON.stringify(block.input),
      });
  }
  const raw = typeof json.stop_reason === "string" ? json.stop_reason : undefined;
  const result: GenerationResult = {
    model: typeof json.model === "string" ? json.model : "",
    choices: [
      {
        content,
        finish: raw === undefined ? "other" : finishFromAnthropic(raw),
        ...(raw === undefined ? {} : { rawFinish: raw }),
      },
    ],
  };
  if (typeof json.id === "string") result.id = json.id;
  if (isObject(json.usage)) result.usage = usageFromAnthropic(json.usage);
  return result;
}

function nonEmpty(value: unknown): value is string {
  return typeof value === "string" && value !== "";
}
