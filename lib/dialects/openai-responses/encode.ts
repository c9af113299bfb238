/**
 * OpenAI Responses, caller side: canonical events and results in the Responses wire shapes
 * (issue 19), for a Responses caller served by a target of another dialect (OpenAI-compatible
 * chat, Bedrock, Anthropic). Response object: https://platform.openai.com/docs/api-reference/responses/object;
 * stream events: https://platform.openai.com/docs/api-reference/responses-streaming.
 *
 * Output items, in the order the answer produces them:
 * - text and refusal pieces: one `message` item, with an `output_text` or `refusal` content part
 *   per run of pieces;
 * - a tool call: a `function_call` item, or a `custom_tool_call` item for a custom call or for a
 *   function call to one of the caller's custom tools (a target that only knows functions received
 *   it as a function of one string parameter: `custom-tools.ts`);
 * - reasoning: a `reasoning` item per block. Its text is written as raw reasoning (`content` of
 *   `reasoning_text`, `response.reasoning_text.*`: the events the SDK's `ResponseStream` gathers, and
 *   what the target produced), or, when the caller asked for a summary (`reasoning.summary`), as the
 *   item's one summary part (`response.reasoning_summary_*`: what Codex shows). A block's signature
 *   is its `encrypted_content` (sealed for a family other than OpenAI's: `reasoning.ts`), written
 *   whether or not `include` asked, so a caller without stored responses can send it back.
 *
 * A whole answer ends `response.completed`; a length stop `response.incomplete` with
 * `incomplete_details.reason: "max_output_tokens"` (a content filter, `content_filter`); a failure,
 * or a stream that ends before its finish, `response.failed` with the error. Never two of these.
 * `output_text` is the SDK's convenience (it computes it from `output`): the API does not send it,
 * and neither does the gateway.
 */
import type { FinishReason, GenerationEvent, GenerationResult } from "../../core/events.ts";
import type { AssistantPart } from "../../core/request.ts";
import type { Usage } from "../../core/usage.ts";
import { customInputOf } from "./custom-tools.ts";
import { type ResponseErrorObject, toResponseError } from "./errors.ts";
import type { ResponseEcho } from "./parse.ts";
import { sealReasoning } from "./reasoning.ts";

type Obj = Record<string, unknown>;

/** Identity of one response, shared by its object or every event of its stream. */
export interface ResponseHead {
  /** `resp_...`: item ids are made from it (`msg_<rest>_<output index>`). */
  id: string;
  model: string;
  /** Seconds since the epoch. */
  createdAt: number;
  /** The request fields the response object repeats (`parseResponsesRequest(...).echo`). */
  echo: ResponseEcho;
}

export interface ResponseEncodingOptions {
  /** The caller's custom tools: a function call to one of these is written as a custom tool call. */
  customTools?: Iterable<string> | undefined;
  /** Write reasoning text as a summary (the caller set `reasoning.summary`), not as raw reasoning. */
  reasoningSummary?: boolean | undefined;
}

/** The Responses API's `usage` object. */
export interface ResponsesUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

/** Canonical usage in the Responses shape: input counts cached tokens too, as OpenAI's does. */
export function toResponsesUsage(usage: Usage): ResponsesUsage {
  return {
    input_tokens: usage.inputTokens,
    input_tokens_details: { cached_tokens: usage.cacheReadTokens },
    output_tokens: usage.outputTokens,
    output_tokens_details: { reasoning_tokens: usage.reasoningTokens },
    total_tokens: usage.inputTokens + usage.outputTokens,
  };
}

/** One SSE frame as the Responses API writes it: the event's type on `event:`, the JSON on `data:`. */
export function sseFrame(event: Obj & { type: string }): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

export type ResponseStatus = "in_progress" | "completed" | "incomplete" | "failed";

/**
 * The response object: head, echoed request fields, output and usage. Fields in the API's order;
 * `usage` is null until the answer ends.
 */
