/**
 * OpenAI Chat Completions, inbound: the caller's body as a {@link GenerationRequest} (issue 17).
 * Field by field after the API reference, https://platform.openai.com/docs/api-reference/chat/create.
 *
 * What the canonical model has no place for is kept in `unmapped` under its OpenAI name (`seed`,
 * `logprobs`, `messages[2].name`, `messages[0].content[1]` for an audio part, ...), so a
 * translating target can refuse it or drop it by name; nothing is lost in silence. A body of the
 * wrong shape is a 400 naming the field. Messages are not merged here (Converse wants alternating
 * turns; that is its translator's need), except consecutive `tool` messages, which are one user
 * turn of tool results in the canonical model.
 *
 * Every walk over the caller's JSON is a loop over one array or one object's keys: no recursion (a
 * tool schema nested 10,000 levels deep is kept by reference, never walked) and no `push(...array)`,
 * so a 130,000-part message cannot overflow the stack.
 */
import type {
  AssistantPart,
  CacheMark,
  GenerationRequest,
  ImagePart,
  Message,
  TextPart,
  ToolCallPart,
  ToolChoice,
  ToolDefinition,
  ToolResultPart,
  UserPart,
} from "../../core/request.ts";
import { invalidJson, invalidType, missingParameter } from "../../errors.ts";
import {
  badField,
  eachPart,
  extras,
  fromDataUrl,
  isObject,
  notOneOf,
  type Obj,
  optional,
  optionalInteger,
  present,
  put,
  requiredString,
  strings,
  unmappedPart,
} from "../fields.ts";
import type { ChatRequest } from "./wire.ts";

/**
 * Top-level fields read into the canonical request. `stream_options` is read by the caller's
 * encoding (whether its stream ends with a usage chunk), not by any target: never unmapped.
 */
const READ = new Set([
  "model",
  "messages",
  "stream",
  "stream_options",
  "tools",
  "tool_choice",
  "parallel_tool_calls",
  "max_completion_tokens",
  "max_tokens",
  "temperature",
  "top_p",
  "stop",
  "n",
  "response_format",
  "reasoning_effort",
  "user",
  "bedrock",
]);

/**
 * Message fields read, by role. A tool message's `name` repeats the tool's (the call is identified
 * by `tool_call_id`): read and not kept. `cache_control` on a message marks its last part.
 */
const MESSAGE_FIELDS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ["system", new Set(["role", "content", "cache_control"])],
  ["developer", new Set(["role", "content", "cache_control"])],
  ["user", new Set(["role", "content", "cache_control"])],
  ["assistant", new Set(["role", "content", "refusal", "tool_calls", "reasoning_content", "cache_control"])],
  ["tool", new Set(["role", "content", "tool_call_id", "name", "cache_control"])],
]);

const ROLES = "'system', 'developer', 'user', 'assistant', 'tool'";

/**
 * The canonical request for an OpenAI chat body. Throws {@link InvalidRequestError} (400) naming the
 * field for a shape OpenAI would refuse too (a non-array `messages`, a tool call without a name, a
 * `stop` of numbers); keeps a well-formed field it cannot map in `unmapped`.
 */
