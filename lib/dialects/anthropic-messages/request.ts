/**
 * Canonical request → Anthropic Messages body (issue 18): what an `anthropic` target, or Claude on
 * Bedrock through InvokeModel, is sent for a caller of another dialect (an OpenAI chat caller). A
 * Messages caller served by an Anthropic-speaking target is sent its own body instead (with the
 * target's model; {@link toBedrockInvokeBody} for Bedrock), so nothing of it is lost in a round trip.
 *
 * The Messages API wants alternating turns (consecutive same-role turns are merged here, tool
 * results first in a user turn), non-empty text blocks, tool names and ids of `[a-zA-Z0-9_-]`
 * (names of at most 64 characters: https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use),
 * and thinking blocks only with the signature Anthropic made (Bifrost #6342: a block signed by another
 * family, or unsigned, is refused). What the body cannot say is reported through
 * {@link MessagesRequestOptions.onDrop}, once per occurrence, for a log line per kind; it is never
 * refused here.
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
import { ANTHROPIC_FAMILY } from "./parse.ts";

type Obj = Record<string, unknown>;

/** The `anthropic_version` Bedrock's InvokeModel wants in a Claude body. */
export const BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31";

/** The output cap sent when the caller gave none: the Messages API requires `max_tokens`. */
export const DEFAULT_MAX_TOKENS = 4096;

export interface MessagesRequestOptions {
  /**
   * Write the InvokeModel form for Claude on Bedrock: `anthropic_version: "bedrock-2023-05-31"`,
   * the betas as `anthropic_beta` in the body (when any), and no `model` or `stream` key (Bedrock
   * refuses both as extraneous; the model is in the path, streaming is the operation).
   */
  bedrock?: { betas?: readonly string[] | undefined } | undefined;
  /** `max_tokens` when the request has no output cap (default {@link DEFAULT_MAX_TOKENS}). */
  defaultMaxTokens?: number | undefined;
  /** The tool-name mapping to use (default: {@link anthropicToolNames} of the request). */
  toolNames?: ToolNames | undefined;
  /** Told each thing the body cannot carry: a canonical field's name, or an `unmapped` key. */
  onDrop?: ((what: string) => void) | undefined;
}

/** Tool names as the target is sent them, and the way back for the answer's `tool_use` names. */
export interface ToolNames {
  toWire(name: string): string;
  /** The caller's name for a name the target answered with (unchanged when it was never mapped). */
  fromWire(name: string): string;
}

const VALID_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const VALID_ID = /^[a-zA-Z0-9_-]{1,128}$/;
const INVALID_CHARS = /[^a-zA-Z0-9_-]/g;

/**
 * The tool-name mapping for a request: a name the Messages API accepts is kept; another (an OpenAI
 * caller's `server.tool`, `ns:tool`, a name over 64 characters) becomes its first 55 characters with
 * every other character as `_`, then `_` and 8 hex digits of a hash of the whole name, so that two
 * names never meet. Every tool and every call of the history is mapped the same way.
 */
export function anthropicToolNames(g: GenerationRequest): ToolNames {
  const back = new Map<string, string>();
  const toWire = (name: string): string => {
    if (VALID_NAME.test(name)) return name;
    const wire = `${name.slice(0, 55).replace(INVALID_CHARS, "_")}_${hash(name)}`;
    back.set(wire, name);
    return wire;
  };
  for (const tool of g.tools ?? []) toWire(tool.name);
  for (const message of g.messages) {
    if (message.role !== "assistant") continue;
    for (const part of message.content) if (part.type === "tool-call") toWire(part.name);
  }
  return { toWire, fromWire: (name) => back.get(name) ?? name };
}

/**
 * A tool call's id as the Messages API accepts it (`[a-zA-Z0-9_-]`; some OpenAI-compatible servers
 * answer with ids like `functions.get_weather:0`). The same id maps the same way, so a `tool_use`
 * and its `tool_result` still match; Anthropic's own ids come back unchanged.
 */
export function anthropicToolId(id: string): string {
  if (VALID_ID.test(id)) return id;
  return `${id.slice(0, 100).replace(INVALID_CHARS, "_")}_${hash(id)}`;
}

/**
 * The Messages body for a canonical request: system parts as text blocks (a plain string when there
 * is one without a cache mark), turns merged by role, options under Anthropic's names.
 */
