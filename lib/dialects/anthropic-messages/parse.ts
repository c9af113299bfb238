/**
 * Anthropic Messages, inbound: the caller's body as a {@link GenerationRequest} (issue 18). Field by
 * field after the API reference, https://docs.anthropic.com/en/api/messages, and what Claude Code
 * 2.1.332 sends (`role: "system"` entries inside `messages`, system blocks with `cache_control`,
 * adaptive thinking; shared/clients/).
 *
 * What the canonical model has no place for is kept in `unmapped` under its Messages name
 * (`context_management`, `output_config`, `messages[1].output_config`, `tools[3]` for a server tool,
 * `messages[0].content[2]` for a document block, `thinking.display`, ...), so a translating target
 * drops it with one log line per kind and nothing is lost in silence; a native target is sent the
 * caller's own body and never reads this. A body of the wrong shape is a 400 naming the field.
 *
 * Every walk over the caller's JSON is a loop over one array or one object's keys: no recursion (a
 * tool schema or a `tool_use` input is kept by reference or stringified by the engine's JSON, never
 * walked here) and no `push(...array)`.
 */
import type {
  AssistantPart,
  CacheMark,
  GenerationRequest,
  ImagePart,
  ReasoningPart,
  TextPart,
  ToolCallPart,
  ToolChoice,
  ToolDefinition,
  ToolResultPart,
  UserPart,
} from "../../core/request.ts";
import {
  type InvalidRequestError,
  invalidJson,
  invalidType,
  invalidValue,
  missingParameter,
  quoteCallerText,
} from "../../errors.ts";
import { extras, fieldReaders, isObject, type Obj, present, put } from "../fields.ts";

/** The provider family whose signatures a Messages caller's thinking blocks carry. */
export const ANTHROPIC_FAMILY = "anthropic";

/** The field reads, their 400s in the Messages API's words ({@link missing}, {@link wrongType}). */
const { optional, optionalInteger, badField, unmappedPart, strings } = fieldReaders({ missing, wrongType });

/** Top-level fields read into the canonical request; every other one is unmapped. */
const READ = new Set([
  "model",
  "messages",
  "system",
  "max_tokens",
  "temperature",
  "top_p",
  "top_k",
  "stop_sequences",
  "metadata",
  "tools",
  "tool_choice",
  "thinking",
  "stream",
]);

const MESSAGE_FIELDS = new Set(["role", "content"]);

const BLOCK_FIELDS = {
  text: new Set(["type", "text", "cache_control"]),
  image: new Set(["type", "source", "cache_control"]),
  toolUse: new Set(["type", "id", "name", "input", "cache_control"]),
  toolResult: new Set(["type", "tool_use_id", "content", "is_error", "cache_control"]),
  thinking: new Set(["type", "thinking", "signature"]),
  redactedThinking: new Set(["type", "data"]),
  tool: new Set(["type", "name", "description", "input_schema", "strict", "cache_control"]),
};

const ROLES = "'user', 'assistant', 'system'";

/**
 * The canonical request for a Messages body. Throws {@link InvalidRequestError} (400) naming the
 * field for a shape the Messages API would refuse too (no `max_tokens`, a `tool_use` without an id, a
 * role of `tool`); keeps a well-formed field it cannot map in `unmapped`.
 */
