/**
 * Custom (free-form input) tools for targets that only know function tools (issue 19).
 *
 * Codex's `apply_patch` is a custom tool: its input is a patch in a Lark grammar, not JSON. OpenAI
 * (chat and Responses) takes such a tool as is; DeepSeek, Bedrock and Anthropic do not. For those,
 * {@link customToolsAsFunctions} rewrites the canonical request so that each custom tool is a
 * function of one string parameter, {@link CUSTOM_INPUT}, the grammar said in its description, and
 * each custom call of the history a function call with that one argument. The Responses encoder
 * turns such a function call back into a `custom_tool_call` (given the custom tools' names) with
 * {@link customInputOf}, so the caller never sees the difference.
 */
import type { AssistantPart, GenerationRequest, Message, ToolDefinition } from "../../core/request.ts";

/** The one parameter of a custom tool written as a function. */
export const CUSTOM_INPUT = "input";

/**
 * The request with every custom tool a function of one string parameter, and every custom call of
 * its history a function call whose arguments are `{"input": <the call's text>}`. A request without
 * custom tools or calls is returned as is (the same object).
 */
export function customToolsAsFunctions(g: GenerationRequest): GenerationRequest {
  const hasCustomTool = g.tools?.some((tool) => tool.custom !== undefined) === true;
  let hasCustomCall = false;
  for (const message of g.messages) {
    if (message.role !== "assistant") continue;
    for (const part of message.content) if (part.type === "tool-call" && part.custom) hasCustomCall = true;
  }
  if (!hasCustomTool && !hasCustomCall) return g;
  const out: GenerationRequest = { ...g };
  if (g.tools !== undefined) out.tools = g.tools.map(asFunction);
  if (hasCustomCall) {
    out.messages = g.messages.map((message): Message => {
      if (message.role !== "assistant") return message;
      return { role: "assistant", content: message.content.map(callAsFunction) };
    });
  }
  return out;
}

function asFunction(tool: ToolDefinition): ToolDefinition {
  if (tool.custom === undefined) return tool;
  const grammar = tool.custom.grammar;
  let description = tool.description ?? "";
  if (grammar !== undefined) {
    const said = `The \`${CUSTOM_INPUT}\` argument must follow this ${grammar.syntax} grammar:\n${grammar.definition}`;
    description = description === "" ? said : `${description}\n\n${said}`;
  }
  const out: ToolDefinition = {
    name: tool.name,
    parameters: {
      type: "object",
      properties: { [CUSTOM_INPUT]: { type: "string", description: "The tool's raw input text." } },
      required: [CUSTOM_INPUT],
      additionalProperties: false,
    },
  };
  if (description !== "") out.description = description;
  if (tool.cache !== undefined) out.cache = tool.cache;
  return out;
}

function callAsFunction(part: AssistantPart): AssistantPart {
  if (part.type !== "tool-call" || !part.custom) return part;
  const { custom: _custom, ...rest } = part;
  return { ...rest, input: JSON.stringify({ [CUSTOM_INPUT]: part.input }) };
}

/**
 * A custom tool's text from the arguments of the function call that stood for it: the one string
 * argument (by any name: a model may rename it), or else the arguments as they came (a model that
 * answered with bare text, or JSON of another shape, is the caller's tool's to judge).
 */
export function customInputOf(args: string): string {
  let value: unknown;
  try {
    value = JSON.parse(args);
  } catch {
    return args;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return args;
  const record = value as Record<string, unknown>;
  const own = record[CUSTOM_INPUT];
  if (typeof own === "string") return own;
  const keys = Object.keys(record);
  const only = keys.length === 1 && keys[0] !== undefined ? record[keys[0]] : undefined;
  return typeof only === "string" ? only : args;
}
