/**
 * OpenAI Responses, inbound: the caller's `POST /v1/responses` body as a {@link GenerationRequest}
 * plus what only this dialect has (issue 19). Field by field after the API reference,
 * https://platform.openai.com/docs/api-reference/responses/create.
 *
 * - `input` (a string, or items) and `instructions` become the system parts and turns: consecutive
 *   assistant-side items (reasoning, assistant messages, function and custom tool calls) are one
 *   assistant turn, consecutive tool outputs one user turn of tool results; system and developer
 *   messages join `system`, wherever they stand.
 * - Reasoning items keep their `encrypted_content` as the part's signature, of family `openai`
 *   unless the gateway sealed another family's signature into it (`reasoning.ts`).
 * - Custom tools keep their grammar (`custom.grammar`); {@link ParsedResponsesRequest.customTools}
 *   names them for the encoder, which turns a target's function call back into a custom call.
 * - Hosted tools (`web_search`, `file_search`, `mcp`, ...) are run by OpenAI's servers, not by the
 *   caller: no translated target can run them. They are left out of the canonical tools and named,
 *   once per kind, in {@link ParsedResponsesRequest.droppedTools}; a `tool_choice` that requires one
 *   is a 400.
 * - What the canonical model has no place for is kept in `unmapped` under its Responses name
 *   (`client_metadata`, `text.verbosity`, `input[4]` for a `web_search_call` item, ...).
 *
 * A body of the wrong shape is a 400 naming the field (`input[3].content[0].type`). Every walk over
 * the caller's JSON is a loop over one array or one object's keys (schemas are kept by reference,
 * never walked), so no caller structure can overflow the stack.
 */
import type {
  AssistantPart,
  GenerationRequest,
  ImagePart,
  Message,
  ReasoningPart,
  TextPart,
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
  stringTooLong,
  tooManyProperties,
  unsupportedValue,
} from "../../errors.ts";
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
import { openReasoning } from "./reasoning.ts";

/**
 * The request fields a response object repeats (https://platform.openai.com/docs/api-reference/responses/object),
 * with OpenAI's defaults where the caller left them out.
 */
export interface ResponseEcho {
  instructions: string | null;
  tools: unknown[];
  tool_choice: unknown;
  parallel_tool_calls: boolean;
  text: unknown;
  reasoning: { effort: string | null; summary: string | null };
  max_output_tokens: number | null;
  temperature: number;
  top_p: number;
  metadata: Record<string, string>;
  store: boolean;
  previous_response_id: string | null;
  user?: string;
  safety_identifier?: string;
  prompt_cache_key?: string;
}

/** A Responses request: the canonical request, and what the dialect needs beside it. */
export interface ParsedResponsesRequest {
  generation: GenerationRequest;
  /** Whether to keep the response for `previous_response_id` and `GET` (OpenAI's default: true). */
  store: boolean;
  previousResponseId?: string | undefined;
  /** Extra output asked for (`reasoning.encrypted_content`, ...), as given. */
  include: string[];
  metadata?: Record<string, string> | undefined;
  promptCacheKey?: string | undefined;
  /** `reasoning.summary` (`auto`, `concise`, `detailed`): the caller wants reasoning as a summary. */
  reasoningSummary?: string | undefined;
  /** Hosted tool kinds left out (`web_search`, ...), each once, in order of first appearance. */
  droppedTools: string[];
  /** Names of the custom tools, for the encoder to turn function calls of theirs back. */
  customTools: string[];
  /** The input as items (a string input is one user message item), as the caller sent them. */
  input: unknown[];
  echo: ResponseEcho;
}

/**
 * Top-level fields read. `stream_options` only has `include_obfuscation`, padding the gateway never
 * writes: read and not kept. `safety_identifier` is `user`'s successor and wins over it.
 */