export function toGeneration(body: unknown): GenerationRequest {
  if (!isObject(body)) throw invalidJson("The request body must be a JSON object.");
  if (typeof body.model !== "string") throw badField(body.model, "model", "a string");
  if (!Array.isArray(body.messages)) throw badField(body.messages, "messages", "an array");
  const maxTokens = body.max_tokens;
  if (typeof maxTokens !== "number" || !Number.isInteger(maxTokens) || maxTokens < 1)
    throw badField(maxTokens, "max_tokens", "a positive integer");
  const out: GenerationRequest = {
    model: body.model,
    system: [],
    messages: [],
    maxOutputTokens: maxTokens,
    stream: false,
    extensions: {},
    unmapped: {},
  };
  for (const field of Object.keys(body)) {
    if (!READ.has(field) && present(body[field])) put(out.unmapped, field, body[field]);
  }
  if (present(body.system)) textBlocks(body.system, "system", out.system, out.unmapped);
  readMessages(body.messages, out);

  const stream = optional(body, "stream", "boolean");
  if (stream !== undefined) out.stream = stream;
  const temperature = optional(body, "temperature", "number");
  if (temperature !== undefined) out.temperature = temperature;
  const topP = optional(body, "top_p", "number");
  if (topP !== undefined) out.topP = topP;
  const topK = optionalInteger(body, "top_k");
  if (topK !== undefined) out.topK = topK;
  if (present(body.stop_sequences)) out.stop = strings(body.stop_sequences, "stop_sequences");
  if (present(body.metadata)) readMetadata(body.metadata, out);
  if (present(body.tools)) out.tools = readTools(body.tools, out.unmapped);
  if (present(body.tool_choice)) readToolChoice(body.tool_choice, out);
  if (present(body.thinking)) readThinking(body.thinking, out);
  return out;
}

// ---- Messages --------------------------------------------------------------------------------

function readMessages(messages: unknown[], out: GenerationRequest): void {
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i];
    const param = `messages[${i}]`;
    if (!isObject(message)) throw wrongType(param, "an object");
    const role = message.role;
    if (role !== "user" && role !== "assistant" && role !== "system") {
      if (!present(role)) throw missing(`${param}.role`);
      if (typeof role !== "string") throw wrongType(`${param}.role`, "a string");
      throw invalidValue(
        `${param}.role`,
        `${param}.role: Input should be ${ROLES}; got '${quoteCallerText(role)}'.`,
      );
    }
    extras(message, MESSAGE_FIELDS, param, out.unmapped);
    const content = message.content;
    const contentParam = `${param}.content`;
    if (!present(content)) throw missing(contentParam);
    if (role === "system") {
      // Claude Code sends its per-turn instructions so (2.1.332); the canonical model has one system.
      textBlocks(content, contentParam, out.system, out.unmapped);
      continue;
    }
    if (typeof content !== "string" && !Array.isArray(content))
      throw wrongType(contentParam, "a string or an array of content blocks");
    if (role === "user") {
      const parts: UserPart[] = [];
      if (typeof content === "string") parts.push({ type: "text", text: content });
      else userBlocks(content, contentParam, parts, out.unmapped);
      out.messages.push({ role: "user", content: parts });
    } else {
      const parts: AssistantPart[] = [];
      if (typeof content === "string") parts.push({ type: "text", text: content });
      else assistantBlocks(content, contentParam, parts, out.unmapped);
      out.messages.push({ role: "assistant", content: parts });
    }
  }
}

/** System content (a string or text blocks) appended to `into`; a block of another type is a 400. */
function textBlocks(content: unknown, param: string, into: TextPart[], unmapped: Obj): void {
  if (typeof content === "string") {
    into.push({ type: "text", text: content });
    return;
  }
  if (!Array.isArray(content)) throw wrongType(param, "a string or an array of text blocks");
  for (let j = 0; j < content.length; j++) {
    const block = content[j];
    const blockParam = `${param}[${j}]`;
    if (!isObject(block)) throw wrongType(blockParam, "an object");
    if (block.type !== "text") throw badField(block.type, `${blockParam}.type`, "'text'");
    into.push(textBlock(block, blockParam, unmapped));
  }
}

