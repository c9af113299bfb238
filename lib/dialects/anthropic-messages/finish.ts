/**
 * Anthropic stop reasons ⇄ the canonical {@link FinishReason}
 * (https://docs.anthropic.com/en/api/messages, `stop_reason`).
 */
import type { FinishReason } from "../../core/events.ts";

/** The names the Messages API itself sends. */
const ANTHROPIC_STOP_REASONS: ReadonlySet<string> = new Set([
  "end_turn",
  "max_tokens",
  "stop_sequence",
  "tool_use",
  "pause_turn",
  "refusal",
  "model_context_window_exceeded",
]);

/**
 * An Anthropic upstream's stop reason in canonical terms. `pause_turn` (a server tool's long turn
 * paused), `model_context_window_exceeded` and any later name are `other`, the raw name kept on the
 * event so an Anthropic caller still reads it.
 */
export function finishFromAnthropic(raw: string): FinishReason {
  switch (raw) {
    case "end_turn":
      return "stop";
    case "max_tokens":
      return "length";
    case "tool_use":
      return "tool-calls";
    case "stop_sequence":
      return "stop-sequence";
    case "refusal":
      return "content-filter";
    default:
      return "other";
  }
}

/**
 * The Anthropic name for a canonical finish. `raw`, the upstream's own name, is preferred when it is
 * one of Anthropic's (a Bedrock Converse `stopReason` is: `end_turn`, `tool_use`, ...); any other
 * ending is `end_turn`, the name a client takes for "the answer is whole".
 */
export function finishToAnthropic(reason: FinishReason, raw?: string): string {
  if (raw !== undefined && ANTHROPIC_STOP_REASONS.has(raw)) return raw;
  switch (reason) {
    case "length":
      return "max_tokens";
    case "tool-calls":
      return "tool_use";
    case "stop-sequence":
      return "stop_sequence";
    case "content-filter":
      return "refusal";
    default:
      return "end_turn";
  }
}