const READ = new Set([
  "model",
  "input",
  "instructions",
  "tools",
  "tool_choice",
  "parallel_tool_calls",
  "text",
  "reasoning",
  "max_output_tokens",
  "temperature",
  "top_p",
  "stream",
  "stream_options",
  "user",
  "safety_identifier",
  "store",
  "previous_response_id",
  "include",
  "metadata",
  "prompt_cache_key",
]);

/**
 * Item fields read, by item type. `id` and `status` are the API's own labels of items it made, and
 * a message's `phase` (`commentary`, `final_answer`) a label of Codex's: read and not kept.
 */
const ITEM_FIELDS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ["message", new Set(["type", "role", "content", "id", "status", "phase"])],
  ["function_call", new Set(["type", "call_id", "name", "arguments", "id", "status"])],
  ["function_call_output", new Set(["type", "call_id", "output", "id", "status"])],
  ["custom_tool_call", new Set(["type", "call_id", "name", "input", "id", "status"])],
  ["custom_tool_call_output", new Set(["type", "call_id", "output", "id", "status"])],
  ["reasoning", new Set(["type", "id", "summary", "content", "encrypted_content", "status"])],
]);

const ROLES = "'user', 'assistant', 'system', 'developer'";

/** OpenAI's bounds on `metadata`: 16 pairs, keys of 64 characters, values of 512. */
export const METADATA_MAX_PAIRS = 16;
const METADATA_MAX_KEY = 64;
const METADATA_MAX_VALUE = 512;

/**
 * The canonical request for a Responses body, and the dialect's own fields beside it. Throws
 * {@link InvalidRequestError} (400) naming the field for a shape OpenAI would refuse too, and for a
 * `tool_choice` that requires a hosted tool; keeps a well-formed field it cannot map in `unmapped`.
 */
export function parseResponsesRequest(body: unknown): ParsedResponsesRequest {
  if (!isObject(body)) throw invalidJson("The request body must be a JSON object.");
  if (typeof body.model !== "string") throw badField(body.model, "model", "a string");
  if (!present(body.input)) throw missingParameter("input");
  const generation: GenerationRequest = {
    model: body.model,
    system: [],
    messages: [],
    stream: false,
    extensions: {},
    unmapped: {},
  };
  const unmapped = generation.unmapped;
  for (const field of Object.keys(body)) {
    if (!READ.has(field) && present(body[field])) put(unmapped, field, body[field]);
  }

  const instructions = optional(body, "instructions", "string");
  if (instructions !== undefined) generation.system.push({ type: "text", text: instructions });
  const input = readInput(body.input, generation);

  const stream = optional(body, "stream", "boolean");
  if (stream !== undefined) generation.stream = stream;
  const droppedTools: string[] = [];
  const customTools: string[] = [];
  if (present(body.tools)) {
    const tools = readTools(body.tools, droppedTools, customTools, unmapped);
    if (tools.length > 0) generation.tools = tools;
  }
  if (present(body.tool_choice)) {
    const choice = readToolChoice(body.tool_choice, generation.tools, droppedTools);
    if (choice === undefined) put(unmapped, "tool_choice", body.tool_choice);
    else generation.toolChoice = choice;
  }
  const parallel = optional(body, "parallel_tool_calls", "boolean");
  if (parallel !== undefined) generation.parallelToolCalls = parallel;
  const maxOutput = optionalInteger(body, "max_output_tokens");
  if (maxOutput !== undefined) generation.maxOutputTokens = maxOutput;
  const temperature = optional(body, "temperature", "number");
  if (temperature !== undefined) generation.temperature = temperature;
  const topP = optional(body, "top_p", "number");
  if (topP !== undefined) generation.topP = topP;
  if (present(body.text)) readText(body.text, generation);
  let reasoningSummary: string | undefined;
  if (present(body.reasoning)) reasoningSummary = readReasoning(body.reasoning, generation);
  const user = optional(body, "safety_identifier", "string") ?? optional(body, "user", "string");
  if (user !== undefined) generation.user = user;
  if (present(body.stream_options) && !isObject(body.stream_options))
    throw invalidType("stream_options", "an object");

  const store = optional(body, "store", "boolean") ?? true;
  const previousResponseId = optional(body, "previous_response_id", "string");
  const include = present(body.include) ? strings(body.include, "include") : [];
  const metadata = present(body.metadata) ? readMetadata(body.metadata) : undefined;
  const promptCacheKey = optional(body, "prompt_cache_key", "string");

  const parsed: ParsedResponsesRequest = {
    generation,
    store,
    include,
    droppedTools,
    customTools,
    input,
    echo: echoOf(body, store, metadata, reasoningSummary),
  };
  if (previousResponseId !== undefined) parsed.previousResponseId = previousResponseId;
  if (metadata !== undefined) parsed.metadata = metadata;
  if (promptCacheKey !== undefined) parsed.promptCacheKey = promptCacheKey;
  if (reasoningSummary !== undefined) parsed.reasoningSummary = reasoningSummary;
  return parsed;
}