function userBlocks(content: unknown[], param: string, into: UserPart[], unmapped: Obj): void {
  for (let j = 0; j < content.length; j++) {
    const block = content[j];
    const blockParam = `${param}[${j}]`;
    if (!isObject(block)) throw wrongType(blockParam, "an object");
    switch (block.type) {
      case "text":
        into.push(textBlock(block, blockParam, unmapped));
        break;
      case "image": {
        const image = imageBlock(block, blockParam, unmapped);
        if (image === undefined) put(unmapped, blockParam, block);
        else into.push(image);
        break;
      }
      case "tool_result":
        into.push(toolResult(block, blockParam, unmapped));
        break;
      default:
        // `document`, `search_result`, `container_upload` and any later kind.
        unmappedPart(block, blockParam, unmapped);
    }
  }
}

function assistantBlocks(content: unknown[], param: string, into: AssistantPart[], unmapped: Obj): void {
  for (let j = 0; j < content.length; j++) {
    const block = content[j];
    const blockParam = `${param}[${j}]`;
    if (!isObject(block)) throw wrongType(blockParam, "an object");
    switch (block.type) {
      case "text":
        into.push(textBlock(block, blockParam, unmapped));
        break;
      case "tool_use":
        into.push(toolUse(block, blockParam, unmapped));
        break;
      case "thinking":
        into.push(thinking(block, blockParam, unmapped));
        break;
      case "redacted_thinking": {
        if (typeof block.data !== "string") throw badField(block.data, `${blockParam}.data`, "a string");
        extras(block, BLOCK_FIELDS.redactedThinking, blockParam, unmapped);
        into.push({ type: "reasoning", text: "", redacted: block.data, family: ANTHROPIC_FAMILY });
        break;
      }
      default:
        // `server_tool_use`, `web_search_tool_result` and the other server tools' blocks.
        unmappedPart(block, blockParam, unmapped);
    }
  }
}

function textBlock(block: Obj, param: string, unmapped: Obj): TextPart {
  if (typeof block.text !== "string") throw badField(block.text, `${param}.text`, "a string");
  const text: TextPart = { type: "text", text: block.text };
  // `citations` (a cited answer sent back) and any later field.
  extras(block, BLOCK_FIELDS.text, param, unmapped);
  cacheOn(block, param, text);
  return text;
}

/** An `image` block with a `base64` or `url` source; undefined for another source (`file`). */
function imageBlock(block: Obj, param: string, unmapped: Obj): ImagePart | undefined {
  const source = block.source;
  if (!isObject(source)) throw badField(source, `${param}.source`, "an object");
  let image: ImagePart;
  if (source.type === "base64") {
    if (typeof source.media_type !== "string")
      throw badField(source.media_type, `${param}.source.media_type`, "a string");
    if (typeof source.data !== "string") throw badField(source.data, `${param}.source.data`, "a string");
    image = { type: "image", mediaType: source.media_type, data: source.data };
  } else if (source.type === "url") {
    if (typeof source.url !== "string") throw badField(source.url, `${param}.source.url`, "a string");
    image = { type: "image", mediaType: "image/*", url: source.url };
  } else {
    if (typeof source.type !== "string") throw badField(source.type, `${param}.source.type`, "a string");
    return undefined;
  }
  extras(block, BLOCK_FIELDS.image, param, unmapped);
  cacheOn(block, param, image);
  return image;
}

/** A `tool_use` block: its `input` (any JSON value; an object in practice) as JSON text. */
function toolUse(block: Obj, param: string, unmapped: Obj): ToolCallPart {
  if (typeof block.id !== "string" || block.id === "")
    throw badField(block.id === "" ? undefined : block.id, `${param}.id`, "a string");
  if (typeof block.name !== "string") throw badField(block.name, `${param}.name`, "a string");
  const call: ToolCallPart = {
    type: "tool-call",
    id: block.id,
    name: block.name,
    input: jsonText(block, param),
  };
  // `caller` (a programmatic call) and `toolset_name` have no canonical place.
  extras(block, BLOCK_FIELDS.toolUse, param, unmapped);
  cacheOn(block, param, call);
  return call;
}

