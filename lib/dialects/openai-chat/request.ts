/**
 * Canonical request → OpenAI Chat Completions body (issue 17): what an OpenAI-compatible target
 * (OpenAI, DeepSeek, any compatible server) is sent for a caller of another dialect (Anthropic
 * Messages, OpenAI Responses). An OpenAI chat caller served by such a target is passed through and
 * never comes here.
 *
 * Only fields OpenAI defines are written: what the body cannot say (top-k, cache marks unless the
 * target honours them, a tool result's error flag, reasoning of another family, every `unmapped`
 * field of the caller's dialect) is reported through {@link ChatRequestOptions.onDrop}, once per
 * occurrence, for the caller to log once per kind; it is never refused here.
 */
import type {
  AssistantPart,
  CacheMark,
  GenerationRequest,
  ImagePart,
  TextPart,
  ToolDefinition,
  UserPart,
} from "../../core/request.ts";
import type { ChatMessage, ChatRequest } from "./wire.ts";

type Obj = Record<string, unknown>;

export interface ChatRequestOptions {
  /**
   * The target's provider family (`deepseek`, ...). Reasoning parts of the same family are sent back
   * as `reasoning_content`; others are dropped (a signature is only valid where it was made, and
   * OpenAI's body has no field for one anyway). Parts of no family (reasoning read from an OpenAI chat
   * body) go to a target of no family.
   */
  family?: string | undefined;
  /**
   * The field for the output cap: `max_tokens` (default: every compatible server reads it) or
   * `max_completion_tokens` (OpenAI's reasoning models refuse `max_tokens`).
   */
  maxTokensField?: "max_tokens" | "max_completion_tokens" | undefined;
  /**
   * Write cache marks as Anthropic's `cache_control` on parts, messages and tools, for servers that
   * honour it (LiteLLM, OpenRouter); OpenAI refuses unknown part fields, so off by default.
   */
  cacheControl?: boolean | undefined;
  /** Told each thing the body cannot carry: a canonical field's name, or an `unmapped` key. */
  onDrop?: ((what: string) => void) | undefined;
}

/**
 * The OpenAI chat body for a canonical request: system parts as system messages (one each, at the
 * top), user turns with their tool results as `tool` messages first (OpenAI wants them straight after
 * the assistant's calls), images of tool results in a user message after them (a tool message holds
 * text only), assistant turns with `tool_calls`, and the options under OpenAI's names. A streamed
 * request asks for usage (`stream_options.include_usage`): the engine meters every answer.
 */
export function toChatRequest(g: GenerationRequest, options: ChatRequestOptions = {}): ChatRequest {
  const drop = options.onDrop ?? (() => {});
  const cache = (part: CacheMark, into: Obj) => {
    if (part.cache === undefined) return;
    if (options.cacheControl) into.cache_control = cacheControl(part.cache);
    else drop("cache");
  };
  const messages: ChatMessage[] = [];
  for (const part of g.system) {
    const out = textOut(part, cache);
    messages.push({ role: "system", content: out.cache_control === undefined ? part.text : [out] });
  }
  for (const message of g.messages) {
    if (message.role === "user") userMessages(message.content, messages, cache, drop);
    else messages.push(assistantMessage(message.content, options.family, cache, drop));
  }

  const body: ChatRequest = { model: g.model, messages };
  if (g.tools !== undefined) body.tools = g.tools.map((tool) => toolOut(tool, cache));
  if (g.toolChoice !== undefined) body.tool_choice = toolChoiceOut(g);
  if (g.parallelToolCalls !== undefined) body.parallel_tool_calls = g.parallelToolCalls;
  if (g.maxOutputTokens !== undefined) body[options.maxTokensField ?? "max_tokens"] = g.maxOutputTokens;
  if (g.temperature !== undefined) body.temperature = g.temperature;
  if (g.topP !== undefined) body.top_p = g.topP;
  if (g.topK !== undefined) drop("topK");
  if (g.stop !== undefined) body.stop = g.stop;
  if (g.choices !== undefined) body.n = g.choices;
  if (g.responseFormat !== undefined) body.response_format = responseFormatOut(g.responseFormat);
  if (g.reasoning?.effort !== undefined) body.reasoning_effort = g.reasoning.effort;
  if (g.reasoning?.budgetTokens !== undefined) drop("reasoning.budgetTokens");
  if (g.reasoning?.mode !== undefined) drop("reasoning.mode");
  if (g.user !== undefined) body.user = g.user;
  if (g.stream) {
    body.stream = true;
    body.stream_options = { include_usage: true };
  }
  for (const key of Object.keys(g.unmapped)) drop(key);
  return body;
}

type Cache = (part: CacheMark, into: Obj) => void;