export function toGeneration(body: ChatRequest): GenerationRequest {
  if (!isObject(body)) throw invalidJson("The request body must be a JSON object.");
  if (typeof body.model !== "string") throw invalidType("model", "a string");
  if (!Array.isArray(body.messages)) throw invalidType("messages", "an array");
  const out: GenerationRequest = {
    model: body.model,
    system: [],
    messages: [],
    stream: false,
    extensions: {},
    unmapped: {},
  };
  for (const field of Object.keys(body)) {
    if (!READ.has(field) && present(body[field])) put(out.unmapped, field, body[field]);
  }
  readMessages(body.messages, out);

  const stream = optional(body, "stream", "boolean");
  if (stream !== undefined) out.stream = stream;
  if (present(body.tools)) out.tools = readTools(body.tools, out.unmapped);
  if (present(body.tool_choice)) {
    const choice = readToolChoice(body.tool_choice);
    if (choice === undefined) put(out.unmapped, "tool_choice", body.tool_choice);
    else out.toolChoice = choice;
  }
  const parallel = optional(body, "parallel_tool_calls", "boolean");
  if (parallel !== undefined) out.parallelToolCalls = parallel;
  const maxCompletion = optionalInteger(body, "max_completion_tokens");
  const maxTokens = optionalInteger(body, "max_tokens");
  const maxOutput = maxCompletion ?? maxTokens;
  if (maxOutput !== undefined) out.maxOutputTokens = maxOutput;
  const temperature = optional(body, "temperature", "number");
  if (temperature !== undefined) out.temperature = temperature;
  const topP = optional(body, "top_p", "number");
  if (topP !== undefined) out.topP = topP;
  if (present(body.stop)) out.stop = readStop(body.stop);
  const n = optionalInteger(body, "n");
  if (n !== undefined) out.choices = n;
  if (present(body.response_format)) {
    const format = readResponseFormat(body.response_format);
    if (format === "unmapped") put(out.unmapped, "response_format", body.response_format);
    else if (format !== undefined) out.responseFormat = format;
  }
  const effort = optional(body, "reasoning_effort", "string");
  if (effort !== undefined) out.reasoning = { effort };
  const user = optional(body, "user", "string");
  if (user !== undefined) out.user = user;
  if (present(body.bedrock)) out.extensions.bedrock = body.bedrock;
  return out;
}

// ---- Messages --------------------------------------------------------------------------------

function readMessages(messages: unknown[], out: GenerationRequest): void {
  // The user turn the previous message (a tool message) added, while tool messages follow each other.
  let toolTurn: { role: "user"; content: UserPart[] } | undefined;
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i];
    const param = `messages[${i}]`;
    if (!isObject(message)) throw invalidType(param, "an object");
    const role = message.role;
    if (role === undefined || role === null) throw missingParameter(`${param}.role`);
    if (typeof role !== "string") throw invalidType(`${param}.role`, "a string");
    // A Map, not an object: a role of `constructor` or `__proto__` finds nothing.
    const fields = MESSAGE_FIELDS.get(role);
    if (fields === undefined) {
      // The deprecated `function` role: well-formed OpenAI, but nothing canonical says it.
      if (role === "function") {
        put(out.unmapped, param, message);
        toolTurn = undefined;
        continue;
      }
      throw notOneOf(`${param}.role`, role, ROLES);
    }
    for (const field of Object.keys(message)) {
      if (fields.has(field) || !present(message[field])) continue;
      // Clients send back the assistant message they were given, with its empty `annotations`.
      if (field === "annotations" && Array.isArray(message.annotations) && message.annotations.length === 0)
        continue;
      put(out.unmapped, `${param}.${field}`, message[field]);
    }
    const cache = present(message.cache_control)
      ? cacheOf(message.cache_control, `${param}.cache_control`)
      : undefined;

    if (role === "tool") {
      const parts = toolResult(message, param, out.unmapped);
      if (cache !== undefined) parts.cache = cache;
      if (toolTurn === undefined) {
        toolTurn = { role: "user", content: [] };
        out.messages.push(toolTurn);
      }
      toolTurn.content.push(parts);
      continue;
    }
    toolTurn = undefined;
    if (role === "system" || role === "developer") {
      const from = out.system.length;
      textParts(message.content, `${param}.content`, out.system, out.unmapped);
      if (cache !== undefined && out.system.length > from) markLast(out.system, cache);
    } else if (role === "user") {
      const content: UserPart[] = [];
      userParts(message.content, `${param}.content`, content, out.unmapped);
      if (cache !== undefined) markLast(content, cache);
      out.messages.push({ role: "user", content });
    } else {
      const content = assistantParts(message, param, out.unmapped);
      if (cache !== undefined) markLast(content, cache);
      out.messages.push({ role: "assistant", content } satisfies Message);
    }
  }
}