function echoOf(
  body: Obj,
  store: boolean,
  metadata: Record<string, string> | undefined,
  summary: string | undefined,
): ResponseEcho {
  const reasoning = isObject(body.reasoning) ? body.reasoning : {};
  const echo: ResponseEcho = {
    instructions: typeof body.instructions === "string" ? body.instructions : null,
    tools: Array.isArray(body.tools) ? body.tools : [],
    tool_choice: present(body.tool_choice) ? body.tool_choice : "auto",
    parallel_tool_calls: typeof body.parallel_tool_calls === "boolean" ? body.parallel_tool_calls : true,
    text: { format: { type: "text" }, ...(isObject(body.text) ? body.text : {}) },
    reasoning: {
      effort: typeof reasoning.effort === "string" ? reasoning.effort : null,
      summary: summary ?? null,
    },
    max_output_tokens: typeof body.max_output_tokens === "number" ? body.max_output_tokens : null,
    temperature: typeof body.temperature === "number" ? body.temperature : 1,
    top_p: typeof body.top_p === "number" ? body.top_p : 1,
    metadata: metadata ?? {},
    store,
    previous_response_id: typeof body.previous_response_id === "string" ? body.previous_response_id : null,
  };
  if (typeof body.user === "string") echo.user = body.user;
  if (typeof body.safety_identifier === "string") echo.safety_identifier = body.safety_identifier;
  if (typeof body.prompt_cache_key === "string") echo.prompt_cache_key = body.prompt_cache_key;
  return echo;
}

// ---- Input -----------------------------------------------------------------------------------

