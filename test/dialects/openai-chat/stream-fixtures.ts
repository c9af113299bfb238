import type { ChatChunk } from "../../../lib/dialects/openai-chat/wire.ts";
import { fixtureBytes } from "../../support/replay-upstream.ts";

/**
 * The chunks of a recorded stream (test/fixtures/), read with nothing but string splitting:
 * `data:` events parsed as JSON, keep-alive comments and `[DONE]` left out.
 */
export function fixtureChunks(fixture: string): ChatChunk[] {
  return fixtureBytes(fixture)
    .toString("utf8")
    .split("\n\n")
    .filter((block) => block.startsWith("data: ") && block !== "data: [DONE]")
    .map((block) => JSON.parse(block.slice("data: ".length)) as ChatChunk);
}

/** What a client library builds from a stream's chunks: text, reasoning, tool calls by index. */
export interface Assembled {
  content: string;
  reasoning: string;
  toolCalls: Array<{ id: string; name: string; arguments: string }>;
  finishReasons: string[];
  /** Every non-null `usage`, as sent. */
  usages: unknown[];
}

export function assemble(chunks: ChatChunk[]): Assembled {
  const out: Assembled = { content: "", reasoning: "", toolCalls: [], finishReasons: [], usages: [] };
  for (const chunk of chunks) {
    if (chunk.usage !== null && chunk.usage !== undefined) out.usages.push(chunk.usage);
    for (const choice of chunk.choices ?? []) {
      const delta = choice.delta ?? {};
      if (typeof delta.content === "string") out.content += delta.content;
      if (typeof delta.reasoning_content === "string") out.reasoning += delta.reasoning_content;
      for (const raw of delta.tool_calls ?? []) {
        const call = raw as { index: number; id?: string; function?: { name?: string; arguments?: string } };
        let slot = out.toolCalls[call.index];
        if (slot === undefined) {
          slot = { id: "", name: "", arguments: "" };
          out.toolCalls[call.index] = slot;
        }
        if (call.id !== undefined) slot.id = call.id;
        if (call.function?.name !== undefined) slot.name = call.function.name;
        slot.arguments += call.function?.arguments ?? "";
      }
      if (choice.finish_reason) out.finishReasons.push(choice.finish_reason);
    }
  }
  return out;
}