/** Text content (a string or text parts) appended to `into`; other parts go to `unmapped`. */
function textParts(content: unknown, param: string, into: TextPart[], unmapped: Obj): void {
  eachPart(content, param, into, (part, partParam) => {
    if (part.type === "text") into.push(textPart(part, partParam, unmapped));
    else unmappedPart(part, partParam, unmapped);
  });
}

function userParts(content: unknown, param: string, into: UserPart[], unmapped: Obj): void {
  eachPart(content, param, into, (part, partParam) => {
    if (part.type === "text") into.push(textPart(part, partParam, unmapped));
    else if (part.type === "image_url") into.push(imagePart(part, partParam, unmapped));
    // `input_audio`, `file` and any later kind: well-formed, with no canonical place.
    else unmappedPart(part, partParam, unmapped);
  });
}

function textPart(part: Obj, param: string, unmapped: Obj): TextPart {
  if (typeof part.text !== "string") throw badField(part.text, `${param}.text`, "a string");
  const text: TextPart = { type: "text", text: part.text };
  extras(part, PART_FIELDS.text, param, unmapped);
  if (present(part.cache_control)) text.cache = cacheOf(part.cache_control, `${param}.cache_control`);
  return text;
}

const PART_FIELDS = {
  text: new Set(["type", "text", "cache_control"]),
  image: new Set(["type", "image_url", "cache_control"]),
  imageUrl: new Set(["url", "detail"]),
  refusal: new Set(["type", "refusal"]),
};

/**
 * An `image_url` part. A base64 data URL (`data:image/png;base64,...`) becomes bytes and a media
 * type; any other URL is kept as a URL (with `image/*`: its type is only known once fetched).
 */
function imagePart(part: Obj, param: string, unmapped: Obj): ImagePart {
  extras(part, PART_FIELDS.image, param, unmapped);
  // Some clients send the URL itself in place of `{url}`.
  let url: unknown = part.image_url;
  let detail: unknown;
  if (isObject(part.image_url)) {
    url = part.image_url.url;
    detail = part.image_url.detail;
    extras(part.image_url, PART_FIELDS.imageUrl, `${param}.image_url`, unmapped);
  } else if (!present(url)) throw missingParameter(`${param}.image_url`);
  const urlParam = isObject(part.image_url) ? `${param}.image_url.url` : `${param}.image_url`;
  if (typeof url !== "string") throw badField(url, urlParam, "a string");
  const image: ImagePart = { type: "image", mediaType: "image/*", ...fromDataUrl(url) };
  if (present(detail)) {
    if (typeof detail !== "string") throw invalidType(`${param}.image_url.detail`, "a string");
    image.detail = detail;
  }
  if (present(part.cache_control)) image.cache = cacheOf(part.cache_control, `${param}.cache_control`);
  return image;
}

/** An assistant message's parts, in the order a model produces them: reasoning, text, refusal, calls. */
function assistantParts(message: Obj, param: string, unmapped: Obj): AssistantPart[] {
  const content: AssistantPart[] = [];
  const reasoning = message.reasoning_content;
  if (present(reasoning)) {
    if (typeof reasoning !== "string") throw invalidType(`${param}.reasoning_content`, "a string");
    if (reasoning !== "") content.push({ type: "reasoning", text: reasoning });
  }
  const body = message.content;
  if (typeof body === "string") content.push({ type: "text", text: body });
  else if (Array.isArray(body)) {
    for (let j = 0; j < body.length; j++) {
      const part = body[j];
      const partParam = `${param}.content[${j}]`;
      if (!isObject(part)) throw invalidType(partParam, "an object");
      if (part.type === "text") content.push(textPart(part, partParam, unmapped));
      else if (part.type === "refusal") {
        if (typeof part.refusal !== "string") throw invalidType(`${partParam}.refusal`, "a string");
        extras(part, PART_FIELDS.refusal, partParam, unmapped);
        content.push({ type: "refusal", text: part.refusal });
      } else unmappedPart(part, partParam, unmapped);
    }
  } else if (present(body)) throw invalidType(`${param}.content`, "a string or an array of content parts");
  const refusal = message.refusal;
  if (present(refusal)) {
    if (typeof refusal !== "string") throw invalidType(`${param}.refusal`, "a string");
    content.push({ type: "refusal", text: refusal });
  }
  const calls = message.tool_calls;
  if (present(calls)) {
    if (!Array.isArray(calls)) throw invalidType(`${param}.tool_calls`, "an array");
    for (let j = 0; j < calls.length; j++) {
      const callParam = `${param}.tool_calls[${j}]`;
      const call = toolCall(calls[j], callParam);
      if (call === undefined) put(unmapped, callParam, calls[j]);
      else content.push(call);
    }
  }
  return content;
}