/** The turns `input` says, appended to `out`; returns the input as items. */
function readInput(input: unknown, out: GenerationRequest): unknown[] {
  if (typeof input === "string") {
    out.messages.push({ role: "user", content: [{ type: "text", text: input }] });
    return [{ type: "message", role: "user", content: input }];
  }
  if (!Array.isArray(input)) throw invalidType("input", "a string or an array of input items");
  const unmapped = out.unmapped;
  // The assistant turn or the user turn of tool results the previous items opened, if still open.
  let assistant: { role: "assistant"; content: AssistantPart[] } | undefined;
  let results: { role: "user"; content: UserPart[] } | undefined;
  const assistantTurn = (): AssistantPart[] => {
    results = undefined;
    if (assistant === undefined) {
      assistant = { role: "assistant", content: [] };
      out.messages.push(assistant);
    }
    return assistant.content;
  };
  for (let i = 0; i < input.length; i++) {
    const item = input[i];
    const param = `input[${i}]`;
    if (!isObject(item)) throw invalidType(param, "an object");
    // An "easy" input message (`{role, content}`) may leave out its type.
    const type = item.type ?? (present(item.role) ? "message" : undefined);
    if (type === undefined || type === null) throw missingParameter(`${param}.type`);
    if (typeof type !== "string") throw invalidType(`${param}.type`, "a string");
    const fields = ITEM_FIELDS.get(type);
    if (fields === undefined) {
      // `item_reference` (resolved by the store before parsing), `web_search_call`, `compaction`...
      put(unmapped, param, item);
      continue;
    }
    extras(item, fields, param, unmapped);
    switch (type) {
      case "message": {
        const role = item.role;
        if (!present(role)) throw missingParameter(`${param}.role`);
        if (typeof role !== "string") throw invalidType(`${param}.role`, "a string");
        if (role === "system" || role === "developer") {
          textContent(item.content, `${param}.content`, out.system, unmapped);
        } else if (role === "user") {
          assistant = undefined;
          results = undefined;
          const content: UserPart[] = [];
          userContent(item.content, `${param}.content`, content, unmapped);
          out.messages.push({ role: "user", content } satisfies Message);
        } else if (role === "assistant") {
          assistantContent(item.content, `${param}.content`, assistantTurn(), unmapped);
        } else {
          throw notOneOf(`${param}.role`, role, ROLES);
        }
        break;
      }
      case "function_call":
      case "custom_tool_call": {
        const custom = type === "custom_tool_call";
        const callId = requiredString(item, "call_id", param);
        const name = requiredString(item, "name", param);
        const field = custom ? "input" : "arguments";
        const text = item[field] ?? "";
        if (typeof text !== "string") throw invalidType(`${param}.${field}`, "a string");
        assistantTurn().push({
          type: "tool-call",
          id: callId,
          name,
          input: text,
          ...(custom ? { custom: true } : {}),
        });
        break;
      }
      case "reasoning":
        assistantTurn().push(reasoningPart(item, param));
        break;
      default: {
        // function_call_output, custom_tool_call_output
        assistant = undefined;
        const part = toolOutput(item, param, unmapped);
        if (results === undefined) {
          results = { role: "user", content: [] };
          out.messages.push(results);
        }
        results.content.push(part);
      }
    }
  }
  return input;
}

/** System and developer content: a string or `input_text` parts; other parts go to `unmapped`. */
function textContent(content: unknown, param: string, into: TextPart[], unmapped: Obj): void {
  eachPart(content, param, into, (part, partParam) => {
    if (part.type === "input_text") into.push(textPart(part, partParam, unmapped));
    else unmappedPart(part, partParam, unmapped);
  });
}

function userContent(content: unknown, param: string, into: UserPart[], unmapped: Obj): void {
  eachPart(content, param, into, (part, partParam) => {
    if (part.type === "input_text") into.push(textPart(part, partParam, unmapped));
    else if (part.type === "input_image" && present(part.image_url))
      into.push(imagePart(part, partParam, unmapped));
    // An image by `file_id`, `input_file`, `input_audio`: well-formed, with no canonical place.
    else unmappedPart(part, partParam, unmapped);
  });
}

/** An assistant message's parts: `output_text` (and `input_text`, which clients also send) and `refusal`. */
function assistantContent(content: unknown, param: string, into: AssistantPart[], unmapped: Obj): void {
  eachPart(content, param, into, (part, partParam) => {
    if (part.type === "output_text" || part.type === "input_text") {
      if (typeof part.text !== "string") throw badField(part.text, `${partParam}.text`, "a string");
      into.push({ type: "text", text: part.text });
      for (const key of Object.keys(part)) {
        if (key === "type" || key === "text" || !present(part[key])) continue;
        // The answer's own `annotations` and `logprobs`, sent back empty by every client.
        if ((key === "annotations" || key === "logprobs") && isEmptyArray(part[key])) continue;
        put(unmapped, `${partParam}.${key}`, part[key]);
      }
    } else if (part.type === "refusal") {
      if (typeof part.refusal !== "string") throw badField(part.refusal, `${partParam}.refusal`, "a string");
      extras(part, PART_FIELDS.refusal, partParam, unmapped);
      into.push({ type: "refusal", text: part.refusal });
    } else unmappedPart(part, partParam, unmapped);
  });
}