export function responseObject(
  head: ResponseHead,
  status: ResponseStatus,
  output: unknown[],
  end: { usage?: Usage | undefined; error?: ResponseErrorObject; incomplete?: string } = {},
): Obj {
  const echo = head.echo;
  const object: Obj = {
    id: head.id,
    object: "response",
    created_at: head.createdAt,
    status,
    background: false,
    error: end.error ?? null,
    incomplete_details: end.incomplete === undefined ? null : { reason: end.incomplete },
    instructions: echo.instructions,
    max_output_tokens: echo.max_output_tokens,
    model: head.model,
    output,
    parallel_tool_calls: echo.parallel_tool_calls,
    previous_response_id: echo.previous_response_id,
    reasoning: echo.reasoning,
    store: echo.store,
    temperature: echo.temperature,
    text: echo.text,
    tool_choice: echo.tool_choice,
    tools: echo.tools,
    top_p: echo.top_p,
    truncation: "disabled",
    usage: end.usage === undefined ? null : toResponsesUsage(end.usage),
    metadata: echo.metadata,
  };
  if (echo.user !== undefined) object.user = echo.user;
  if (echo.safety_identifier !== undefined) object.safety_identifier = echo.safety_identifier;
  if (echo.prompt_cache_key !== undefined) object.prompt_cache_key = echo.prompt_cache_key;
  return object;
}

/** The status and `incomplete_details.reason` a finish gives. */
function endOf(reason: FinishReason | undefined): { status: ResponseStatus; incomplete?: string } {
  if (reason === "length") return { status: "incomplete", incomplete: "max_output_tokens" };
  if (reason === "content-filter") return { status: "incomplete", incomplete: "content_filter" };
  return { status: "completed" };
}

/** Item ids of one response: `msg_<id without resp_>_<output index>`, unique and stable. */
function itemId(head: ResponseHead, prefix: string, outputIndex: number): string {
  const base = head.id.startsWith("resp_") ? head.id.slice(5) : head.id;
  return `${prefix}_${base}_${outputIndex}`;
}

/** Turns one streamed answer's canonical events into Responses SSE frames. */
export interface ResponseStreamEncoder {
  /** `response.created` and `response.in_progress`; written by the first other call if not called. */
  start(): string;
  /** The frames one event is written as (none for usage, or for an answer other than the first). */
  encode(event: GenerationEvent): string;
  /**
   * The end of the upstream's events: every open item done, then `response.completed` (or
   * `response.incomplete` after a length stop). Without a finish event the answer was cut:
   * `response.failed`. Nothing after a terminal event.
   */
  end(): string;
  /** Every open item done (as incomplete), then `response.failed` with the error. */
  fail(error: unknown): string;
  /** The response object as it stands (the terminal event's, once written). */
  response(): Obj;
}

interface OpenMessage {
  outputIndex: number;
  item: Obj;
  content: Obj[];
  part?: { kind: "text" | "refusal"; index: number; text: string; object: Obj } | undefined;
}

interface OpenReasoning {
  outputIndex: number;
  item: Obj;
  text: string;
  opened: boolean;
}

interface OpenCall {
  outputIndex: number;
  item: Obj;
  kind: "function" | "custom" | "wrapped";
  text: string;
}

/**
 * An encoder for one streamed answer. Only choice 0 is written (Responses has no `n`). Every event
 * carries `sequence_number`, from 0. Deltas are written as they come, except those of a function
 * call standing for a custom tool: its arguments are JSON around the text, so the text is written
 * once, as one delta, when the call ends.
 */
