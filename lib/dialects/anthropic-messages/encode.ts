/**
 * Anthropic Messages, caller side: canonical events and results in the Messages wire shapes
 * (issue 18), for a Messages caller (Claude Code, the Anthropic SDKs) served by a target of another
 * dialect (an OpenAI-compatible server, Bedrock Converse). A caller served by an Anthropic-speaking
 * target gets the upstream's own bytes instead.
 *
 * The stream's grammar (https://docs.anthropic.com/en/docs/build-with-claude/streaming) holds
 * whatever events arrive, because a client that meets a broken one fails the whole turn:
 * `message_start` first, with a prompt size that is never zero (Claude Code refuses zeroed usage,
 * LiteLLM #24176); a block started before any delta ("Content block not found", LiteLLM #13373),
 * indexes increasing, one block open at a time and stopped before the next starts; a thinking
 * block's `signature_delta` before its stop; `message_delta` with the stop reason and usage, then
 * `message_stop`, only for a whole answer. A failed answer ends with an `error` event and never with
 * `message_stop`: a cut answer must not look like a finished one.
 */
import type { GenerationEvent, GenerationResult } from "../../core/events.ts";
import type { AssistantPart } from "../../core/request.ts";
import { estimateTokens, type Usage } from "../../core/usage.ts";
import { streamEndedIncomplete } from "../../errors.ts";
import { toAnthropicError } from "./errors.ts";
import { finishToAnthropic } from "./finish.ts";
import { ANTHROPIC_FAMILY } from "./parse.ts";
import { type AnthropicUsage, toAnthropicUsage } from "./usage.ts";

type Obj = Record<string, unknown>;

/** Identity of one answer: its id (`msg_…`), the model named to the caller, the prompt's size. */
export interface MessageHead {
  id: string;
  model: string;
  /** The prompt's tokens, estimated (`estimateTokens`) when the upstream says them only at the end. */
  inputTokens: number;
}

/** Turns one answer's canonical events into Messages SSE frames (`event: <type>\ndata: <json>\n\n`). */
export interface MessageStreamEncoder {
  /** The frames one event is written as ("" for none). The first frame of all is `message_start`. */
  push(event: GenerationEvent): string;
  /**
   * The frames that close a whole answer: the open block's stop, `message_delta` (stop reason,
   * usage), `message_stop`. Without a `finish` event first the answer is not whole, and this is
   * {@link MessageStreamEncoder.fail} with a cut stream's error instead.
   */
  end(): string;
  /**
   * The `error` frame for a failed answer. Nothing open is stopped (that would say it was complete)
   * and no `message_stop` is ever written after it; every later call writes nothing.
   */
  fail(error: unknown): string;
  /** A `ping` frame, for a caller waiting on a slow upstream (after `message_start`). */
  ping(): string;
  /** True once `message_stop` or an error frame is written: the stream is over. */
  readonly closed: boolean;
}

type Live =
  | { kind: "text"; index: number }
  | { kind: "thinking"; index: number }
  | { kind: "tool"; index: number; call: number };

interface Call {
  id: string;
  name: string;
  /** Input that arrived while the call waited for the block before it to stop. */
  pending: string;
  state: "queued" | "live" | "stopped";
  ended: boolean;
}

/**
 * An encoder for one streamed answer. Only choice 0 is written (Messages has no `n`). Text and a
 * refusal are `text` blocks, reasoning a `thinking` block whose signature (family `anthropic` only:
 * another family's would be refused when the caller sends it back) is its `signature_delta`, redacted
 * reasoning a `redacted_thinking` block. Tool calls are `tool_use` blocks, one at a time: a call that
 * starts while another is open waits, its input kept, until that one ends, so calls interleaved by an
 * OpenAI-compatible upstream reach the caller whole and in order. The last `usage` event is the
 * answer's; without one, output is estimated from what was written and the prompt is `inputTokens`.
 */