/**
 * A tool call of the history: `function` (arguments as JSON text, kept as text) or `custom` (free
 * text input); undefined for a later kind. Other keys of a call (an echoed stream `index`) are not
 * part of it and are not kept.
 */
function toolCall(call: unknown, param: string): ToolCallPart | undefined {
  if (!isObject(call)) throw invalidType(param, "an object");
  if (typeof call.id !== "string") throw badField(call.id, `${param}.id`, "a string");
  const type = call.type ?? "function";
  if (type === "function") {
    const fn = call.function;
    if (!isObject(fn)) throw badField(fn, `${param}.function`, "an object");
    if (typeof fn.name !== "string") throw badField(fn.name, `${param}.function.name`, "a string");
    const args = fn.arguments ?? "";
    if (typeof args !== "string") throw invalidType(`${param}.function.arguments`, "a string (JSON text)");
    return { type: "tool-call", id: call.id, name: fn.name, input: args };
  }
  if (type === "custom") {
    const custom = call.custom;
    if (!isObject(custom)) throw badField(custom, `${param}.custom`, "an object");
    if (typeof custom.name !== "string") throw badField(custom.name, `${param}.custom.name`, "a string");
    const input = custom.input ?? "";
    if (typeof input !== "string") throw invalidType(`${param}.custom.input`, "a string");
    return { type: "tool-call", id: call.id, name: custom.name, input, custom: true };
  }
  if (typeof type !== "string") throw invalidType(`${param}.type`, "a string");
  return undefined;
}

/** A tool message as a tool-result part: its text parts (others unmapped). */
function toolResult(message: Obj, param: string, unmapped: Obj): ToolResultPart {
  const id = message.tool_call_id;
  if (typeof id !== "string" || id === "")
    throw badField(id === "" ? undefined : id, `${param}.tool_call_id`, "a string");
  const content: TextPart[] = [];
  textParts(message.content, `${param}.content`, content, unmapped);
  return { type: "tool-result", callId: id, content };
}

// ---- Tools and options -----------------------------------------------------------------------

const TOOL_FIELDS = {
  function: new Set(["type", "function", "cache_control"]),
  functionDefinition: new Set(["name", "description", "parameters", "strict"]),
  custom: new Set(["type", "custom", "cache_control"]),
  customDefinition: new Set(["name", "description", "format"]),
};