export function createResponseStreamEncoder(
  head: ResponseHead,
  options: ResponseEncodingOptions = {},
): ResponseStreamEncoder {
  const customTools = new Set(options.customTools ?? []);
  const summary = options.reasoningSummary === true;
  const output: Obj[] = [];
  let sequence = 0;
  let started = false;
  let terminal: Obj | undefined;
  let message: OpenMessage | undefined;
  let reasoning: OpenReasoning | undefined;
  const calls = new Map<number, OpenCall>();
  let usage: Usage | undefined;
  let finish: FinishReason | undefined;
  let frames = "";

  const emit = (type: string, fields: Obj): void => {
    frames += sseFrame({ type, sequence_number: sequence++, ...fields });
  };
  const snapshot = (status: ResponseStatus, end?: Parameters<typeof responseObject>[3]): Obj =>
    responseObject(head, status, output.slice(), end);
  const begin = (): void => {
    if (started) return;
    started = true;
    emit("response.created", { response: snapshot("in_progress") });
    emit("response.in_progress", { response: snapshot("in_progress") });
  };
  const addItem = (item: Obj): number => {
    const outputIndex = output.length;
    output.push(item);
    emit("response.output_item.added", { output_index: outputIndex, item: { ...item } });
    return outputIndex;
  };
  const itemDone = (outputIndex: number, item: Obj): void => {
    emit("response.output_item.done", { output_index: outputIndex, item });
  };

  const closePart = (open: OpenMessage): void => {
    const part = open.part;
    if (part === undefined) return;
    open.part = undefined;
    const at = { item_id: open.item.id, output_index: open.outputIndex, content_index: part.index };
    if (part.kind === "text") {
      part.object.text = part.text;
      emit("response.output_text.done", { ...at, text: part.text, logprobs: [] });
    } else {
      part.object.refusal = part.text;
      emit("response.refusal.done", { ...at, refusal: part.text });
    }
    emit("response.content_part.done", { ...at, part: part.object });
  };
  const closeMessage = (status: string): void => {
    if (message === undefined) return;
    const open = message;
    message = undefined;
    closePart(open);
    open.item.status = status;
    open.item.content = open.content;
    itemDone(open.outputIndex, open.item);
  };
  const closeReasoning = (): void => {
    if (reasoning === undefined) return;
    const open = reasoning;
    reasoning = undefined;
    if (open.opened) {
      const at = { item_id: open.item.id, output_index: open.outputIndex };
      if (summary) {
        const part = { type: "summary_text", text: open.text };
        emit("response.reasoning_summary_text.done", { ...at, summary_index: 0, text: open.text });
        emit("response.reasoning_summary_part.done", { ...at, summary_index: 0, part });
        open.item.summary = [part];
      } else {
        const part = { type: "reasoning_text", text: open.text };
        emit("response.reasoning_text.done", { ...at, content_index: 0, text: open.text });
        emit("response.content_part.done", { ...at, content_index: 0, part });
        open.item.content = [part];
      }
    }
    itemDone(open.outputIndex, open.item);
  };
  const closeCall = (index: number, status: string): void => {
    const open = calls.get(index);
    if (open === undefined) return;
    calls.delete(index);
    const at = { item_id: open.item.id, output_index: open.outputIndex };
    if (open.kind === "function") {
      open.item.arguments = open.text;
      open.item.status = status;
      emit("response.function_call_arguments.done", { ...at, name: open.item.name, arguments: open.text });
    } else {
      const input = open.kind === "wrapped" ? customInputOf(open.text) : open.text;
      if (open.kind === "wrapped" && input !== "")
        emit("response.custom_tool_call_input.delta", { ...at, delta: input });
      open.item.input = input;
      emit("response.custom_tool_call_input.done", { ...at, input });
    }
    itemDone(open.outputIndex, open.item);
  };
  const closeAll = (status: string): void => {
    closeReasoning();
    closeMessage(status);
    for (const index of [...calls.keys()]) closeCall(index, status);
  };

  const messagePart = (kind: "text" | "refusal", text: string): void => {
    closeReasoning();
    if (message === undefined) {
      const item: Obj = { id: "", type: "message", status: "in_progress", content: [], role: "assistant" };
      item.id = itemId(head, "msg", output.length);
      message = { outputIndex: addItem(item), item, content: [] };
    }
    const open = message;
    if (open.part?.kind !== kind) {
      closePart(open);
      const object: Obj =
        kind === "text"
          ? { type: "output_text", annotations: [], logprobs: [], text: "" }
          : { type: "refusal", refusal: "" };
      const index = open.content.length;
      open.content.push(object);
      open.part = { kind, index, text: "", object };
      emit("response.content_part.added", {
        item_id: open.item.id,
        output_index: open.outputIndex,
        content_index: index,
        part: { ...object },
      });
    }
    const part = open.part;
    if (part === undefined) return;
    part.text += text;
    const at = { item_id: open.item.id, output_index: open.outputIndex, content_index: part.index };
    if (kind === "text") emit("response.output_text.delta", { ...at, delta: text, logprobs: [] });
    else emit("response.refusal.delta", { ...at, delta: text });
  };

  const openReasoning = (): OpenReasoning => {
    if (reasoning !== undefined) return reasoning;
    closeMessage("completed");
    const item: Obj = { id: itemId(head, "rs", output.length), type: "reasoning", summary: [] };
    reasoning = { outputIndex: addItem(item), item, text: "", opened: false };
    return reasoning;
  };

  const encodeEvent = (event: GenerationEvent): void => {
    if (event.type === "usage") {
      usage = event.usage;
      return;
    }
    if (event.choice !== 0 || finish !== undefined) return;
    switch (event.type) {
      case "text":
        if (event.text !== "") messagePart("text", event.text);
        return;
      case "refusal":
        if (event.text !== "") messagePart("refusal", event.text);
        return;
      case "reasoning": {
        if (event.text === "") return;
        const open = openReasoning();
        const at = { item_id: open.item.id, output_index: open.outputIndex };
        if (!open.opened) {
          open.opened = true;
          if (summary)
            emit("response.reasoning_summary_part.added", {
              ...at,
              summary_index: 0,
              part: { type: "summary_text", text: "" },
            });
          else
            emit("response.content_part.added", {
              ...at,
              content_index: 0,
              part: { type: "reasoning_text", text: "" },
            });
        }
        open.text += event.text;
        if (summary)
          emit("response.reasoning_summary_text.delta", { ...at, summary_index: 0, delta: event.text });
        else emit("response.reasoning_text.delta", { ...at, content_index: 0, delta: event.text });
        return;
      }
      case "reasoning-signature": {
        const open = openReasoning();
        const sealed = sealReasoning({
          family: event.family ?? "",
          signature: event.signature,
          redacted: event.redacted,
        });
        if (sealed !== undefined) open.item.encrypted_content = sealed;
        closeReasoning();
        return;
      }
      case "tool-call-start": {
        closeReasoning();
        closeMessage("completed");
        closeCall(event.index, "completed");
        const kind = event.custom ? "custom" : customTools.has(event.name) ? "wrapped" : "function";
        const outputIndex = output.length;
        const item: Obj =
          kind === "function"
            ? {
                id: itemId(head, "fc", outputIndex),
                type: "function_call",
                status: "in_progress",
                arguments: "",
                call_id: event.id,
                name: event.name,
              }
            : {
                id: itemId(head, "ctc", outputIndex),
                type: "custom_tool_call",
                call_id: event.id,
                name: event.name,
                input: "",
              };
        addItem(item);
        calls.set(event.index, { outputIndex, item, kind, text: "" });
        return;
      }
      case "tool-call-delta": {
        const open = calls.get(event.index);
        if (open === undefined || event.input === "") return;
        open.text += event.input;
        const at = { item_id: open.item.id, output_index: open.outputIndex, delta: event.input };
        if (open.kind === "function") emit("response.function_call_arguments.delta", at);
        else if (open.kind === "custom") emit("response.custom_tool_call_input.delta", at);
        return;
      }
      case "tool-call-end":
        closeCall(event.index, "completed");
        return;
      case "finish":
        finish = event.reason;
        closeAll(finish === "length" || finish === "content-filter" ? "incomplete" : "completed");
        return;
    }
  };

  const take = (): string => {
    const out = frames;
    frames = "";
    return out;
  };

  const failWith = (error: ResponseErrorObject): void => {
    closeAll("incomplete");
    terminal = snapshot("failed", { usage, error });
    emit("response.failed", { response: terminal });
  };

  return {
    start() {
      if (terminal === undefined) begin();
      return take();
    },
    encode(event) {
      if (terminal !== undefined) return "";
      begin();
      encodeEvent(event);
      return take();
    },
    end() {
      if (terminal !== undefined) return "";
      begin();
      if (finish === undefined) {
        failWith({ code: "server_error", message: "The upstream's answer ended before it was complete." });
        return take();
      }
      const { status, incomplete } = endOf(finish);
      terminal = snapshot(status, incomplete === undefined ? { usage } : { usage, incomplete });
      emit(status === "completed" ? "response.completed" : "response.incomplete", { response: terminal });
      return take();
    },
    fail(error) {
      if (terminal !== undefined) return "";
      begin();
      failWith(toResponseError(error));
      return take();
    },
    response() {
      return terminal ?? snapshot("in_progress");
    },
  };
}

