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
