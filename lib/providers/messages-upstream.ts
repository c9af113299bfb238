/**
 * What the two providers that speak Anthropic Messages upstream share (issue 18): the `anthropic`
 * type and Claude on Bedrock through InvokeModel. A continuation's body, and the size of a whole
 * answer for an estimate without usage.
 */
import { isObject } from "../config/fields.ts";
import type { GenerationResult } from "../core/events.ts";
import type { GenerationRequest } from "../core/request.ts";

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