/** `function` and `custom` tools; a tool of another kind is kept in `unmapped` as `tools[i]`. */
function readTools(tools: unknown, unmapped: Obj): ToolDefinition[] {
  if (!Array.isArray(tools)) throw invalidType("tools", "an array");
  const out: ToolDefinition[] = [];
  for (let i = 0; i < tools.length; i++) {
    const tool = tools[i];
    const param = `tools[${i}]`;
    if (!isObject(tool)) throw invalidType(param, "an object");
    let definition: ToolDefinition;
    if (tool.type === "function") {
      const fn = tool.function;
      if (!isObject(fn)) throw badField(fn, `${param}.function`, "an object");
      definition = { name: requiredString(fn, "name", `${param}.function`) };
      const description = optional(fn, "description", "string", `${param}.function.description`);
      if (description !== undefined) definition.description = description;
      if (present(fn.parameters)) {
        if (!isObject(fn.parameters))
          throw invalidType(`${param}.function.parameters`, "an object (a JSON Schema)");
        definition.parameters = fn.parameters;
      }
      const strict = optional(fn, "strict", "boolean", `${param}.function.strict`);
      if (strict !== undefined) definition.strict = strict;
      extras(tool, TOOL_FIELDS.function, param, unmapped);
      extras(fn, TOOL_FIELDS.functionDefinition, `${param}.function`, unmapped);
    } else if (tool.type === "custom") {
      const custom = tool.custom;
      if (!isObject(custom)) throw badField(custom, `${param}.custom`, "an object");
      definition = { name: requiredString(custom, "name", `${param}.custom`), custom: {} };
      const description = optional(custom, "description", "string", `${param}.custom.description`);
      if (description !== undefined) definition.description = description;
      if (present(custom.format)) definition.custom = { format: custom.format };
      extras(tool, TOOL_FIELDS.custom, param, unmapped);
      extras(custom, TOOL_FIELDS.customDefinition, `${param}.custom`, unmapped);
    } else {
      if (typeof tool.type !== "string") throw badField(tool.type, `${param}.type`, "a string");
      put(unmapped, param, tool);
      continue;
    }
    if (present(tool.cache_control)) definition.cache = cacheOf(tool.cache_control, `${param}.cache_control`);
    out.push(definition);
  }
  return out;
}

/** `none`, `auto`, `required`, a named function or custom tool; undefined for another object kind. */
function readToolChoice(choice: unknown): ToolChoice | undefined {
  if (choice === "none" || choice === "auto" || choice === "required") return { type: choice };
  if (typeof choice === "string")
    throw notOneOf("tool_choice", choice, "'none', 'auto', 'required' or an object naming a tool");
  if (!isObject(choice)) throw invalidType("tool_choice", "a string or an object");
  const type = choice.type;
  if (type === "function" || type === "custom") {
    const named = choice[type];
    if (!isObject(named)) throw badField(named, `tool_choice.${type}`, "an object");
    return { type: "tool", name: requiredString(named, "name", `tool_choice.${type}`) };
  }
  // `allowed_tools` and any later kind.
  if (typeof type !== "string") throw badField(type, "tool_choice.type", "a string");
  return undefined;
}

function readStop(stop: unknown): string[] {
  if (typeof stop === "string") return [stop];
  return strings(stop, "stop", "a string or an array of strings");
}

/** `text` is the default (none); `json_object` is JSON of any shape; `json_schema` names a schema. */
function readResponseFormat(format: unknown): GenerationRequest["responseFormat"] | "unmapped" {
  if (!isObject(format)) throw invalidType("response_format", "an object");
  if (format.type === "text") return undefined;
  if (format.type === "json_object") return { type: "json" };
  if (format.type === "json_schema") {
    const spec = format.json_schema;
    if (!isObject(spec)) throw badField(spec, "response_format.json_schema", "an object");
    const out: NonNullable<GenerationRequest["responseFormat"]> = { type: "json" };
    if (present(spec.schema)) out.schema = spec.schema;
    const name = optional(spec, "name", "string", "response_format.json_schema.name");
    if (name !== undefined) out.name = name;
    const description = optional(spec, "description", "string", "response_format.json_schema.description");
    if (description !== undefined) out.description = description;
    const strict = optional(spec, "strict", "boolean", "response_format.json_schema.strict");
    if (strict !== undefined) out.strict = strict;
    return out;
  }
  if (typeof format.type !== "string") throw badField(format.type, "response_format.type", "a string");
  return "unmapped";
}

/**
 * Anthropic's `cache_control` (`{type: "ephemeral", ttl?: "5m" | "1h"}`), which some OpenAI clients
 * send on parts, messages and tools for OpenAI-compatible servers that honour it.
 */
function cacheOf(value: unknown, param: string): NonNullable<CacheMark["cache"]> {
  if (!isObject(value)) throw invalidType(param, "an object");
  const ttl = optional(value, "ttl", "string", `${param}.ttl`);
  return ttl === undefined ? {} : { ttl };
}

function markLast(parts: CacheMark[], cache: NonNullable<CacheMark["cache"]>): void {
  const last = parts[parts.length - 1];
  if (last !== undefined) last.cache = cache;
}
