/**
 * OpenAI chat completions ⇄ Amazon Bedrock Converse, as pure functions (no SDK at runtime: the
 * imports below are types only, erased at build).
 *
 * Converse reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
 * and ConverseStream: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html
 *
 * What cannot be carried is refused with a 400 that names the field (never dropped in silence): a
 * caller who sent `seed` or `logprobs` learns that this target does not honour them.
 *
 * Every walk over what the caller sent is a loop over a structure the body limit already bounds, never
 * a recursion or a spread of a caller-sized array into a call (issue 16: a system message of 130,000
 * text parts overflowed the stack in `push(...parts)`). JSON the gateway parses itself (tool-call
 * `arguments`) and the documents passed to Converse as they are (tool schemas, extension fields) are
 * held to `maxNestingDepth`, as the body is: the SDK serialises them recursively.
 */
import type {
  ContentBlock,
  ConverseRequest,
  ConverseResponse,
  ConverseStreamOutput,
  Message,
  SystemContentBlock,
  TokenUsage,
  Tool,
  ToolChoice,
} from "@aws-sdk/client-bedrock-runtime";
import { InvalidRequestError, quoteCallerText } from "../errors.ts";
import { DEFAULT_MAX_NESTING_DEPTH, exceedsDepth, textExceedsDepth } from "../json-depth.ts";
import type { ChatChunk, ChatRequest } from "./types.ts";

type Obj = Record<string, unknown>;
type DocumentValue = NonNullable<ConverseRequest["additionalModelRequestFields"]>;

/**
 * Request fields carried to Converse, or accepted because they change nothing Bedrock would do.
 * `user` only identifies the end user to OpenAI's abuse monitoring: accepted, not sent.
 */
const CARRIED = new Set([
  "model",
  "messages",
  "stream",
  "stream_options",
  "temperature",
  "top_p",
  "max_tokens",
  "max_completion_tokens",
  "stop",
  "tools",
  "tool_choice",
  "n",
  "parallel_tool_calls",
  "response_format",
  "user",
  "bedrock",
]);

/** The documented extension field: `bedrock: { ... }` in the request body. */
const EXTENSION_FIELDS = new Set([
  "additionalModelRequestFields",
  "additionalModelResponseFieldPaths",
  "cachePoints",
  "guardrailConfig",
  "performanceConfig",
  "requestMetadata",
]);

const IMAGE_FORMATS = new Set(["png", "jpeg", "gif", "webp"]);
const CACHE_POINT = { cachePoint: { type: "default" as const } };

