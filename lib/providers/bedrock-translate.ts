/**
 * Canonical requests ⇄ Amazon Bedrock Converse, as pure functions (no SDK at runtime: the imports
 * below are types only, erased at build). Bedrock speaks none of the callers' dialects (issue 17):
 * the request is built from the canonical `GenerationRequest`, and answers come back as canonical
 * events and results, encoded for the caller by its dialect.
 *
 * Converse reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
 * and ConverseStream: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html
 *
 * What cannot be carried is refused with a 400 that names the field as the caller wrote it (never
 * dropped in silence): a caller who sent `seed` or `logprobs` learns that this target does not honour
 * them. Those arrive in the canonical `unmapped` under the caller's names, or as canonical fields
 * Converse has no place for (several choices, structured output, reasoning effort), named through the
 * caller's {@link CallerPlaces}.
 *
 * Every walk over what the caller sent is a loop over a structure the body limit already bounds, never
 * a recursion or a spread of a caller-sized array into a call (issue 16: a system message of 130,000
 * text parts overflowed the stack in `push(...parts)`). JSON the gateway parses itself (tool-call
 * input) and the documents passed to Converse as they are (tool schemas, extension fields) are held to
 * `maxNestingDepth`, as the body is: the SDK serialises them recursively.
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
import type { FinishReason, GenerationEvent, GenerationResult } from "../core/events.ts";
import { type CallerPlaces, canonicalPlaces } from "../core/places.ts";
import type {
  AssistantPart,
  GenerationRequest,
  ImagePart,
  TextPart,
  ToolResultPart,
  UserPart,
} from "../core/request.ts";
import type { Usage } from "../core/usage.ts";
import {
  type InvalidRequestError,
  invalidValue,
  nestingTooDeep,
  quoteCallerText,
  unsupportedParameter,
} from "../errors.ts";
import { DEFAULT_MAX_NESTING_DEPTH, exceedsDepth, textExceedsDepth } from "../json-depth.ts";
import { namesOtherVendor } from "./bedrock-invoke.ts";

type Obj = Record<string, unknown>;
type DocumentValue = NonNullable<ConverseRequest["additionalModelRequestFields"]>;

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

/** The provider family whose reasoning signatures Claude on Bedrock takes back. */
export const REASONING_FAMILY = "anthropic";

/**
 * DeepSeek's `prefix` flag on an OpenAI caller's last assistant message: a trailing assistant turn is
 * a prefill on Converse anyway, so it changes nothing Bedrock would do and is accepted.
 */
const PREFIX_FLAG = /^messages\[\d+\]\.prefix$/;

function isObject(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function cannotCarry(param: string, why = "is not supported by Amazon Bedrock targets"): InvalidRequestError {
  return unsupportedParameter(param, `'${param}' ${why}.`);
}

function invalid(param: string, why: string): InvalidRequestError {
  return invalidValue(param, `Invalid '${param}': ${why}.`);
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
  return nestingTooDeep(limits.maxNestingDepth, param);
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
 * The Converse request for a canonical request. `modelId` is the target's model (a model id, an
 * inference profile id or an ARN); `places` names fields as the caller's dialect does (the canonical
 * names by default). Throws {@link InvalidRequestError} naming any field it cannot carry or that is
 * past a limit; nothing else, whatever the request's shape.
 */