export function toMessagesRequest(g: GenerationRequest, options: MessagesRequestOptions = {}): Obj {
  const drop = options.onDrop ?? (() => {});
  const names = options.toolNames ?? anthropicToolNames(g);
  const body: Obj = {};
  if (options.bedrock === undefined) body.model = g.model;
  else {
    body.anthropic_version = BEDROCK_ANTHROPIC_VERSION;
    const betas = options.bedrock.betas ?? [];
    if (betas.length > 0) body.anthropic_beta = [...betas];
  }
  body.max_tokens = g.maxOutputTokens ?? options.defaultMaxTokens ?? DEFAULT_MAX_TOKENS;

  const system: Obj[] = [];
  for (const part of g.system) if (part.text !== "") system.push(textOut(part));
  const only = system[0];
  if (system.length === 1 && only !== undefined && only.cache_control === undefined) body.system = only.text;
  else if (system.length > 0) body.system = system;

  body.messages = turns(g, names, drop);

  if (g.tools !== undefined) {
    const tools: Obj[] = [];
    for (const tool of g.tools) {
      if (tool.custom !== undefined) drop("tools.custom");
      else tools.push(toolOut(tool, names));
    }
    if (tools.length > 0) body.tools = tools;
  }
  const choice = toolChoiceOut(g, names, drop);
  if (choice !== undefined) body.tool_choice = choice;
  if (g.temperature !== undefined) body.temperature = g.temperature;
  if (g.topP !== undefined) body.top_p = g.topP;
  if (g.topK !== undefined) body.top_k = g.topK;
  if (g.stop !== undefined && g.stop.length > 0) body.stop_sequences = g.stop;
  if (g.user !== undefined) body.metadata = { user_id: g.user };
  if (g.choices !== undefined && g.choices !== 1) drop("choices");

  const thinking = thinkingOut(g.reasoning);
  if (thinking !== undefined) body.thinking = thinking;
  const outputConfig: Obj = {};
  const effort = effortOut(g.reasoning?.effort);
  if (effort !== undefined) outputConfig.effort = effort;
  else if (g.reasoning?.effort !== undefined) drop("reasoning.effort");
  if (g.responseFormat !== undefined) {
    // Anthropic's structured output takes a schema; "any JSON object" has no such field.
    if (g.responseFormat.schema === undefined) drop("responseFormat");
    else outputConfig.format = { type: "json_schema", schema: g.responseFormat.schema };
  }
  if (Object.keys(outputConfig).length > 0) body.output_config = outputConfig;
  if (g.stream && options.bedrock === undefined) body.stream = true;
  for (const key of Object.keys(g.unmapped)) drop(key);
  return body;
}

/**
 * A Messages caller's own body in the InvokeModel form (Claude on Bedrock): every field kept, `model`
 * and `stream` taken out, `anthropic_version: "bedrock-2023-05-31"`, and the betas the target takes
 * (`filterBetas`, beta.ts) as `anthropic_beta`. A shallow copy: the caller's body is not changed.
 */
export function toBedrockInvokeBody(body: Obj, betas: readonly string[]): Obj {
  const out: Obj = { anthropic_version: BEDROCK_ANTHROPIC_VERSION };
  for (const key of Object.keys(body)) {
    if (key === "model" || key === "stream" || key === "anthropic_version" || key === "anthropic_beta")
      continue;
    out[key] = body[key];
  }
  if (betas.length > 0) out.anthropic_beta = [...betas];
  return out;
}

// ---- Turns -----------------------------------------------------------------------------------

interface Turn {
  role: "user" | "assistant";
  content: Obj[];
}

function turns(g: GenerationRequest, names: ToolNames, drop: (what: string) => void): Turn[] {
  const out: Turn[] = [];
  for (const message of g.messages) {
    const blocks =
      message.role === "user"
        ? userBlocks(message.content, drop)
        : assistantBlocks(message.content, names, drop);
    if (blocks.length === 0) continue;
    const last = out[out.length - 1];
    if (last !== undefined && last.role === message.role) {
      for (const block of blocks) last.content.push(block);
    } else out.push({ role: message.role, content: blocks });
  }
  for (const turn of out) if (turn.role === "user") toolResultsFirst(turn.content);
  // The API refuses a final assistant turn ending in white space (a continuation's prefill can).
  const final = out[out.length - 1];
  if (final?.role === "assistant") trimFinalText(final);
  return out.filter((turn) => turn.content.length > 0);
}

/** Tool results first in a user turn, each group in its order: the API wants them before any text. */
function toolResultsFirst(content: Obj[]): void {
  const results: Obj[] = [];
  const rest: Obj[] = [];
  for (const block of content) (block.type === "tool_result" ? results : rest).push(block);
  if (results.length === 0) return;
  content.length = 0;
  for (const block of results) content.push(block);
  for (const block of rest) content.push(block);
}

function trimFinalText(turn: Turn): void {
  const last = turn.content[turn.content.length - 1];
  if (last?.type !== "text" || typeof last.text !== "string") return;
  const trimmed = last.text.trimEnd();
  if (trimmed === "") turn.content.pop();
  else last.text = trimmed;
}

function userBlocks(content: UserPart[], drop: (what: string) => void): Obj[] {
  const blocks: Obj[] = [];
  for (const part of content) {
    if (part.type === "text") {
      if (part.text !== "") blocks.push(textOut(part));
    } else if (part.type === "image") blocks.push(imageOut(part, drop));
    else {
      const result: Obj = { type: "tool_result", tool_use_id: anthropicToolId(part.callId) };
      const inner: Obj[] = [];
      for (const piece of part.content) {
        if (piece.type === "text") {
          if (piece.text !== "") inner.push(textOut(piece));
        } else inner.push(imageOut(piece, drop));
      }
      // One plain text is written as the API's own shorthand, a string (as Claude Code sends it).
      const only = inner[0];
      if (
        inner.length === 1 &&
        only !== undefined &&
        only.type === "text" &&
        only.cache_control === undefined
      )
        result.content = only.text;
      else if (inner.length > 0) result.content = inner;
      if (part.isError) result.is_error = true;
      cacheOut(part, result);
      blocks.push(result);
    }
  }
  return blocks;
}

