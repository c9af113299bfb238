/**
 * Anthropic's `usage` object ⇄ the canonical {@link Usage}
 * (https://docs.anthropic.com/en/api/messages, `usage`). Anthropic's `input_tokens` counts only the
 * prompt tokens neither read from nor written to the cache; the canonical `inputTokens` counts every
 * prompt token, so the two cache figures are added in and taken out again (issue 18: a cost computed
 * from `input_tokens` alone under-counts a cached prompt, LiteLLM #11935).
 */
import type { Usage } from "../../core/usage.ts";

/** Anthropic's `usage`, as the gateway writes it. */
export interface AnthropicUsage {
  input_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  output_tokens: number;
}

/**
 * An upstream's `usage` (a Message's, `message_start`'s or `message_delta`'s) in canonical terms.
 * Absent or non-numeric figures count 0; `output_tokens_details.thinking_tokens` is the reasoning
 * part of the output, held to the output.
 */
export function usageFromAnthropic(usage: Record<string, unknown>): Usage {
  const uncached = count(usage.input_tokens);
  const cacheRead = count(usage.cache_read_input_tokens);
  const cacheWrite = count(usage.cache_creation_input_tokens);
  const outputTokens = count(usage.output_tokens);
  const details = usage.output_tokens_details;
  const thinking =
    typeof details === "object" && details !== null
      ? count((details as Record<string, unknown>).thinking_tokens)
      : 0;
  return {
    inputTokens: uncached + cacheRead + cacheWrite,
    outputTokens,
    cacheReadTokens: cacheRead,
    cacheWriteTokens: cacheWrite,
    reasoningTokens: Math.min(outputTokens, thinking),
  };
}

/** Canonical usage in Anthropic's shape: the uncached part of the prompt as `input_tokens`. */
export function toAnthropicUsage(usage: Usage): AnthropicUsage {
  return {
    input_tokens: Math.max(0, usage.inputTokens - usage.cacheReadTokens - usage.cacheWriteTokens),
    cache_creation_input_tokens: usage.cacheWriteTokens,
    cache_read_input_tokens: usage.cacheReadTokens,
    output_tokens: usage.outputTokens,
  };
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}