const PART_FIELDS = {
  text: new Set(["type", "text"]),
  image: new Set(["type", "image_url", "detail"]),
  refusal: new Set(["type", "refusal"]),
  summary: new Set(["type", "text"]),
};

function textPart(part: Obj, param: string, unmapped: Obj): TextPart {
  if (typeof part.text !== "string") throw badField(part.text, `${param}.text`, "a string");
  extras(part, PART_FIELDS.text, param, unmapped);
  return { type: "text", text: part.text };
}

/**
 * An `input_image` given by `image_url`: a base64 data URL becomes bytes and a media type, any
 * other URL stays a URL (`image/*`: its type is only known once fetched).
 */
function imagePart(part: Obj, param: string, unmapped: Obj): ImagePart {
  const url = part.image_url;
  if (typeof url !== "string") throw invalidType(`${param}.image_url`, "a string");
  extras(part, PART_FIELDS.image, param, unmapped);
  const image: ImagePart = { type: "image", mediaType: "image/*", ...fromDataUrl(url) };
  const detail = optional(part, "detail", "string", `${param}.detail`);
  if (detail !== undefined) image.detail = detail;
  return image;
}

/**
 * A reasoning item: its raw `content` text when it has some (what the gateway writes for a target's
 * reasoning, and what a signature of Anthropic's covers), else its summary; `encrypted_content` as
 * the signature of its family.
 */
function reasoningPart(item: Obj, param: string): ReasoningPart {
  let text = "";
  let hasContent = false;
  if (present(item.content)) {
    if (!Array.isArray(item.content)) throw invalidType(`${param}.content`, "an array");
    for (let j = 0; j < item.content.length; j++) {
      const part = item.content[j];
      if (!isObject(part) || typeof part.text !== "string")
        throw badField(isObject(part) ? part.text : part, `${param}.content[${j}].text`, "a string");
      text += part.text;
      hasContent = true;
    }
  }
  const summary = item.summary;
  if (!present(summary)) throw missingParameter(`${param}.summary`);
  if (!Array.isArray(summary)) throw invalidType(`${param}.summary`, "an array");
  for (let j = 0; j < summary.length; j++) {
    const part = summary[j];
    if (!isObject(part) || typeof part.text !== "string")
      throw badField(isObject(part) ? part.text : part, `${param}.summary[${j}].text`, "a string");
    if (!hasContent) text += j === 0 ? part.text : `\n\n${part.text}`;
  }
  const encrypted = optional(item, "encrypted_content", "string", `${param}.encrypted_content`);
  if (encrypted === undefined) return { type: "reasoning", text, family: "openai" };
  const seal = openReasoning(encrypted);
  const part: ReasoningPart = { type: "reasoning", text, family: seal.family };
  if (seal.signature !== undefined) part.signature = seal.signature;
  if (seal.redacted !== undefined) part.redacted = seal.redacted;
  return part;
}

/** A `function_call_output` or `custom_tool_call_output`: its output a string or input parts. */
function toolOutput(item: Obj, param: string, unmapped: Obj): ToolResultPart {
  const callId = requiredString(item, "call_id", param);
  const output = item.output;
  const content: Array<TextPart | ImagePart> = [];
  if (typeof output === "string") content.push({ type: "text", text: output });
  else if (Array.isArray(output)) {
    const parts: UserPart[] = [];
    userContent(output, `${param}.output`, parts, unmapped);
    for (const part of parts) if (part.type !== "tool-result") content.push(part);
  } else throw badField(output, `${param}.output`, "a string or an array of content parts");
  return { type: "tool-result", callId, content };
}

// ---- Tools and options -----------------------------------------------------------------------

const TOOL_FIELDS = {
  function: new Set(["type", "name", "description", "parameters", "strict"]),
  custom: new Set(["type", "name", "description", "format"]),
};