function isObject(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function cannotCarry(param: string, why = "is not supported by Amazon Bedrock targets"): InvalidRequestError {
  return new InvalidRequestError(`'${param}' ${why}.`, param, "unsupported_parameter");
}

function invalid(param: string, why: string, code = "invalid_value"): InvalidRequestError {
  return new InvalidRequestError(`Invalid '${param}': ${why}.`, param, code);
}

/** A field name the caller chose, as it appears in a `param` path: bounded like any caller text. */
function key(name: string): string {
  return quoteCallerText(name);
}

/** What the translation holds caller structure to. */
export interface TranslateLimits {
  /** Deepest nesting of a document carried to Converse (`maxNestingDepth`, 64 by default). */
  maxNestingDepth: number;
}

const DEFAULT_LIMITS: TranslateLimits = { maxNestingDepth: DEFAULT_MAX_NESTING_DEPTH };

/** Refuses a document passed to Converse that nests deeper than the limit, naming its field. */
function checkDepth(value: unknown, param: string, limits: TranslateLimits): void {
  if (exceedsDepth(value, limits.maxNestingDepth)) throw tooDeep(param, limits);
}

function tooDeep(param: string, limits: TranslateLimits): InvalidRequestError {
  return invalid(
    param,
    `nests arrays and objects deeper than the limit of ${limits.maxNestingDepth} levels`,
    "nesting_too_deep",
  );
}

/** `target.push(...items)` without spreading: a spread passes every item as an argument, on the stack. */
function pushAll<T>(target: T[], items: readonly T[]): void {
  for (const item of items) target.push(item);
}

/** A present value: OpenAI clients often send `null` for "not set". */
function present(value: unknown): boolean {
  return value !== undefined && value !== null;
}

/**
 * The Converse request for an OpenAI chat request. `modelId` is the target's model (a model id, an
 * inference profile id or an ARN). Throws {@link InvalidRequestError} naming any field it cannot carry
 * or that is past a limit; nothing else, whatever the request's shape.
 */
export function toConverseRequest(
  request: ChatRequest,
  limits: TranslateLimits = DEFAULT_LIMITS,
): ConverseRequest {
  for (const [field, value] of Object.entries(request)) {
    if (!CARRIED.has(field) && present(value)) throw cannotCarry(key(field));
  }
  if (!Array.isArray(request.messages)) throw invalid("messages", "must be an array");
  if (present(request.n) && request.n !== 1) throw cannotCarry("n", "must be 1 for Amazon Bedrock targets");
  if (request.parallel_tool_calls === false)
    throw cannotCarry(
      "parallel_tool_calls",
      "= false is not supported by Amazon Bedrock targets (for Claude, use bedrock.additionalModelRequestFields)",
    );
  const format = request.response_format;
  if (present(format) && !(isObject(format) && format.type === "text"))
    throw cannotCarry(
      "response_format",
      "other than {type: 'text'} is not supported by Amazon Bedrock targets",
    );

  const extension = readExtension(request.bedrock, limits);
  const cachedMessages = new Set(extension.cachePoints.messages);
  const system: SystemContentBlock[] = [];
  const turns: Message[] = [];
  let hasToolBlocks = false;

  const append = (role: "user" | "assistant", content: ContentBlock[]) => {
    const last = turns[turns.length - 1];
    // Converse wants user and assistant turns to alternate, and every tool result of one assistant
    // turn in the next user turn: consecutive messages of one role are merged.
    if (last?.role === role && last.content) pushAll(last.content, content);
    else turns.push({ role, content });
  };

  (request.messages as unknown[]).forEach((message, i) => {
    const param = `messages[${i}]`;
    if (!isObject(message)) throw invalid(param, "must be an object");
    const role = message.role;
    const fields = typeof role === "string" ? MESSAGE_FIELDS.get(role) : undefined;
    if (fields === undefined)
      throw cannotCarry(
        `${param}.role`,
        `'${quoteCallerText(role)}' is not supported by Amazon Bedrock targets`,
      );
    for (const [field, value] of Object.entries(message)) {
      if (!fields.has(field) && present(value)) throw cannotCarry(`${param}.${key(field)}`);
    }
    const cacheAfter = cachedMessages.has(i);
    switch (role) {
      case "system":
      case "developer": {
        pushAll(system, textBlocks(message.content, `${param}.content`));
        if (cacheAfter) system.push(CACHE_POINT);
        return;
      }
      case "user": {
        const blocks = userBlocks(message.content, `${param}.content`);
        append("user", cacheAfter ? [...blocks, CACHE_POINT] : blocks);
        return;
      }
      case "assistant": {
        const blocks: ContentBlock[] = present(message.content)
          ? textBlocks(message.content, `${param}.content`)
          : [];
        // A refusal in the history is what the assistant said: carried as its text.
        if (typeof message.refusal === "string" && message.refusal !== "" && blocks.length === 0)
          blocks.push({ text: message.refusal });
        const calls = message.tool_calls;
        if (present(calls)) {
          if (!Array.isArray(calls)) throw invalid(`${param}.tool_calls`, "must be an array");
          calls.forEach((call: unknown, j) => {
            blocks.push(toolUseBlock(call, `${param}.tool_calls[${j}]`, limits));
          });
          hasToolBlocks ||= calls.length > 0;
        }
        if (cacheAfter) blocks.push(CACHE_POINT);
        append("assistant", blocks);
        return;
      }
      case "tool": {
        if (typeof message.tool_call_id !== "string" || message.tool_call_id === "")
          throw invalid(`${param}.tool_call_id`, "is required on a tool message");
        const text = textOf(message.content, `${param}.content`);
        const blocks: ContentBlock[] = [
          { toolResult: { toolUseId: message.tool_call_id, content: [{ text }] } },
        ];
        hasToolBlocks = true;
        append("user", cacheAfter ? [...blocks, CACHE_POINT] : blocks);
        return;
      }
      default:
        throw cannotCarry(`${param}.role`, `'${role}' is not supported by Amazon Bedrock targets`);
    }
  });

  trimPrefill(turns);

  const converse: ConverseRequest = { modelId: request.model, messages: turns };
  if (system.length > 0) {
    if (extension.cachePoints.system) system.push(CACHE_POINT);
    converse.system = system;
  }
  const inference = inferenceConfig(request);
  if (inference !== undefined) converse.inferenceConfig = inference;
  const toolConfig = toToolConfig(request, hasToolBlocks, extension.cachePoints.tools, limits);
  if (toolConfig !== undefined) converse.toolConfig = toolConfig;
  if (extension.additionalModelRequestFields !== undefined)
    converse.additionalModelRequestFields = extension.additionalModelRequestFields;
  if (extension.additionalModelResponseFieldPaths !== undefined)
    converse.additionalModelResponseFieldPaths = extension.additionalModelResponseFieldPaths;
  if (extension.requestMetadata !== undefined) converse.requestMetadata = extension.requestMetadata;
  if (extension.guardrailConfig !== undefined)
    converse.guardrailConfig = extension.guardrailConfig as unknown as NonNullable<
      ConverseRequest["guardrailConfig"]
    >;
  if (extension.performanceConfig !== undefined)
    converse.performanceConfig = extension.performanceConfig as NonNullable<
      ConverseRequest["performanceConfig"]
    >;
  return converse;
}

/**
 * Message fields each role may carry (`prefix` marks the gateway's own continuation prefill). A Map,
 * so a role such as `constructor` finds nothing rather than `Object`'s own properties.
 */
const MESSAGE_FIELDS = new Map<string, Set<string>>([
  ["system", new Set(["role", "content"])],
  ["developer", new Set(["role", "content"])],
  ["user", new Set(["role", "content"])],
  ["assistant", new Set(["role", "content", "tool_calls", "prefix", "refusal"])],
  // A tool result's `name` repeats the tool's; Converse identifies the call by id alone.
  ["tool", new Set(["role", "content", "tool_call_id", "name"])],
]);

interface Extension {
  additionalModelRequestFields: DocumentValue | undefined;
  additionalModelResponseFieldPaths: string[] | undefined;
  cachePoints: { system: boolean; tools: boolean; messages: number[] };
  guardrailConfig: Obj | undefined;
  performanceConfig: Obj | undefined;
  requestMetadata: Record<string, string> | undefined;
}

/**
 * The `bedrock` extension field:
 * - `additionalModelRequestFields`: model-specific fields (e.g. Claude's `thinking`, `top_k`);
 * - `additionalModelResponseFieldPaths`: JSON pointers of extra response fields to return;
 * - `cachePoints`: `{ system?: true, tools?: true, messages?: [indexes] }`, a Converse cache point
 *   after the system prompt, after the tool list, or after the listed messages (prompt caching);
 * - `guardrailConfig`, `performanceConfig`, `requestMetadata`: passed to Converse as they are.
 */
function readExtension(value: unknown, limits: TranslateLimits): Extension {
  const none: Extension = {
    additionalModelRequestFields: undefined,
    additionalModelResponseFieldPaths: undefined,
    cachePoints: { system: false, tools: false, messages: [] },
    guardrailConfig: undefined,
    performanceConfig: undefined,
    requestMetadata: undefined,
  };
  if (!present(value)) return none;
  if (!isObject(value)) throw invalid("bedrock", "must be an object");
  for (const field of Object.keys(value)) {
    if (!EXTENSION_FIELDS.has(field))
      throw cannotCarry(`bedrock.${key(field)}`, "is not a known Bedrock extension field");
  }
  const fields = value.additionalModelRequestFields;
  if (present(fields) && !isObject(fields))
    throw invalid("bedrock.additionalModelRequestFields", "must be an object");
  checkDepth(fields, "bedrock.additionalModelRequestFields", limits);
  const paths = value.additionalModelResponseFieldPaths;
  if (present(paths) && !(Array.isArray(paths) && paths.every((p) => typeof p === "string")))
    throw invalid("bedrock.additionalModelResponseFieldPaths", "must be an array of strings");
  const metadata = value.requestMetadata;
  if (
    present(metadata) &&
    !(isObject(metadata) && Object.values(metadata).every((v) => typeof v === "string"))
  )
    throw invalid("bedrock.requestMetadata", "must be an object of strings");
  for (const field of ["guardrailConfig", "performanceConfig"] as const) {
    if (present(value[field]) && !isObject(value[field]))
      throw invalid(`bedrock.${field}`, "must be an object");
    checkDepth(value[field], `bedrock.${field}`, limits);
  }
  const cache = value.cachePoints;
  const cachePoints = { ...none.cachePoints };
  if (present(cache)) {
    if (!isObject(cache)) throw invalid("bedrock.cachePoints", "must be an object");
    for (const [field, v] of Object.entries(cache)) {
      if (field === "system" || field === "tools") {
        if (typeof v !== "boolean") throw invalid(`bedrock.cachePoints.${field}`, "must be a boolean");
        cachePoints[field] = v;
      } else if (field === "messages") {
        if (!Array.isArray(v) || !v.every((n) => Number.isInteger(n) && n >= 0))
          throw invalid("bedrock.cachePoints.messages", "must be an array of message indexes");
        cachePoints.messages = v as number[];
      } else throw cannotCarry(`bedrock.cachePoints.${key(field)}`, "is not a known cache point");
    }
  }
  return {
    additionalModelRequestFields: present(fields) ? (fields as DocumentValue) : undefined,
    additionalModelResponseFieldPaths: present(paths) ? (paths as string[]) : undefined,
    cachePoints,
    guardrailConfig: isObject(value.guardrailConfig) ? value.guardrailConfig : undefined,
    performanceConfig: isObject(value.performanceConfig) ? value.performanceConfig : undefined,
    requestMetadata: present(metadata) ? (metadata as Record<string, string>) : undefined,
  };
}

/** Text content (a string, or an array of text parts) as Converse text blocks; blank text is left out. */
function textBlocks(content: unknown, param: string): Array<{ text: string } | typeof CACHE_POINT> {
  if (typeof content === "string") return content === "" ? [] : [{ text: content }];
  if (!Array.isArray(content)) throw invalid(param, "must be a string or an array of text parts");
  const blocks: Array<{ text: string } | typeof CACHE_POINT> = [];
  content.forEach((part, j) => {
    if (!isObject(part) || part.type !== "text" || typeof part.text !== "string")
      throw cannotCarry(`${param}[${j}]`, "must be a text part here");
    if (part.text !== "") blocks.push({ text: part.text });
    if (present(part.cache_control)) blocks.push(CACHE_POINT);
  });
  return blocks;
}

function textOf(content: unknown, param: string): string {
  return textBlocks(content, param)
    .map((b) => ("text" in b ? b.text : ""))
    .join("");
}

/** User content: text parts, image parts from data URLs, and a cache point after a part with `cache_control`. */
function userBlocks(content: unknown, param: string): ContentBlock[] {
  if (typeof content === "string") return [{ text: content }];
  if (!Array.isArray(content)) throw invalid(param, "must be a string or an array of content parts");
  const blocks: ContentBlock[] = [];
  content.forEach((part, j) => {
    const partParam = `${param}[${j}]`;
    if (!isObject(part)) throw invalid(partParam, "must be an object");
    if (part.type === "text" && typeof part.text === "string") {
      if (part.text !== "") blocks.push({ text: part.text });
    } else if (part.type === "image_url") {
      const url = isObject(part.image_url) ? part.image_url.url : undefined;
      blocks.push(imageBlock(url, `${partParam}.image_url.url`));
    } else {
      throw cannotCarry(
        `${partParam}.type`,
        `'${quoteCallerText(part.type)}' is not supported by Amazon Bedrock targets`,
      );
    }
    if (present(part.cache_control)) blocks.push(CACHE_POINT);
  });
  return blocks;
}

/** Bedrock cannot fetch a URL: only `data:image/{png,jpeg,gif,webp};base64,...` is carried. */
function imageBlock(url: unknown, param: string): ContentBlock {
  if (typeof url !== "string") throw invalid(param, "must be a string");
  const match = /^data:image\/([a-z]+);base64,(.*)$/is.exec(url);
  if (!match)
    throw cannotCarry(
      param,
      "must be a base64 data URL (data:image/png;base64,...); Amazon Bedrock cannot fetch images",
    );
  const format = (match[1] ?? "").toLowerCase().replace("jpg", "jpeg");
  if (!IMAGE_FORMATS.has(format))
    throw cannotCarry(
      param,
      `has image type '${quoteCallerText(format)}'; Amazon Bedrock takes png, jpeg, gif and webp`,
    );
  return {
    image: {
      format: format as "png" | "jpeg" | "gif" | "webp",
      source: { bytes: new Uint8Array(Buffer.from(match[2] ?? "", "base64")) },
    },
  };
}

/**
 * An assistant's tool call as a Converse tool use. Its `arguments` are JSON text the gateway parses
 * itself, past the body's depth check: their depth is read before the parse (issue 16: arguments
 * nested 100,000 deep parsed fine, then overflowed the stack when the SDK serialised them).
 */
function toolUseBlock(call: unknown, param: string, limits: TranslateLimits): ContentBlock {
  if (!isObject(call) || !isObject(call.function)) throw invalid(param, "must be a function tool call");
  if (typeof call.id !== "string") throw invalid(`${param}.id`, "must be a string");
  const fn = call.function;
  if (typeof fn.name !== "string") throw invalid(`${param}.function.name`, "must be a string");
  let input: unknown = {};
  const args = fn.arguments;
  if (typeof args === "string" && args.trim() !== "") {
    if (textExceedsDepth(args, limits.maxNestingDepth)) throw tooDeep(`${param}.function.arguments`, limits);
    try {
      input = JSON.parse(args);
    } catch {
      throw invalid(
        `${param}.function.arguments`,
        "is not valid JSON (Bedrock needs the tool input as an object)",
      );
    }
  }
  return { toolUse: { toolUseId: call.id, name: fn.name, input: input as DocumentValue } };
}

/**
 * A trailing assistant turn is a prefill (the gateway's continuation of a cut answer, or a caller's):
 * Claude refuses one that ends in whitespace, so its last text is trimmed at the end (the model
 * writes the space again). An assistant turn left with nothing is dropped.
 */
function trimPrefill(turns: Message[]): void {
  const last = turns[turns.length - 1];
  if (last?.role !== "assistant" || !last.content) return;
  const tail = last.content[last.content.length - 1];
  if (tail && "text" in tail && typeof tail.text === "string") {
    const trimmed = tail.text.trimEnd();
    if (trimmed === "") last.content.pop();
    else last.content[last.content.length - 1] = { text: trimmed };
  }
  if (last.content.length === 0) turns.pop();
}

function inferenceConfig(request: ChatRequest): ConverseRequest["inferenceConfig"] {
  const config: NonNullable<ConverseRequest["inferenceConfig"]> = {};
  const maxTokens = present(request.max_completion_tokens)
    ? request.max_completion_tokens
    : request.max_tokens;
  if (typeof maxTokens === "number") config.maxTokens = maxTokens;
  if (typeof request.temperature === "number") config.temperature = request.temperature;
  if (typeof request.top_p === "number") config.topP = request.top_p;
  const stop = request.stop;
  if (typeof stop === "string") config.stopSequences = [stop];
  else if (Array.isArray(stop)) {
    if (!stop.every((s) => typeof s === "string"))
      throw invalid("stop", "must be a string or an array of strings");
    config.stopSequences = stop as string[];
  } else if (present(stop)) throw invalid("stop", "must be a string or an array of strings");
  return Object.keys(config).length > 0 ? config : undefined;
}

function toToolConfig(
  request: ChatRequest,
  hasToolBlocks: boolean,
  cacheTools: boolean,
  limits: TranslateLimits,
): ConverseRequest["toolConfig"] {
  const choice = request.tool_choice;
  const tools = request.tools;
  if (!present(tools)) {
    if (present(choice) && choice !== "none" && choice !== "auto")
      throw invalid("tool_choice", "needs 'tools'");
    return undefined;
  }
  if (!Array.isArray(tools)) throw invalid("tools", "must be an array");
  if (choice === "none") {
    // Converse has no "none": leaving the tools out says the same, unless the conversation already
    // holds tool calls, which Converse accepts only with a tool configuration.
    if (hasToolBlocks)
      throw cannotCarry(
        "tool_choice",
        "'none' cannot be carried to Amazon Bedrock when the conversation contains tool calls",
      );
    return undefined;
  }
  const specs: Tool[] = tools.map((tool: unknown, i) => {
    const param = `tools[${i}]`;
    if (!isObject(tool) || tool.type !== "function" || !isObject(tool.function))
      throw cannotCarry(`${param}.type`, "must be 'function' for Amazon Bedrock targets");
    const fn = tool.function;
    if (typeof fn.name !== "string") throw invalid(`${param}.function.name`, "must be a string");
    const parameters = isObject(fn.parameters) ? fn.parameters : { type: "object", properties: {} };
    checkDepth(parameters, `${param}.function.parameters`, limits);
    return {
      toolSpec: {
        name: fn.name,
        ...(typeof fn.description === "string" ? { description: fn.description } : {}),
        inputSchema: { json: parameters as DocumentValue },
        ...(typeof fn.strict === "boolean" ? { strict: fn.strict } : {}),
      },
    };
  });
  if (cacheTools) specs.push(CACHE_POINT);
  const toolChoice = toToolChoice(choice);
  return { tools: specs, ...(toolChoice === undefined ? {} : { toolChoice }) };
}

function toToolChoice(choice: unknown): ToolChoice | undefined {
  if (!present(choice) || choice === "auto") return undefined;
  if (choice === "required") return { any: {} };
  if (isObject(choice) && choice.type === "function" && isObject(choice.function)) {
    const name = choice.function.name;
    if (typeof name === "string") return { tool: { name } };
  }
  throw invalid("tool_choice", "must be 'none', 'auto', 'required' or {type: 'function', function: {name}}");
}

/** Converse stop reasons as OpenAI finish reasons; an unknown one ends the answer as `stop`. */
export function finishReason(stopReason: string | undefined): string {
  switch (stopReason) {
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length";
    case "tool_use":
      return "tool_calls";
    case "content_filtered":
    case "guardrail_intervened":
      return "content_filter";
    default:
      return "stop";
  }
}

/**
 * Converse token usage in OpenAI's shape. Bedrock counts cache reads and writes apart from
 * `inputTokens`; OpenAI's `prompt_tokens` includes cached tokens and names them in
 * `prompt_tokens_details.cached_tokens`. Cache writes, which OpenAI has no name for, are
 * `prompt_tokens_details.cache_write_tokens` (a count, for cost accounting). The SDK hands on what
 * the answer held unchecked: a count that is not a count is 0, usage that is not an object none.
 */
export function toUsage(usage: TokenUsage | undefined): Obj | undefined {
  if (!isObject(usage)) return undefined;
  const read = count(usage.cacheReadInputTokens);
  const write = count(usage.cacheWriteInputTokens);
  const prompt = count(usage.inputTokens) + read + write;
  const completion = count(usage.outputTokens);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: read, cache_write_tokens: write },
  };
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0 ? value : 0;
}