export function toConverseRequest(
  request: GenerationRequest,
  modelId: string,
  limits: TranslateLimits = DEFAULT_LIMITS,
  places: CallerPlaces = canonicalPlaces(request),
): ConverseRequest {
  for (const field of Object.keys(request.unmapped)) {
    if (PREFIX_FLAG.test(field) && request.unmapped[field] === true) continue;
    throw cannotCarry(key(field));
  }
  if (request.choices !== undefined && request.choices !== 1)
    throw cannotCarry(places.field("choices"), "must be 1 for Amazon Bedrock targets");
  if (request.parallelToolCalls === false)
    throw cannotCarry(
      places.field("parallelToolCalls"),
      "= false is not supported by Amazon Bedrock targets (for Claude, use bedrock.additionalModelRequestFields)",
    );
  if (request.responseFormat !== undefined)
    throw cannotCarry(
      places.field("responseFormat"),
      "(structured output) is not supported by Amazon Bedrock targets",
    );
  if (request.reasoning !== undefined)
    throw cannotCarry(
      places.field("reasoning"),
      "is not supported by Amazon Bedrock targets (for Claude, use bedrock.additionalModelRequestFields)",
    );
  if (request.topK !== undefined)
    throw cannotCarry(
      places.field("topK"),
      "is not supported by Amazon Bedrock targets (use bedrock.additionalModelRequestFields)",
    );

  const extension = readExtension(request.extensions.bedrock, limits);
  // The parts that end the caller's messages listed in `cachePoints.messages`: a cache point follows each.
  const cachedAfter = new Set<object>();
  for (const index of extension.cachePoints.messages) {
    const part = places.lastPart(index);
    if (part !== undefined) cachedAfter.add(part);
  }
  const cacheAfter = (part: TextPart | UserPart | AssistantPart, into: ContentBlock[]) => {
    if (part.cache !== undefined) into.push(CACHE_POINT);
    if (cachedAfter.has(part)) into.push(CACHE_POINT);
  };

  const system: SystemContentBlock[] = [];
  for (const part of request.system) {
    if (part.text !== "") system.push({ text: part.text });
    cacheAfter(part, system as ContentBlock[]);
  }

  const turns: Message[] = [];
  let hasToolBlocks = false;
  const append = (role: "user" | "assistant", content: ContentBlock[]) => {
    const last = turns[turns.length - 1];
    // Converse wants user and assistant turns to alternate, and every tool result of one assistant
    // turn in the next user turn: consecutive messages of one role are merged.
    if (last?.role === role && last.content) pushAll(last.content, content);
    else turns.push({ role, content });
  };

  for (let k = 0; k < request.messages.length; k++) {
    const message = request.messages[k];
    if (message === undefined) continue;
    const blocks: ContentBlock[] = [];
    if (message.role === "user") {
      for (let j = 0; j < message.content.length; j++) {
        const part = message.content[j];
        if (part === undefined) continue;
        if (part.type === "text") {
          if (part.text !== "") blocks.push({ text: part.text });
        } else if (part.type === "image") blocks.push(imageBlock(part, places.part(k, j, "image-url")));
        else {
          blocks.push(toolResultBlock(part, places.part(k, j)));
          hasToolBlocks = true;
        }
        cacheAfter(part, blocks);
      }
      append("user", blocks);
      continue;
    }
    let hasText = false;
    let refusal = "";
    for (let j = 0; j < message.content.length; j++) {
      const part = message.content[j];
      if (part === undefined) continue;
      switch (part.type) {
        case "text":
          if (part.text !== "") {
            blocks.push({ text: part.text });
            hasText = true;
          }
          break;
        case "refusal":
          refusal += part.text;
          break;
        case "reasoning":
          // Claude's signed thinking is not sent to another vendor's model, which cannot read it.
          if (part.family === REASONING_FAMILY && namesOtherVendor(modelId)) break;
          blocks.push(reasoningBlock(part, places.part(k, j, "reasoning")));
          break;
        case "tool-call":
          if (part.custom)
            throw invalid(places.part(k, j, "tool-call"), "must be a function tool call for Amazon Bedrock");
          blocks.push(toolUseBlock(part, places.part(k, j, "tool-input"), limits));
          hasToolBlocks = true;
          break;
      }
      cacheAfter(part, blocks);
    }
    // A refusal in the history is what the assistant said: carried as its text, after any reasoning.
    if (!hasText && refusal !== "") {
      let at = 0;
      while (at < blocks.length && blocks[at]?.reasoningContent !== undefined) at++;
      blocks.splice(at, 0, { text: refusal });
    }
    append("assistant", blocks);
  }

  trimPrefill(turns);

  const converse: ConverseRequest = { modelId, messages: turns };
  if (system.length > 0) {
    if (extension.cachePoints.system) system.push(CACHE_POINT);
    converse.system = system;
  }
  const inference = inferenceConfig(request);
  if (inference !== undefined) converse.inferenceConfig = inference;
  const toolConfig = toToolConfig(request, places, hasToolBlocks, extension.cachePoints.tools, limits);
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

/** A tool result: its text joined in one block (as Converse shows it to the model), then its images. */
function toolResultBlock(part: ToolResultPart, param: string): ContentBlock {
  let text = "";
  const images: Array<{ image: NonNullable<ContentBlock["image"]> }> = [];
  for (let j = 0; j < part.content.length; j++) {
    const piece = part.content[j];
    if (piece?.type === "text") text += piece.text;
    else if (piece !== undefined) {
      const block = imageBlock(piece, `${param}.content[${j}]`);
      if (block.image !== undefined) images.push({ image: block.image });
    }
  }
  return {
    toolResult: {
      toolUseId: part.callId,
      content: [{ text }, ...images],
      ...(part.isError ? { status: "error" as const } : {}),
    },
  };
}

/** Bedrock cannot fetch a URL: only base64 bytes of png, jpeg, gif or webp are carried. */
function imageBlock(part: ImagePart, param: string): ContentBlock {
  if (part.data === undefined)
    throw cannotCarry(
      param,
      "must be a base64 data URL (data:image/png;base64,...); Amazon Bedrock cannot fetch images",
    );
  const subtype = part.mediaType.startsWith("image/")
    ? part.mediaType.slice("image/".length)
    : part.mediaType;
  const format = subtype.toLowerCase().replace("jpg", "jpeg");
  if (!IMAGE_FORMATS.has(format))
    throw cannotCarry(
      param,
      `has image type '${quoteCallerText(format)}'; Amazon Bedrock takes png, jpeg, gif and webp`,
    );
  return {
    image: {
      format: format as "png" | "jpeg" | "gif" | "webp",
      source: { bytes: new Uint8Array(Buffer.from(part.data, "base64")) },
    },
  };
}

/**
 * Reasoning in the history: Claude takes back its own thinking with its signature (or its redacted
 * data), and nothing else: reasoning of another family, or unsigned, is refused by name.
 */
function reasoningBlock(part: Extract<AssistantPart, { type: "reasoning" }>, param: string): ContentBlock {
  if (part.family === REASONING_FAMILY) {
    if (part.redacted !== undefined)
      return { reasoningContent: { redactedContent: new Uint8Array(Buffer.from(part.redacted, "base64")) } };
    if (part.signature !== undefined)
      return { reasoningContent: { reasoningText: { text: part.text, signature: part.signature } } };
  }
  throw cannotCarry(
    param,
    "(reasoning without a Claude signature) is not supported by Amazon Bedrock targets",
  );
}

/**
 * An assistant's tool call as a Converse tool use. Its input is JSON text the gateway parses itself,
 * past the body's depth check: its depth is read before the parse (issue 16: arguments nested
 * 100,000 deep parsed fine, then overflowed the stack when the SDK serialised them).
 */
function toolUseBlock(
  part: Extract<AssistantPart, { type: "tool-call" }>,
  param: string,
  limits: TranslateLimits,
): ContentBlock {
  let input: unknown = {};
  if (part.input.trim() !== "") {
    if (textExceedsDepth(part.input, limits.maxNestingDepth)) throw tooDeep(param, limits);
    try {
      input = JSON.parse(part.input);
    } catch {
      throw invalid(param, "is not valid JSON (Bedrock needs the tool input as an object)");
    }
  }
  return { toolUse: { toolUseId: part.id, name: part.name, input: input as DocumentValue } };
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

function inferenceConfig(request: GenerationRequest): ConverseRequest["inferenceConfig"] {
  const config: NonNullable<ConverseRequest["inferenceConfig"]> = {};
  if (request.maxOutputTokens !== undefined) config.maxTokens = request.maxOutputTokens;
  if (request.temperature !== undefined) config.temperature = request.temperature;
  if (request.topP !== undefined) config.topP = request.topP;
  if (request.stop !== undefined) config.stopSequences = request.stop;
  return Object.keys(config).length > 0 ? config : undefined;
}

function toToolConfig(
  request: GenerationRequest,
  places: CallerPlaces,
  hasToolBlocks: boolean,
  cacheTools: boolean,
  limits: TranslateLimits,
): ConverseRequest["toolConfig"] {
  const choice = request.toolChoice;
  const tools = request.tools;
  if (tools === undefined) {
    if (choice !== undefined && choice.type !== "none" && choice.type !== "auto")
      throw invalid(places.field("toolChoice"), "needs 'tools'");
    return undefined;
  }
  if (choice?.type === "none") {
    // Converse has no "none": leaving the tools out says the same, unless the conversation already
    // holds tool calls, which Converse accepts only with a tool configuration.
    if (hasToolBlocks)
      throw cannotCarry(
        places.field("toolChoice"),
        "'none' cannot be carried to Amazon Bedrock when the conversation contains tool calls",
      );
    return undefined;
  }
  const specs: Tool[] = [];
  for (let i = 0; i < tools.length; i++) {
    const tool = tools[i];
    if (tool === undefined) continue;
    if (tool.custom !== undefined)
      throw cannotCarry(places.tool(i, "kind"), "must be 'function' for Amazon Bedrock targets");
    const parameters = isObject(tool.parameters) ? tool.parameters : { type: "object", properties: {} };
    checkDepth(parameters, places.tool(i, "parameters"), limits);
    specs.push({
      toolSpec: {
        name: tool.name,
        ...(tool.description === undefined ? {} : { description: tool.description }),
        inputSchema: { json: parameters as DocumentValue },
        ...(tool.strict === undefined ? {} : { strict: tool.strict }),
      },
    });
    if (tool.cache !== undefined) specs.push(CACHE_POINT);
  }
  if (cacheTools) specs.push(CACHE_POINT);
  const toolChoice = toToolChoice(choice);
  return { tools: specs, ...(toolChoice === undefined ? {} : { toolChoice }) };
}

function toToolChoice(choice: GenerationRequest["toolChoice"]): ToolChoice | undefined {
  if (choice === undefined || choice.type === "auto" || choice.type === "none") return undefined;
  if (choice.type === "required") return { any: {} };
  return { tool: { name: choice.name } };
}

/**
 * A Converse stop reason in canonical terms (the raw name is kept beside it on the finish). An
 * unknown one is `other`: OpenAI callers see it as `stop`, as before.
 */
export function finishReason(stopReason: string | undefined): FinishReason {
  switch (stopReason) {
    case "end_turn":
      return "stop";
    case "stop_sequence":
      return "stop-sequence";
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length";
    case "tool_use":
      return "tool-calls";
    case "content_filtered":
    case "guardrail_intervened":
      return "content-filter";
    default:
      return "other";
  }
}

/**
 * Converse token usage in canonical terms. Bedrock counts cache reads and writes apart from
 * `inputTokens`; the canonical `inputTokens` counts every prompt token, cached ones included. The
 * SDK hands on what the answer held unchecked: a count that is not a count is 0, usage that is not an
 * object none.
 */
export function toUsage(usage: TokenUsage | undefined): Usage | undefined {
  if (!isObject(usage)) return undefined;
  const read = count(usage.cacheReadInputTokens);
  const write = count(usage.cacheWriteInputTokens);
  return {
    inputTokens: count(usage.inputTokens) + read + write,
    outputTokens: count(usage.outputTokens),
    cacheReadTokens: read,
    cacheWriteTokens: write,
    reasoningTokens: 0,
  };
}

/** A string the SDK handed on unchecked, or "" for anything else. */
function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0 ? value : 0;
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

/**
 * A Converse answer in canonical terms (one {@link unreadableAnswer} found readable): its reasoning
 * (with Claude's signature, family `anthropic`), text and tool calls in order, the finish and usage.
 * `model` is the target's, as the gateway called it.
 */
export function fromConverseResponse(response: ConverseResponse, model: string): GenerationResult {
  const content: AssistantPart[] = [];
  for (const block of response.output?.message?.content ?? []) {
    if (typeof block.text === "string") {
      const last = content[content.length - 1];
      if (last?.type === "text") last.text += block.text;
      else content.push({ type: "text", text: block.text });
    } else if (isObject(block.toolUse)) {
      content.push({
        type: "tool-call",
        id: text(block.toolUse.toolUseId),
        name: text(block.toolUse.name),
        input: JSON.stringify(block.toolUse.input ?? {}),
      });
    } else if (isObject(block.reasoningContent)) {
      const reasoning = block.reasoningContent;
      const text = reasoning.reasoningText;
      if (isObject(text) && typeof text.text === "string") {
        content.push({
          type: "reasoning",
          text: text.text,
          family: REASONING_FAMILY,
          ...(typeof text.signature === "string" ? { signature: text.signature } : {}),
        });
      } else if (reasoning.redactedContent instanceof Uint8Array) {
        content.push({
          type: "reasoning",
          text: "",
          family: REASONING_FAMILY,
          redacted: Buffer.from(reasoning.redactedContent).toString("base64"),
        });
      }
    }
  }
  const raw = typeof response.stopReason === "string" ? response.stopReason : undefined;
  const usage = toUsage(response.usage);
  return {
    model,
    choices: [{ content, finish: finishReason(raw), ...(raw === undefined ? {} : { rawFinish: raw }) }],
    ...(usage === undefined ? {} : { usage }),
  };
}

/**
 * Turns ConverseStream events into canonical events, one answer at a time. Tool-use blocks become
 * tool calls numbered in order of appearance, whatever their Converse block index, and end at their
 * block's stop. Reasoning comes with Claude's signature (or redacted data) as `reasoning-signature`
 * (family `anthropic`). `messageStop` gives the finish (canonical reason, raw `stopReason`); the
 * final `metadata` event the usage.
 */
export interface StreamTranslator {
  /** The events one Converse event says (none for a message start or a text block's stop). */
  push(event: ConverseStreamOutput): GenerationEvent[];
  /** Whether `messageStop` was seen: without it the answer was cut, whatever the SDK says. */
  readonly stopped: boolean;
}

export function createStreamTranslator(): StreamTranslator {
  /** Converse block index → canonical tool-call index, for calls not yet ended. */
  const openTools = new Map<number, number>();
  let tools = 0;
  let stopped = false;
  return {
    get stopped() {
      return stopped;
    },
    push(event) {
      if (event.contentBlockStart) {
        const tool = event.contentBlockStart.start?.toolUse;
        if (!isObject(tool)) return [];
        const index = tools++;
        openTools.set(event.contentBlockStart.contentBlockIndex ?? index, index);
        return [
          { type: "tool-call-start", choice: 0, index, id: text(tool.toolUseId), name: text(tool.name) },
        ];
      }
      if (event.contentBlockDelta) {
        const { delta, contentBlockIndex } = event.contentBlockDelta;
        if (typeof delta?.text === "string")
          return delta.text === "" ? [] : [{ type: "text", choice: 0, text: delta.text }];
        if (isObject(delta?.toolUse)) {
          const index = openTools.get(contentBlockIndex ?? -1);
          const input = text(delta.toolUse.input);
          if (index === undefined || input === "") return [];
          return [{ type: "tool-call-delta", choice: 0, index, input }];
        }
        const reasoning = delta?.reasoningContent;
        if (!isObject(reasoning)) return [];
        if (typeof reasoning.text === "string")
          return reasoning.text === "" ? [] : [{ type: "reasoning", choice: 0, text: reasoning.text }];
        if (typeof reasoning.signature === "string")
          return [
            {
              type: "reasoning-signature",
              choice: 0,
              signature: reasoning.signature,
              family: REASONING_FAMILY,
            },
          ];
        if (reasoning.redactedContent instanceof Uint8Array)
          return [
            {
              type: "reasoning-signature",
              choice: 0,
              redacted: Buffer.from(reasoning.redactedContent).toString("base64"),
              family: REASONING_FAMILY,
            },
          ];
        return [];
      }
      if (event.contentBlockStop) {
        const block = event.contentBlockStop.contentBlockIndex ?? -1;
        const index = openTools.get(block);
        if (index === undefined) return [];
        openTools.delete(block);
        return [{ type: "tool-call-end", choice: 0, index }];
      }
      if (event.messageStop) {
        stopped = true;
        const events: GenerationEvent[] = [];
        // A call whose block never stopped still ends before the finish.
        for (const index of openTools.values()) events.push({ type: "tool-call-end", choice: 0, index });
        openTools.clear();
        const stop = event.messageStop.stopReason;
        const raw = typeof stop === "string" ? stop : undefined;
        events.push({ type: "finish", choice: 0, reason: finishReason(raw), raw });
        return events;
      }
      if (event.metadata) {
        const usage = toUsage(event.metadata.usage);
        return usage === undefined ? [] : [{ type: "usage", usage }];
      }
      return [];
    },
  };
}