export function createMessageStreamEncoder(head: MessageHead): MessageStreamEncoder {
  let started = false;
  let closed = false;
  let nextIndex = 0;
  let live: Live | undefined;
  const calls = new Map<number, Call>();
  const queue: number[] = [];
  let finish: { reason: string } | undefined;
  let usage: Usage | undefined;
  let outputChars = 0;
  let out = "";

  const write = (type: string, data: object) => {
    out += `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
  };
  const start = () => {
    if (started) return;
    started = true;
    write("message_start", {
      type: "message_start",
      message: {
        id: head.id,
        type: "message",
        role: "assistant",
        model: head.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...promptUsage(usage, head.inputTokens), output_tokens: 1 },
      },
    });
  };
  const open = (block: Obj): number => {
    const index = nextIndex++;
    write("content_block_start", { type: "content_block_start", index, content_block: block });
    return index;
  };
  const delta = (index: number, body: Obj) => {
    write("content_block_delta", { type: "content_block_delta", index, delta: body });
  };
  const stopLive = () => {
    if (live === undefined) return;
    if (live.kind === "tool") {
      const call = calls.get(live.call);
      if (call !== undefined) call.state = "stopped";
    }
    write("content_block_stop", { type: "content_block_stop", index: live.index });
    live = undefined;
  };
  const openCall = (i: number) => {
    const call = calls.get(i);
    if (call === undefined) return;
    live = {
      kind: "tool",
      index: open({ type: "tool_use", id: call.id, name: call.name, input: {} }),
      call: i,
    };
    call.state = "live";
    if (call.pending !== "") {
      delta(live.index, { type: "input_json_delta", partial_json: call.pending });
      call.pending = "";
    }
    if (call.ended) stopLive();
  };
  /** The calls that waited, each opened in turn, until one is open and not yet ended. */
  const promote = () => {
    while (live === undefined && queue.length > 0) {
      const next = queue.shift();
      if (next !== undefined) openCall(next);
    }
  };
  /** Before a block of another kind (or the end): every call stopped, the waiting ones written whole. */
  const settle = () => {
    stopLive();
    while (queue.length > 0) {
      const next = queue.shift();
      if (next !== undefined) openCall(next);
      stopLive();
    }
  };
  const text = (piece: string) => {
    if (piece === "") return;
    if (live?.kind !== "text") {
      settle();
      live = { kind: "text", index: open({ type: "text", text: "" }) };
    }
    outputChars += piece.length;
    delta(live.index, { type: "text_delta", text: piece });
  };
  const take = (): string => {
    const frames = out;
    out = "";
    return frames;
  };

  const encoder: MessageStreamEncoder = {
    get closed() {
      return closed;
    },
    push(event) {
      if (closed) return "";
      if (event.type === "usage") {
        usage = event.usage;
        return "";
      }
      if (event.choice !== 0 || finish !== undefined) return "";
      start();
      switch (event.type) {
        case "text":
        case "refusal":
          text(event.text);
          break;
        case "reasoning":
          if (event.text === "") break;
          if (live?.kind !== "thinking") {
            settle();
            live = { kind: "thinking", index: open({ type: "thinking", thinking: "" }) };
          }
          outputChars += event.text.length;
          delta(live.index, { type: "thinking_delta", thinking: event.text });
          break;
        case "reasoning-signature":
          if (event.family !== ANTHROPIC_FAMILY) {
            // Another family's signature is not the caller's to send back: the block ends unsigned.
            if (live?.kind === "thinking") stopLive();
            break;
          }
          if (event.redacted !== undefined) {
            settle();
            live = { kind: "thinking", index: open({ type: "redacted_thinking", data: event.redacted }) };
            stopLive();
            break;
          }
          if (event.signature === undefined) break;
          if (live?.kind !== "thinking") {
            settle();
            live = { kind: "thinking", index: open({ type: "thinking", thinking: "" }) };
          }
          delta(live.index, { type: "signature_delta", signature: event.signature });
          stopLive();
          break;
        case "tool-call-start": {
          if (calls.has(event.index)) break;
          calls.set(event.index, {
            id: event.id,
            name: event.name,
            pending: "",
            state: "queued",
            ended: false,
          });
          if (live?.kind === "tool") queue.push(event.index);
          else {
            settle();
            openCall(event.index);
          }
          break;
        }
        case "tool-call-delta": {
          const call = calls.get(event.index);
          if (call === undefined || event.input === "") break;
          outputChars += event.input.length;
          if (call.state === "queued") call.pending += event.input;
          else if (call.state === "live" && live?.kind === "tool")
            delta(live.index, { type: "input_json_delta", partial_json: event.input });
          // A piece for a call already stopped (after its own end) has no block left to go in.
          break;
        }
        case "tool-call-end": {
          const call = calls.get(event.index);
          if (call === undefined) break;
          call.ended = true;
          if (call.state === "live") {
            stopLive();
            promote();
          }
          break;
        }
        case "finish":
          settle();
          finish = { reason: finishToAnthropic(event.reason, event.raw) };
          break;
      }
      return take();
    },
    end() {
      if (closed) return "";
      if (finish === undefined) return encoder.fail(streamEndedIncomplete());
      start();
      settle();
      const final: AnthropicUsage =
        usage === undefined
          ? { ...promptUsage(undefined, head.inputTokens), output_tokens: estimateTokens(outputChars) }
          : toAnthropicUsage(usage);
      write("message_delta", {
        type: "message_delta",
        delta: { stop_reason: finish.reason, stop_sequence: null },
        usage: final,
      });
      write("message_stop", { type: "message_stop" });
      closed = true;
      return take();
    },
    fail(error) {
      if (closed) return "";
      closed = true;
      write("error", toAnthropicError(error).body);
      return take();
    },
    ping() {
      if (closed) return "";
      start();
      write("ping", { type: "ping" });
      return take();
    },
  };
  return encoder;
}

/**
 * The prompt's part of `usage`: the upstream's figures when they came first, else the estimate.
 * Never all zero: a prompt always has tokens, and Claude Code refuses a `message_start` that says none.
 */
function promptUsage(usage: Usage | undefined, estimate: number): Omit<AnthropicUsage, "output_tokens"> {
  if (usage !== undefined && usage.inputTokens > 0) {
    const { output_tokens: _, ...prompt } = toAnthropicUsage(usage);
    return prompt;
  }
  return {
    input_tokens: Math.max(1, Math.floor(estimate)),
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
  };
}

/**
 * A whole canonical answer as a Messages `message` (choice 0): text and refusals as `text` blocks,
 * reasoning as `thinking` (its signature only when family `anthropic`) or `redacted_thinking`, tool
 * calls as `tool_use` with their input parsed (`{}` for text that is not a JSON object), the stop
 * reason by {@link finishToAnthropic}, and usage (estimated, as the stream's, when absent).
 */
export function toMessage(result: GenerationResult, head: MessageHead): Obj {
  const choice = result.choices[0];
  const content: Obj[] = [];
  let outputChars = 0;
  for (const part of choice?.content ?? []) {
    const block = blockOf(part);
    if (block === undefined) continue;
    outputChars += part.type === "tool-call" ? part.input.length : part.text.length;
    content.push(block);
  }
  const usage: AnthropicUsage =
    result.usage === undefined
      ? { ...promptUsage(undefined, head.inputTokens), output_tokens: estimateTokens(outputChars) }
      : toAnthropicUsage(result.usage);
  return {
    id: head.id,
    type: "message",
    role: "assistant",
    model: head.model,
    content,
    stop_reason: choice === undefined ? "end_turn" : finishToAnthropic(choice.finish, choice.rawFinish),
    stop_sequence: null,
    usage,
  };
}

function blockOf(part: AssistantPart): Obj | undefined {
  switch (part.type) {
    case "text":
    case "refusal":
      return part.text === "" ? undefined : { type: "text", text: part.text };
    case "reasoning": {
      const signed = part.family === ANTHROPIC_FAMILY;
      if (part.redacted !== undefined)
        return signed ? { type: "redacted_thinking", data: part.redacted } : undefined;
      const block: Obj = { type: "thinking", thinking: part.text };
      if (signed && part.signature !== undefined) block.signature = part.signature;
      return block;
    }
    case "tool-call":
      return { type: "tool_use", id: part.id, name: part.name, input: objectOf(part.input) };
  }
}

function objectOf(input: string): unknown {
  try {
    const value: unknown = JSON.parse(input);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value;
  } catch {
    // not JSON: an empty input
  }
  return {};
}
