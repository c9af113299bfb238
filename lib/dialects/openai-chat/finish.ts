/**
 * OpenAI finish reasons ⇄ the canonical {@link FinishReason}
 * (https://platform.openai.com/docs/api-reference/chat/object, `finish_reason`).
 */
import type { FinishReason } from "../../core/events.ts";

/** The names OpenAI itself sends (`function_call` is the deprecated functions API's). */
const OPENAI_FINISH_REASONS: ReadonlySet<string> = new Set([
  "stop",
  "length",
  "tool_calls",
  "content_filter",
  "function_call",
]);

/**
 * An OpenAI-compatible upstream's finish reason in canonical terms. OpenAI's `stop` covers a stop
 * sequence too (it does not say which); a name of another server's (DeepSeek's
 * `insufficient_system_resource`) is `other`, its raw name kept on the event.
 */
export function finishFromOpenAI(raw: string): FinishReason {
  switch (raw) {
    case "stop":
      return "stop";
    case "length":
      return "length";
    case "tool_calls":
    case "function_call":
      return "tool-calls";
    case "content_filter":
      return "content-filter";
    default:
      return "other";
  }
}

/**
 * The OpenAI name for a canonical finish. `raw`, the upstream's own name, is preferred when it is one
 * of OpenAI's (an OpenAI-compatible upstream's reason reaches the caller unchanged); a stop sequence
 * and any other ending are `stop`, as OpenAI says them.
 */
export function finishToOpenAI(reason: FinishReason, raw?: string): string {
  if (raw !== undefined && OPENAI_FINISH_REASONS.has(raw)) return raw;
  switch (reason) {
    case "length":
      return "length";
    case "tool-calls":
      return "tool_calls";
    case "content-filter":
      return "content_filter";
    default:
      return "stop";
  }
}