/**
 * A whole canonical answer (its first choice) as a Responses response object: the same items, ids
 * and fields the stream encoder's terminal event carries for the same answer.
 */
export function toResponse(
  result: GenerationResult,
  head: ResponseHead,
  options: ResponseEncodingOptions = {},
): Obj {
  const customTools = new Set(options.customTools ?? []);
  const choice = result.choices[0];
  const { status, incomplete } = endOf(choice?.finish);
  const itemStatus = status === "incomplete" ? "incomplete" : "completed";
  const output: Obj[] = [];
  let message: Obj[] | undefined;
  for (const part of choice?.content ?? []) {
    if (part.type === "text" || part.type === "refusal") {
      if (part.text === "") continue;
      if (message === undefined) {
        message = [];
        output.push({
          id: itemId(head, "msg", output.length),
          type: "message",
          status: itemStatus,
          content: message,
          role: "assistant",
        });
      }
      const last = message[message.length - 1];
      if (part.type === "text") {
        if (last?.type === "output_text") last.text = `${last.text}${part.text}`;
        else message.push({ type: "output_text", annotations: [], logprobs: [], text: part.text });
      } else if (last?.type === "refusal") last.refusal = `${last.refusal}${part.text}`;
      else message.push({ type: "refusal", refusal: part.text });
      continue;
    }
    message = undefined;
    output.push(itemOf(part, head, output.length, customTools, options.reasoningSummary === true));
  }
  return responseObject(
    head,
    status,
    output,
    incomplete === undefined ? { usage: result.usage } : { usage: result.usage, incomplete },
  );
}

function itemOf(
  part: Exclude<AssistantPart, { type: "text" | "refusal" }>,
  head: ResponseHead,
  outputIndex: number,
  customTools: ReadonlySet<string>,
  summary: boolean,
): Obj {
  if (part.type === "reasoning") {
    const item: Obj = { id: itemId(head, "rs", outputIndex), type: "reasoning", summary: [] };
    if (part.text !== "") {
      if (summary) item.summary = [{ type: "summary_text", text: part.text }];
      else item.content = [{ type: "reasoning_text", text: part.text }];
    }
    const sealed = sealReasoning({
      family: part.family ?? "",
      signature: part.signature,
      redacted: part.redacted,
    });
    if (sealed !== undefined) item.encrypted_content = sealed;
    return item;
  }
  if (part.custom || customTools.has(part.name))
    return {
      id: itemId(head, "ctc", outputIndex),
      type: "custom_tool_call",
      call_id: part.id,
      name: part.name,
      input: part.custom ? part.input : customInputOf(part.input),
    };
  return {
    id: itemId(head, "fc", outputIndex),
    type: "function_call",
    status: "completed",
    arguments: part.input,
    call_id: part.id,
    name: part.name,
  };
}