/** Identity of one answer, shared by its completion or every chunk of its stream. */
export interface AnswerHead {
  id: string;
  created: number;
  model: string;
}

/**
 * Why a Converse answer is not one, or `undefined` when it is. The SDK hands on whatever JSON a 200
 * carried, unchecked (`{}`, `{"error": ...}`, `{"output": "x"}`): an answer without a message whose
 * content is a list of blocks was not written by a working Bedrock.
 */
export function unreadableAnswer(response: ConverseResponse): string | undefined {
  const output: unknown = response.output;
  const message = isObject(output) ? output.message : undefined;
  if (!isObject(message)) return "no output.message";
  const content = message.content;
  if (!Array.isArray(content)) return "an output.message.content that is not a list";
  for (const block of content) if (!isObject(block)) return "a content block that is not an object";
  return undefined;
}

/**
 * Whether a (readable) answer holds JSON nested deeper than `limit`: a tool call's input or the
 * additional response fields, which the gateway serialises with the recursive `JSON.stringify`. A
 * caller can ask the model for such an answer, so it is refused, never blamed on the provider.
 */
export function answerExceedsDepth(response: ConverseResponse, limit: number): boolean {
  if (exceedsDepth(response.additionalModelResponseFields, limit)) return true;
  for (const block of response.output?.message?.content ?? [])
    if (isObject(block.toolUse) && exceedsDepth(block.toolUse.input, limit)) return true;
  return false;
}