function assistantBlocks(content: AssistantPart[], names: ToolNames, drop: (what: string) => void): Obj[] {
  const blocks: Obj[] = [];
  for (const part of content) {
    switch (part.type) {
      case "text":
        if (part.text !== "") blocks.push(textOut(part));
        break;
      case "refusal":
        // Messages has no refusal field: the refusal is what the model said.
        if (part.text !== "") blocks.push({ type: "text", text: part.text });
        break;
      case "reasoning":
        if (part.family !== ANTHROPIC_FAMILY) drop("reasoning");
        else if (part.redacted !== undefined) blocks.push({ type: "redacted_thinking", data: part.redacted });
        else if (part.signature !== undefined)
          blocks.push({ type: "thinking", thinking: part.text, signature: part.signature });
        else drop("reasoning");
        break;
      case "tool-call": {
        const block: Obj = {
          type: "tool_use",
          id: anthropicToolId(part.id),
          name: names.toWire(part.name),
          input: toolInput(part.input, part.custom === true, drop),
        };
        cacheOut(part, block);
        blocks.push(block);
        break;
      }
    }
  }
  return blocks;
}

/**
 * A call's JSON text as the object the API wants. Text that is not a JSON object (a model's broken
 * arguments, a custom tool's free text) is sent as `{}` and reported: refusing the whole history over
 * one past call would strand the conversation.
 */
function toolInput(input: string, custom: boolean, drop: (what: string) => void): unknown {
  if (input.trim() === "") return {};
  if (!custom) {
    try {
      const value: unknown = JSON.parse(input);
      if (typeof value === "object" && value !== null && !Array.isArray(value)) return value;
    } catch {
      // reported below
    }
  }
  drop("tool-call.input");
  return {};
}

function textOut(part: TextPart): Obj {
  const out: Obj = { type: "text", text: part.text };
  cacheOut(part, out);
  return out;
}

/** Bytes as a `base64` source, a URL as a `url` source; `detail` has no Messages field. */
function imageOut(part: ImagePart, drop: (what: string) => void): Obj {
  const source: Obj =
    part.data !== undefined
      ? { type: "base64", media_type: part.mediaType, data: part.data }
      : { type: "url", url: part.url ?? "" };
  if (part.detail !== undefined) drop("image.detail");
  const out: Obj = { type: "image", source };
  cacheOut(part, out);
  return out;
}

function toolOut(tool: ToolDefinition, names: ToolNames): Obj {
  const out: Obj = {
    name: names.toWire(tool.name),
    // The API requires a schema; an OpenAI function without parameters takes none.
    input_schema: tool.parameters ?? { type: "object", properties: {} },
  };
  if (tool.description !== undefined) out.description = tool.description;
  if (tool.strict !== undefined) out.strict = tool.strict;
  cacheOut(tool, out);
  return out;
}

/** `required` is Anthropic's `any`; parallel calls turned off ride on the choice (`auto` if none). */
function toolChoiceOut(
  g: GenerationRequest,
  names: ToolNames,
  drop: (what: string) => void,
): Obj | undefined {
  const choice = g.toolChoice;
  let out: Obj | undefined;
  if (choice === undefined) out = undefined;
  else if (choice.type === "required") out = { type: "any" };
  else if (choice.type === "tool") out = { type: "tool", name: names.toWire(choice.name) };
  else out = { type: choice.type };
  if (g.parallelToolCalls === false) {
    if (out === undefined) out = { type: "auto" };
    if (out.type === "none") drop("parallelToolCalls");
    else out.disable_parallel_tool_use = true;
  }
  return out;
}

function thinkingOut(reasoning: GenerationRequest["reasoning"]): Obj | undefined {
  if (reasoning === undefined) return undefined;
  if (reasoning.mode === "disabled") return { type: "disabled" };
  if (reasoning.mode === "adaptive") return { type: "adaptive" };
  if (reasoning.budgetTokens !== undefined) return { type: "enabled", budget_tokens: reasoning.budgetTokens };
  return undefined;
}

/** OpenAI's efforts in Anthropic's words (`low` … `max`); `none` has no effort to say. */
function effortOut(effort: string | undefined): string | undefined {
  switch (effort) {
    case "minimal":
    case "low":
      return "low";
    case "medium":
    case "high":
    case "xhigh":
    case "max":
      return effort;
    default:
      return undefined;
  }
}

function cacheOut(part: CacheMark, into: Obj): void {
  if (part.cache === undefined) return;
  into.cache_control =
    part.cache.ttl === undefined ? { type: "ephemeral" } : { type: "ephemeral", ttl: part.cache.ttl };
}

/** FNV-1a of a string as 8 hex digits: short, stable, no dependency (not a security hash). */
function hash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}
