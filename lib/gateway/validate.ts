import type { ChatRequest } from "../dialects/openai-chat/wire.ts";
import {
  invalidJson,
  invalidType,
  invalidValue,
  missingParameter,
  nestingTooDeep,
  quoteCallerText,
} from "../errors.ts";
import { bracketCount, DEFAULT_MAX_NESTING_DEPTH, exceedsDepth } from "../json-depth.ts";

const ROLES = new Set(["system", "developer", "user", "assistant", "tool", "function"]);

export interface ParseChatOptions {
  /** Arrays and objects nested deeper than this are refused with a 400 before any upstream call. */
  maxNestingDepth?: number;
}

/**
 * A caller's body as a JSON object, whatever dialect it speaks: a 400 for an empty body, text that
 * is not JSON, JSON that is not an object, and arrays and objects nested deeper than the limit.
 */
export function parseJsonObject(body: string, options: ParseChatOptions = {}): Record<string, unknown> {
  if (body.trim() === "") throw invalidJson("The request body is empty; expected a JSON object.");
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw invalidJson(
      "We could not parse the JSON body of your request. The body must be a valid JSON object.",
    );
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw invalidJson("The request body must be a JSON object.");
  }
  // JSON.parse is iterative in V8, but JSON.stringify and any walk of the value are recursive:
  // refuse deep bodies here, before anything else touches them.
  const limit = options.maxNestingDepth ?? DEFAULT_MAX_NESTING_DEPTH;
  if (bracketCount(body) > limit && exceedsDepth(json, limit)) {
    throw nestingTooDeep(limit);
  }
  return json as Record<string, unknown>;
}

/**
 * Checks the fields the gateway relies on and the common ones whose type is unambiguous; everything
 * else passes through for the provider to judge. Messages follow the OpenAI API reference
 * (https://platform.openai.com/docs/api-reference/chat/create).
 */
export function parseChatRequest(body: string, options: ParseChatOptions = {}): ChatRequest {
  const request = parseJsonObject(body, options);

  if (request.model === undefined) throw missingParameter("model");
  if (typeof request.model !== "string" || request.model.trim() === "")
    throw invalidType("model", "a non-empty string");

  const messages = request.messages;
  if (messages === undefined) throw missingParameter("messages");
  if (!Array.isArray(messages)) throw invalidType("messages", "an array");
  if (messages.length === 0) throw invalidValue("messages", "'messages' must contain at least one message.");
  for (const [i, message] of messages.entries()) checkMessage(message, i);

  if (request.stream !== undefined && request.stream !== null && typeof request.stream !== "boolean") {
    throw invalidType("stream", "a boolean");
  }
  if (request.stream_options !== undefined && request.stream_options !== null) {
    if (typeof request.stream_options !== "object" || Array.isArray(request.stream_options)) {
      throw invalidType("stream_options", "an object");
    }
    if (request.stream !== true) {
      throw invalidValue("stream_options", "'stream_options' is only allowed when 'stream' is true.");
    }
    const includeUsage = (request.stream_options as Record<string, unknown>).include_usage;
    if (includeUsage !== undefined && typeof includeUsage !== "boolean") {
      throw invalidType("stream_options.include_usage", "a boolean");
    }
  }
  checkNumber(request, "temperature", 0, 2, false);
  checkNumber(request, "top_p", 0, 1, false);
  checkNumber(request, "n", 1, 128, true);
  checkNumber(request, "max_tokens", 1, Number.MAX_SAFE_INTEGER, true);
  checkNumber(request, "max_completion_tokens", 1, Number.MAX_SAFE_INTEGER, true);
  checkNumber(request, "presence_penalty", -2, 2, false);
  checkNumber(request, "frequency_penalty", -2, 2, false);
  return request as ChatRequest;
}

function checkMessage(message: unknown, i: number): void {
  const param = `messages[${i}]`;
  if (typeof message !== "object" || message === null || Array.isArray(message))
    throw invalidType(param, "an object");
  const m = message as Record<string, unknown>;
  if (typeof m.role !== "string") throw missingParameter(`${param}.role`);
  if (!ROLES.has(m.role)) {
    throw invalidValue(
      `${param}.role`,
      `Invalid value for '${param}.role': '${quoteCallerText(m.role)}'. Supported values are: ${[...ROLES].map((r) => `'${r}'`).join(", ")}.`,
    );
  }
  const content = m.content;
  const mayOmitContent = m.role === "assistant";
  if (content === undefined || content === null) {
    if (!mayOmitContent) throw missingParameter(`${param}.content`);
  } else if (typeof content !== "string" && !Array.isArray(content)) {
    throw invalidType(`${param}.content`, "a string or an array of content parts");
  }
}

function checkNumber(
  request: Record<string, unknown>,
  field: string,
  min: number,
  max: number,
  integer: boolean,
): void {
  const value = request[field];
  if (value === undefined || value === null) return;
  if (typeof value !== "number" || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw invalidType(field, integer ? "an integer" : "a number");
  }
  if (value < min || value > max) {
    throw invalidValue(field, `'${field}' must be between ${min} and ${max}, got ${value}.`);
  }
}
