/**
 * What the two providers that speak Anthropic Messages upstream share (issue 18): the `anthropic`
 * type and Claude on Bedrock through InvokeModel. A continuation's body, and the size of a whole
 * answer for an estimate without usage.
 */
import { isObject } from "../config/fields.ts";
import type { GenerationResult } from "../core/events.ts";
import type { GenerationRequest } from "../core/request.ts";
import { quoteCallerText, redactSecrets } from "../errors.ts";

type Obj = Record<string, unknown>;

/**
 * A Messages caller's body continuing a cut answer: the answer so far as a trailing assistant
 * message (the API merges it with a caller's own trailing assistant turn), trimmed of the final white
 * space the API refuses. The API takes no prefill with thinking on, so a continuation is asked with
 * thinking off: the engine continues only an answer of plain text, which had no thinking to keep.
 * A shallow copy: the caller's body is not changed.
 */
export function withPrefill(body: Readonly<Obj>, prefill: string): Obj {
  const text = prefill.trimEnd();
  const out: Obj = { ...body };
  if (isObject(out.thinking) && out.thinking.type !== "disabled") delete out.thinking;
  if (text === "") return out;
  const messages = Array.isArray(out.messages) ? (out.messages as unknown[]) : [];
  out.messages = [...messages, { role: "assistant", content: text }];
  return out;
}

/** The canonical request continuing a cut answer, under the rules of {@link withPrefill}. */
export function withCanonicalPrefill(request: GenerationRequest, prefill: string): GenerationRequest {
  const { reasoning, ...rest } = request;
  const thinks =
    reasoning?.budgetTokens !== undefined || reasoning?.mode === "enabled" || reasoning?.mode === "adaptive";
  const kept = !thinks
    ? reasoning
    : reasoning?.effort === undefined
      ? undefined
      : { effort: reasoning.effort };
  return {
    ...rest,
    ...(kept === undefined ? {} : { reasoning: kept }),
    messages: [...request.messages, { role: "assistant", content: [{ type: "text", text: prefill }] }],
  };
}

/** Fields of a Messages body that `count_tokens` refuses ("Extra inputs are not permitted"). */
export const COUNT_TOKENS_REFUSES: readonly string[] = [
  "max_tokens",
  "stream",
  "temperature",
  "top_p",
  "top_k",
  "stop_sequences",
  "metadata",
  "service_tier",
];

/**
 * A 200's body as one whole Message (an object with a `content` list), or what it is instead, for
 * the provider's "answered HTTP 200 with ..." error: HTML from a proxy, a truncated body, an error
 * object sent with 200 are the provider's fault, failed over, never a 200 carrying an error and
 * never a 400 blamed on the caller (issue 16).
 */
export function readMessage(body: string): Obj | string {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return "a body that is not JSON (truncated or malformed)";
  }
  if (!isObject(json)) return "JSON that is not an object";
  if (Array.isArray(json.content)) return json;
  const error = json.error;
  if (isObject(error) && typeof error.message === "string")
    return `an error (${quoteCallerText(redactSecrets(error.message))})`;
  return "JSON that is not a Message (no content)";
}

/** Output characters of a whole answer (text, reasoning, tool names and inputs), for an estimate without usage. */
export function resultOutputChars(result: GenerationResult): number {
  let chars = 0;
  for (const choice of result.choices) {
    for (const part of choice.content) {
      if (part.type === "tool-call") chars += part.name.length + part.input.length;
      else chars += part.text.length;
    }
  }
  return chars;
}