/** A Converse answer as an OpenAI `chat.completion` (one {@link unreadableAnswer} found readable). */
export function fromConverseResponse(response: ConverseResponse, head: AnswerHead): Obj {
  const content = response.output?.message?.content ?? [];
  let text = "";
  let reasoning = "";
  const toolCalls: Obj[] = [];
  for (const block of content) {
    if (typeof block.text === "string") text += block.text;
    else if (isObject(block.toolUse)) {
      toolCalls.push({
        id: block.toolUse.toolUseId,
        type: "function",
        function: { name: block.toolUse.name, arguments: JSON.stringify(block.toolUse.input ?? {}) },
      });
    } else if (block.reasoningContent?.reasoningText?.text)
      reasoning += block.reasoningContent.reasoningText.text;
  }
  const message: Obj = {
    role: "assistant",
    content: text === "" && toolCalls.length > 0 ? null : text,
    ...(reasoning ? { reasoning_content: reasoning } : {}),
    ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
  };
  const usage = toUsage(response.usage);
  return {
    id: head.id,
    object: "chat.completion",
    created: head.created,
    model: head.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason(response.stopReason) }],
    ...(usage ? { usage } : {}),
    ...(response.additionalModelResponseFields === undefined
      ? {}
      : { bedrock: { additionalModelResponseFields: response.additionalModelResponseFields } }),
  };
}