function userMessages(
  content: UserPart[],
  into: ChatMessage[],
  cache: Cache,
  drop: (what: string) => void,
): void {
  const rest: Obj[] = [];
  let plain = true;
  for (const part of content) {
    if (part.type !== "tool-result") continue;
    let text = "";
    for (const piece of part.content) {
      if (piece.type === "text") text += piece.text;
      else {
        rest.push(imageOut(piece, cache));
        plain = false;
      }
    }
    if (part.isError) drop("isError");
    const tool: ChatMessage = { role: "tool", tool_call_id: part.callId, content: text };
    cache(part, tool);
    into.push(tool);
  }
  for (const part of content) {
    if (part.type === "tool-result") continue;
    if (part.type === "text") {
      const out = textOut(part, cache);
      plain &&= out.cache_control === undefined;
      rest.push(out);
    } else {
      rest.push(imageOut(part, cache));
      plain = false;
    }
  }
  if (rest.length === 0) return;
  // One plain text part is written as OpenAI's own shorthand, a string.
  const only = rest[0];
  if (plain && rest.length === 1 && only !== undefined) into.push({ role: "user", content: only.text });
  else into.push({ role: "user", content: rest });
}

function assistantMessage(
  content: AssistantPart[],
  family: string | undefined,
  cache: Cache,
  drop: (what: string) => void,
): ChatMessage {
  const parts: Obj[] = [];
  let text = "";
  let hasText = false;
  let plain = true;
  let reasoning = "";
  let refusal: string | undefined;
  const toolCalls: Obj[] = [];
  for (const part of content) {
    switch (part.type) {
      case "text": {
        const out = textOut(part, cache);
        plain &&= out.cache_control === undefined;
        parts.push(out);
        text += part.text;
        hasText = true;
        break;
      }
      case "reasoning":
        if (part.family === family && part.text !== "") reasoning += part.text;
        else drop("reasoning");
        break;
      case "refusal":
        refusal = (refusal ?? "") + part.text;
        break;
      case "tool-call": {
        const call: Obj = part.custom
          ? { id: part.id, type: "custom", custom: { name: part.name, input: part.input } }
          : { id: part.id, type: "function", function: { name: part.name, arguments: part.input } };
        toolCalls.push(call);
        if (part.cache !== undefined) drop("cache");
        break;
      }
    }
  }
  const message: ChatMessage = {
    role: "assistant",
    content: !hasText ? (toolCalls.length > 0 || refusal !== undefined ? null : "") : plain ? text : parts,
  };
  if (reasoning !== "") message.reasoning_content = reasoning;
  if (refusal !== undefined) message.refusal = refusal;
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  return message;
}

function textOut(part: TextPart, cache: Cache): Obj {
  const out: Obj = { type: "text", text: part.text };
  cache(part, out);
  return out;
}

/** Bytes as a base64 data URL (the only way OpenAI's body carries them), or the URL as given. */
function imageOut(part: ImagePart, cache: Cache): Obj {
  const url = part.data !== undefined ? `data:${part.mediaType};base64,${part.data}` : (part.url ?? "");
  const imageUrl: Obj = { url };
  if (part.detail !== undefined) imageUrl.detail = part.detail;
  const out: Obj = { type: "image_url", image_url: imageUrl };
  cache(part, out);
  return out;
}

function toolOut(tool: ToolDefinition, cache: Cache): Obj {
  let out: Obj;
  if (tool.custom !== undefined) {
    const custom: Obj = { name: tool.name };
    if (tool.description !== undefined) custom.description = tool.description;
    const grammar = tool.custom.grammar;
    if (tool.custom.format !== undefined) custom.format = tool.custom.format;
    else if (grammar !== undefined) custom.format = { type: "grammar", grammar };
    out = { type: "custom", custom };
  } else {
    const fn: Obj = { name: tool.name };
    if (tool.description !== undefined) fn.description = tool.description;
    if (tool.parameters !== undefined) fn.parameters = tool.parameters;
    if (tool.strict !== undefined) fn.strict = tool.strict;
    out = { type: "function", function: fn };
  }
  cache(tool, out);
  return out;
}

/** A named tool is chosen by its kind: a custom tool's choice says `custom`, as OpenAI's does. */
function toolChoiceOut(g: GenerationRequest): unknown {
  const choice = g.toolChoice;
  if (choice === undefined || choice.type !== "tool") return choice?.type;
  const custom = g.tools?.some((tool) => tool.name === choice.name && tool.custom !== undefined) === true;
  return custom
    ? { type: "custom", custom: { name: choice.name } }
    : { type: "function", function: { name: choice.name } };
}

function responseFormatOut(format: NonNullable<GenerationRequest["responseFormat"]>): Obj {
  if (format.schema === undefined && format.name === undefined) return { type: "json_object" };
  // OpenAI requires a name; a schema given without one (Anthropic's output format) gets a neutral one.
  const spec: Obj = { name: format.name ?? "response" };
  if (format.description !== undefined) spec.description = format.description;
  if (format.schema !== undefined) spec.schema = format.schema;
  if (format.strict !== undefined) spec.strict = format.strict;
  return { type: "json_schema", json_schema: spec };
}

function cacheControl(cache: NonNullable<CacheMark["cache"]>): Obj {
  return cache.ttl === undefined ? { type: "ephemeral" } : { type: "ephemeral", ttl: cache.ttl };
}
