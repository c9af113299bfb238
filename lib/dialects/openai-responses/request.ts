/**
 * Canonical request → OpenAI Responses body (issue 19): what an OpenAI target declared to speak
 * Responses is sent for a caller of another dialect (Chat Completions, Anthropic Messages). A
 * Responses caller served by such a target is passed through and never comes here.
 *
 * The gateway keeps no state at OpenAI: the body says `store: false` and asks for
 * `reasoning.encrypted_content`, so reasoning comes back as a signature the next turn sends again.
 * What the body cannot say (top-k, stop sequences, several answers, cache marks, reasoning of
 * another family, a tool result's error flag, every `unmapped` field of the caller's dialect) is
 * reported through {@link ResponsesRequestOptions.onDrop}, once per occurrence, never refused here.
 */
import type {
  AssistantPart,
  GenerationRequest,
  ImagePart,
  TextPart,
  ToolDefinition,
  UserPart,
} from "../../core/request.ts";
import { OPENAI_FAMILY } from "./reasoning.ts";

type Obj = Record<string, unknown>;

export interface ResponsesRequestOptions {
  /** Told each thing the body cannot carry: a canonical field's name, or an `unmapped` key. */
  onDrop?: ((what: string) => void) | undefined;
}

/** The Responses body for a canonical request. */
export function toResponsesRequest(g: GenerationRequest, options: ResponsesRequestOptions = {}): Obj {
  const drop = options.onDrop ?? (() => {});
  const input: Obj[] = [];
  for (const part of g.system) {
    if (part.cache !== undefined) drop("cache");
    input.push({ type: "message", role: "developer", content: [{ type: "input_text", text: part.text }] });
  }
  // Which calls were custom: their outputs are `custom_tool_call_output` items.
  const customCalls = new Set<string>();
  for (const message of g.messages) {
    if (message.role === "user") userItems(message.content, customCalls, input, drop);
    else assistantItems(message.content, customCalls, input, drop);
  }
  const body: Obj = { model: g.model, input, store: false, include: ["reasoning.encrypted_content"] };
  if (g.tools !== undefined) body.tools = g.tools.map((tool) => toolOut(tool, drop));
  if (g.toolChoice !== undefined) {
    const choice = g.toolChoice;
    if (choice.type !== "tool") body.tool_choice = choice.type;
    else {
      const custom = g.tools?.some((tool) => tool.name === choice.name && tool.custom !== undefined) === true;
      body.tool_choice = { type: custom ? "custom" : "function", name: choice.name };
    }
  }
  if (g.parallelToolCalls !== undefined) body.parallel_tool_calls = g.parallelToolCalls;
  if (g.maxOutputTokens !== undefined) body.max_output_tokens = g.maxOutputTokens;
  if (g.temperature !== undefined) body.temperature = g.temperature;
  if (g.topP !== undefined) body.top_p = g.topP;
  if (g.topK !== undefined) drop("topK");
  if (g.stop !== undefined) drop("stop");
  if (g.choices !== undefined && g.choices !== 1) drop("choices");
  if (g.responseFormat !== undefined) body.text = { format: formatOut(g.responseFormat) };
  if (g.reasoning?.effort !== undefined) body.reasoning = { effort: g.reasoning.effort };
  if (g.reasoning?.budgetTokens !== undefined) drop("reasoning.budgetTokens");
  if (g.user !== undefined) body.safety_identifier = g.user;
  if (g.stream) body.stream = true;
  for (const key of Object.keys(g.unmapped)) drop(key);
  return body;
}

function userItems(
  content: UserPart[],
  customCalls: ReadonlySet<string>,
  into: Obj[],
  drop: (what: string) => void,
): void {
  let parts: Obj[] = [];
  const flush = () => {
    if (parts.length === 0) return;
    into.push({ type: "message", role: "user", content: parts });
    parts = [];
  };
  for (const part of content) {
    if (part.cache !== undefined) drop("cache");
    if (part.type === "tool-result") {
      flush();
      if (part.isError) drop("isError");
      const only = part.content[0];
      const output =
        part.content.length === 1 && only?.type === "text" ? only.text : part.content.map(inputPart);
      const type = customCalls.has(part.callId) ? "custom_tool_call_output" : "function_call_output";
      into.push({ type, call_id: part.callId, output });
    } else parts.push(inputPart(part));
  }
  flush();
}

function inputPart(part: TextPart | ImagePart): Obj {
  if (part.type === "text") return { type: "input_text", text: part.text };
  const url = part.data !== undefined ? `data:${part.mediaType};base64,${part.data}` : (part.url ?? "");
  return { type: "input_image", image_url: url, detail: part.detail ?? "auto" };
}

function assistantItems(
  content: AssistantPart[],
  customCalls: Set<string>,
  into: Obj[],
  drop: (what: string) => void,
): void {
  let parts: Obj[] = [];
  const flush = () => {
    if (parts.length === 0) return;
    into.push({ type: "message", role: "assistant", content: parts });
    parts = [];
  };
  for (const part of content) {
    if (part.cache !== undefined) drop("cache");
    switch (part.type) {
      case "text":
        parts.push({ type: "output_text", text: part.text, annotations: [] });
        break;
      case "refusal":
        parts.push({ type: "refusal", refusal: part.text });
        break;
      case "reasoning":
        flush();
        // Only OpenAI's own encrypted reasoning means anything to OpenAI; its text alone does not.
        if (part.family === OPENAI_FAMILY && part.signature !== undefined)
          into.push({ type: "reasoning", summary: [], encrypted_content: part.signature });
        else drop("reasoning");
        break;
      case "tool-call":
        flush();
        if (part.custom) {
          customCalls.add(part.id);
          into.push({ type: "custom_tool_call", call_id: part.id, name: part.name, input: part.input });
        } else into.push({ type: "function_call", call_id: part.id, name: part.name, arguments: part.input });
        break;
    }
  }
  flush();
}

function toolOut(tool: ToolDefinition, drop: (what: string) => void): Obj {
  if (tool.cache !== undefined) drop("cache");
  if (tool.custom !== undefined) {
    const out: Obj = { type: "custom", name: tool.name };
    if (tool.description !== undefined) out.description = tool.description;
    const grammar = tool.custom.grammar;
    if (grammar !== undefined)
      out.format = { type: "grammar", syntax: grammar.syntax, definition: grammar.definition };
    return out;
  }
  const out: Obj = { type: "function", name: tool.name };
  if (tool.description !== undefined) out.description = tool.description;
  out.parameters = tool.parameters ?? { type: "object", properties: {} };
  // Responses makes functions strict by default; a canonical tool is strict only when it says so.
  out.strict = tool.strict ?? false;
  return out;
}

function formatOut(format: NonNullable<GenerationRequest["responseFormat"]>): Obj {
  if (format.schema === undefined && format.name === undefined) return { type: "json_object" };
  const out: Obj = { type: "json_schema", name: format.name ?? "response" };
  if (format.description !== undefined) out.description = format.description;
  if (format.schema !== undefined) out.schema = format.schema;
  if (format.strict !== undefined) out.strict = format.strict;
  return out;
}