/**
 * Turns ConverseStream events into OpenAI `chat.completion.chunk`s, one answer at a time. Tool-use
 * blocks become tool calls numbered in order of appearance (OpenAI's `index`), whatever their
 * Converse block index. `messageStop` gives the finish chunk; the usage chunk, when the caller asked
 * for it, comes from the final `metadata` event via {@link StreamTranslator.usageChunk}.
 */
export interface StreamTranslator {
  /** The chunks one event yields (often one, none for block stops). */
  push(event: ConverseStreamOutput): ChatChunk[];
  /** Whether `messageStop` was seen: without it the answer was cut, whatever the SDK says. */
  readonly stopped: boolean;
  /** The usage chunk (empty `choices`), once `metadata` has arrived. */
  usageChunk(): ChatChunk | undefined;
}

export function createStreamTranslator(head: AnswerHead): StreamTranslator {
  const toolIndexes = new Map<number, number>();
  let stopped = false;
  let usage: Obj | undefined;
  const chunk = (delta: Obj, finish: string | null = null): ChatChunk =>
    ({
      id: head.id,
      object: "chat.completion.chunk",
      created: head.created,
      model: head.model,
      choices: [{ index: 0, delta, finish_reason: finish }],
    }) as ChatChunk;
  return {
    get stopped() {
      return stopped;
    },
    push(event) {
      if (event.messageStart) return [chunk({ role: "assistant", content: "" })];
      if (event.contentBlockStart) {
        const tool = event.contentBlockStart.start?.toolUse;
        if (!tool) return [];
        const index = toolIndexes.size;
        toolIndexes.set(event.contentBlockStart.contentBlockIndex ?? index, index);
        return [
          chunk({
            tool_calls: [
              { index, id: tool.toolUseId, type: "function", function: { name: tool.name, arguments: "" } },
            ],
          }),
        ];
      }
      if (event.contentBlockDelta) {
        const { delta, contentBlockIndex } = event.contentBlockDelta;
        if (typeof delta?.text === "string") return delta.text === "" ? [] : [chunk({ content: delta.text })];
        if (delta?.toolUse) {
          const index = toolIndexes.get(contentBlockIndex ?? -1);
          if (index === undefined) return [];
          return [chunk({ tool_calls: [{ index, function: { arguments: delta.toolUse.input ?? "" } }] })];
        }
        const reasoning = delta?.reasoningContent?.text;
        if (typeof reasoning === "string" && reasoning !== "")
          return [chunk({ reasoning_content: reasoning })];
        return [];
      }
      if (event.messageStop) {
        stopped = true;
        return [chunk({}, finishReason(event.messageStop.stopReason))];
      }
      if (event.metadata) usage = toUsage(event.metadata.usage);
      return [];
    },
    usageChunk() {
      if (usage === undefined) return undefined;
      return {
        id: head.id,
        object: "chat.completion.chunk",
        created: head.created,
        model: head.model,
        choices: [],
        usage,
      } as ChatChunk;
    },
  };
}