/**
 * `input` as JSON text. The body was held to the gateway's nesting bound before it was parsed; a
 * value the engine's JSON still cannot write (a depth no bound allowed) is the caller's 400, not a
 * stack overflow.
 */
function jsonText(block: Obj, param: string): string {
  if (block.input === undefined) throw missing(`${param}.input`);
  try {
    return JSON.stringify(block.input);
  } catch {
    throw invalidValue(`${param}.input`, `${param}.input: nested too deeply.`);
  }
}

function thinking(block: Obj, param: string, unmapped: Obj): ReasoningPart {
  if (typeof block.thinking !== "string") throw badField(block.thinking, `${param}.thinking`, "a string");
  const part: ReasoningPart = { type: "reasoning", text: block.thinking };
  const signature = optional(block, "signature", "string", `${param}.signature`);
  // An unsigned block came from a translated target (the gateway writes no signature it did not
  // get from Anthropic): it has no family, and no Anthropic target is sent it.
  if (signature !== undefined && signature !== "") {
    part.signature = signature;
    part.family = ANTHROPIC_FAMILY;
  }
  extras(block, BLOCK_FIELDS.thinking, param, unmapped);
  return part;
}

/** A `tool_result` block: its content as a string or text and image blocks (others unmapped). */
function toolResult(block: Obj, param: string, unmapped: Obj): ToolResultPart {
  const id = block.tool_use_id;
  if (typeof id !== "string" || id === "")
    throw badField(id === "" ? undefined : id, `${param}.tool_use_id`, "a string");
  const result: ToolResultPart = { type: "tool-result", callId: id, content: [] };
  const content = block.content;
  if (typeof content === "string") result.content.push({ type: "text", text: content });
  else if (Array.isArray(content)) {
    for (let k = 0; k < content.length; k++) {
      const inner = content[k];
      const innerParam = `${param}.content[${k}]`;
      if (!isObject(inner)) throw wrongType(innerParam, "an object");
      if (inner.type === "text") result.content.push(textBlock(inner, innerParam, unmapped));
      else if (inner.type === "image") {
        const image = imageBlock(inner, innerParam, unmapped);
        if (image === undefined) put(unmapped, innerParam, inner);
        else result.content.push(image);
      } else unmappedPart(inner, innerParam, unmapped);
    }
  } else if (present(content)) throw wrongType(`${param}.content`, "a string or an array of content blocks");
  const isError = optional(block, "is_error", "boolean", `${param}.is_error`);
  if (isError === true) result.isError = true;
  extras(block, BLOCK_FIELDS.toolResult, param, unmapped);
  cacheOn(block, param, result);
  return result;
}

// ---- Tools and options -----------------------------------------------------------------------

/** Custom tools (no `type`, or `type: "custom"`); a server tool (`web_search_20250305`, ...) is unmapped. */
function readTools(tools: unknown, unmapped: Obj): ToolDefinition[] {
  if (!Array.isArray(tools)) throw wrongType("tools", "an array");
  const out: ToolDefinition[] = [];
  for (let i = 0; i < tools.length; i++) {
    const tool = tools[i];
    const param = `tools[${i}]`;
    if (!isObject(tool)) throw wrongType(param, "an object");
    if (present(tool.type) && tool.type !== "custom") {
      if (typeof tool.type !== "string") throw wrongType(`${param}.type`, "a string");
      put(unmapped, param, tool);
      continue;
    }
    if (typeof tool.name !== "string") throw badField(tool.name, `${param}.name`, "a string");
    if (!isObject(tool.input_schema))
      throw badField(tool.input_schema, `${param}.input_schema`, "an object (a JSON Schema)");
    const definition: ToolDefinition = { name: tool.name, parameters: tool.input_schema };
    const description = optional(tool, "description", "string", `${param}.description`);
    if (description !== undefined) definition.description = description;
    const strict = optional(tool, "strict", "boolean", `${param}.strict`);
    if (strict !== undefined) definition.strict = strict;
    // `defer_loading`, `input_examples`, `allowed_callers`, `eager_input_streaming`, ...
    extras(tool, BLOCK_FIELDS.tool, param, unmapped);
    cacheOn(tool, param, definition);
    out.push(definition);
  }
  return out;
}