/**
 * `function` and `custom` tools; any other kind is a hosted tool (run by OpenAI's servers: web and
 * file search, code interpreter, image generation, MCP, shells, computer use, client tool search)
 * and its kind is added to `dropped`, once.
 */
function readTools(tools: unknown, dropped: string[], custom: string[], unmapped: Obj): ToolDefinition[] {
  if (!Array.isArray(tools)) throw invalidType("tools", "an array");
  const out: ToolDefinition[] = [];
  for (let i = 0; i < tools.length; i++) {
    const tool = tools[i];
    const param = `tools[${i}]`;
    if (!isObject(tool)) throw invalidType(param, "an object");
    if (tool.type === "function") {
      const definition: ToolDefinition = { name: requiredString(tool, "name", param) };
      const description = optional(tool, "description", "string", `${param}.description`);
      if (description !== undefined) definition.description = description;
      if (present(tool.parameters)) {
        if (!isObject(tool.parameters)) throw invalidType(`${param}.parameters`, "an object (a JSON Schema)");
        definition.parameters = tool.parameters;
      }
      const strict = optional(tool, "strict", "boolean", `${param}.strict`);
      if (strict !== undefined) definition.strict = strict;
      extras(tool, TOOL_FIELDS.function, param, unmapped);
      out.push(definition);
    } else if (tool.type === "custom") {
      const grammar = present(tool.format) ? grammarOf(tool.format, `${param}.format`) : undefined;
      const definition: ToolDefinition = {
        name: requiredString(tool, "name", param),
        custom: grammar === undefined ? {} : { grammar },
      };
      const description = optional(tool, "description", "string", `${param}.description`);
      if (description !== undefined) definition.description = description;
      extras(tool, TOOL_FIELDS.custom, param, unmapped);
      out.push(definition);
      custom.push(definition.name);
    } else {
      if (typeof tool.type !== "string") throw badField(tool.type, `${param}.type`, "a string");
      if (!dropped.includes(tool.type)) dropped.push(tool.type);
    }
  }
  return out;
}

/** A custom tool's `format`: `{type: "text"}` (free text: no grammar) or `{type: "grammar", syntax, definition}`. */
function grammarOf(format: unknown, param: string): { syntax: string; definition: string } | undefined {
  if (!isObject(format)) throw invalidType(param, "an object");
  if (format.type === "text") return undefined;
  if (format.type !== "grammar") throw notOneOf(`${param}.type`, format.type, "'text', 'grammar'");
  const syntax = requiredString(format, "syntax", param);
  if (syntax !== "lark" && syntax !== "regex") throw notOneOf(`${param}.syntax`, syntax, "'lark', 'regex'");
  return { syntax, definition: requiredString(format, "definition", param) };
}

/**
 * `none`, `auto`, `required`, a named function or custom tool; undefined (kept unmapped) for
 * `allowed_tools`. A choice that requires a hosted tool, or `required` when every tool given was a
 * hosted one, is a 400: no translated target can honour it.
 */
function readToolChoice(
  choice: unknown,
  tools: ToolDefinition[] | undefined,
  dropped: string[],
): ToolChoice | undefined {
  if (choice === "none" || choice === "auto" || choice === "required") {
    if (choice === "required" && tools === undefined && dropped.length > 0) throw hostedRequired(dropped[0]);
    return { type: choice };
  }
  if (typeof choice === "string")
    throw notOneOf("tool_choice", choice, "'none', 'auto', 'required' or an object naming a tool");
  if (!isObject(choice)) throw invalidType("tool_choice", "a string or an object");
  const type = choice.type;
  if (type === "function" || type === "custom")
    return { type: "tool", name: requiredString(choice, "name", "tool_choice") };
  if (type === "allowed_tools") return undefined;
  if (typeof type !== "string") throw badField(type, "tool_choice.type", "a string");
  throw hostedRequired(type);
}

