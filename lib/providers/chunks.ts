import type { Usage } from "../core/usage.ts";
import type { ChatChunk } from "./types.ts";

/**
 * Whether a streamed chunk carries something a caller sees: text, reasoning, a refusal, a tool call,
 * or a finish reason. Role-only openings and usage-only chunks do not count, and neither do SSE
 * comments (dropped before this point): a first-token timer must count content, not bytes.
 */
export function hasContent(chunk: ChatChunk): boolean {
  for (const choice of chunk.choices ?? []) {
    const d = choice.delta;
    if (choice.finish_reason) return true;
    if (d && (d.content || d.reasoning_content || d.refusal || d.tool_calls?.length || d.function_call))
      return true;
  }
  return false;
}

/**
 * An OpenAI `usage` object in the gateway's terms; anything missing or malformed counts as 0.
 * Cache reads are OpenAI's `prompt_tokens_details.cached_tokens` (capped at the prompt), cache writes
 * the `cache_write_tokens` the Bedrock translation reports there.
 */
export function usageFromOpenAI(usage: unknown): Usage {
  const u = (typeof usage === "object" && usage !== null ? usage : {}) as Record<string, unknown>;
  const inputTokens = count(u.prompt_tokens);
  const prompt = (u.prompt_tokens_details ?? {}) as Record<string, unknown>;
  const completion = (u.completion_tokens_details ?? {}) as Record<string, unknown>;
  const outputTokens = count(u.completion_tokens);
  return {
    inputTokens,
    outputTokens,
    cacheReadTokens: Math.min(inputTokens, count(prompt.cached_tokens)),
    cacheWriteTokens: Math.min(inputTokens, count(prompt.cache_write_tokens)),
    reasoningTokens: Math.min(outputTokens, count(completion.reasoning_tokens)),
  };
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}