/** `auto`, `any` (canonical `required`), `tool` with a name, `none`; `disable_parallel_tool_use`. */
function readToolChoice(choice: unknown, out: GenerationRequest): void {
  if (!isObject(choice)) throw wrongType("tool_choice", "an object");
  const type = choice.type;
  let canonical: ToolChoice;
  if (type === "auto" || type === "none") canonical = { type };
  else if (type === "any") canonical = { type: "required" };
  else if (type === "tool") {
    if (typeof choice.name !== "string") throw badField(choice.name, "tool_choice.name", "a string");
    canonical = { type: "tool", name: choice.name };
  } else {
    if (typeof type !== "string") throw badField(type, "tool_choice.type", "a string");
    put(out.unmapped, "tool_choice", choice);
    return;
  }
  out.toolChoice = canonical;
  const disable = optional(
    choice,
    "disable_parallel_tool_use",
    "boolean",
    "tool_choice.disable_parallel_tool_use",
  );
  if (disable !== undefined) out.parallelToolCalls = !disable;
  for (const key of Object.keys(choice)) {
    if (key !== "type" && key !== "name" && key !== "disable_parallel_tool_use" && present(choice[key]))
      put(out.unmapped, `tool_choice.${key}`, choice[key]);
  }
}

/** `enabled` (with `budget_tokens`), `adaptive`, `disabled`; `display` and later keys unmapped. */
function readThinking(value: unknown, out: GenerationRequest): void {
  if (!isObject(value)) throw wrongType("thinking", "an object");
  const type = value.type;
  if (type === "enabled") {
    const budget = value.budget_tokens;
    if (typeof budget !== "number" || !Number.isInteger(budget))
      throw badField(budget, "thinking.budget_tokens", "an integer");
    out.reasoning = { mode: "enabled", budgetTokens: budget };
  } else if (type === "adaptive" || type === "disabled") out.reasoning = { mode: type };
  else {
    if (typeof type !== "string") throw badField(type, "thinking.type", "a string");
    put(out.unmapped, "thinking", value);
    return;
  }
  for (const key of Object.keys(value)) {
    if (key !== "type" && key !== "budget_tokens" && present(value[key]))
      put(out.unmapped, `thinking.${key}`, value[key]);
  }
}

/** `metadata.user_id` is the canonical end-user id; any other key is unmapped. */
function readMetadata(value: unknown, out: GenerationRequest): void {
  if (!isObject(value)) throw wrongType("metadata", "an object");
  const user = optional(value, "user_id", "string", "metadata.user_id");
  if (user !== undefined) out.user = user;
  for (const key of Object.keys(value)) {
    if (key !== "user_id" && present(value[key])) put(out.unmapped, `metadata.${key}`, value[key]);
  }
}

/** `cache_control: {type: "ephemeral", ttl?: "5m" | "1h"}` on a block or a tool, as a cache mark. */
function cacheOn(block: Obj, param: string, into: CacheMark): void {
  const value = block.cache_control;
  if (!present(value)) return;
  if (!isObject(value)) throw wrongType(`${param}.cache_control`, "an object");
  const ttl = optional(value, "ttl", "string", `${param}.cache_control.ttl`);
  into.cache = ttl === undefined ? {} : { ttl };
}

// ---- Small helpers ---------------------------------------------------------------------------

/** The Messages API's words for a missing field (`messages[0].content: Field required`). */
function missing(param: string): InvalidRequestError {
  return missingParameter(param, `${param}: Field required`);
}

function wrongType(param: string, expected: string): InvalidRequestError {
  return invalidType(param, expected, `${param}: Input should be ${expected}`);
}