function hostedRequired(kind: string | undefined): InvalidRequestError {
  return unsupportedValue(
    "tool_choice",
    `'tool_choice' requires the hosted tool '${quoteCallerText(kind)}', which this gateway's targets cannot run.`,
  );
}

/** `text.format` into `responseFormat`; `text.verbosity` and any other key are unmapped. */
function readText(text: unknown, out: GenerationRequest): void {
  if (!isObject(text)) throw invalidType("text", "an object");
  for (const key of Object.keys(text)) {
    if (key !== "format" && present(text[key])) put(out.unmapped, `text.${key}`, text[key]);
  }
  const format = text.format;
  if (!present(format)) return;
  if (!isObject(format)) throw invalidType("text.format", "an object");
  if (format.type === "text") return;
  if (format.type === "json_object") {
    out.responseFormat = { type: "json" };
    return;
  }
  if (format.type === "json_schema") {
    const spec: NonNullable<GenerationRequest["responseFormat"]> = { type: "json" };
    spec.name = requiredString(format, "name", "text.format");
    if (!present(format.schema)) throw missingParameter("text.format.schema");
    if (!isObject(format.schema)) throw invalidType("text.format.schema", "an object (a JSON Schema)");
    spec.schema = format.schema;
    const description = optional(format, "description", "string", "text.format.description");
    if (description !== undefined) spec.description = description;
    const strict = optional(format, "strict", "boolean", "text.format.strict");
    if (strict !== undefined) spec.strict = strict;
    out.responseFormat = spec;
    return;
  }
  if (typeof format.type !== "string") throw badField(format.type, "text.format.type", "a string");
  throw notOneOf("text.format.type", format.type, "'text', 'json_object', 'json_schema'");
}

/** `reasoning.effort` into the canonical request; returns `reasoning.summary` (or the older `generate_summary`). */
function readReasoning(reasoning: unknown, out: GenerationRequest): string | undefined {
  if (!isObject(reasoning)) throw invalidType("reasoning", "an object");
  let summary: string | undefined;
  for (const key of Object.keys(reasoning)) {
    const value = reasoning[key];
    if (!present(value)) continue;
    if (key === "effort") {
      if (typeof value !== "string") throw invalidType("reasoning.effort", "a string");
      out.reasoning = { effort: value };
    } else if (key === "summary" || key === "generate_summary") {
      if (typeof value !== "string") throw invalidType(`reasoning.${key}`, "a string");
      summary = value;
    } else put(out.unmapped, `reasoning.${key}`, value);
  }
  return summary;
}

function readMetadata(value: unknown): Record<string, string> {
  if (!isObject(value)) throw invalidType("metadata", "an object of strings");
  const keys = Object.keys(value);
  if (keys.length > METADATA_MAX_PAIRS)
    throw tooManyProperties(
      "metadata",
      `Invalid 'metadata': too many properties. Expected at most ${METADATA_MAX_PAIRS} properties, got ${keys.length}.`,
    );
  const out: Record<string, string> = {};
  for (const key of keys) {
    const text = value[key];
    if (key.length > METADATA_MAX_KEY)
      throw invalidValue(
        "metadata",
        `Invalid 'metadata': a key is longer than ${METADATA_MAX_KEY} characters: '${quoteCallerText(key)}'.`,
      );
    if (typeof text !== "string") throw invalidType(`metadata.${quoteCallerText(key)}`, "a string");
    if (text.length > METADATA_MAX_VALUE)
      throw stringTooLong(
        "metadata",
        `Invalid 'metadata.${quoteCallerText(key)}': longer than ${METADATA_MAX_VALUE} characters.`,
      );
    put(out, key, text);
  }
  return out;
}

// ---- Small helpers ---------------------------------------------------------------------------

function isEmptyArray(value: unknown): boolean {
  return Array.isArray(value) && value.length === 0;
}
