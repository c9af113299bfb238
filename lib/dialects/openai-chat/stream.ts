/**
 * OpenAI Chat Completions, caller side, for the relay (issue 17): how one answer reaches an OpenAI
 * chat caller. An upstream that speaks OpenAI chat is passed on byte for byte (unknown fields
 * included); any other is encoded from its canonical events. Either way the gateway's own usage
 * chunk (it always asks for one, to meter the request) is kept from a caller who did not ask.
 */

import { type GatewayError, reportOf } from "../../errors.ts";
import { SSE_DONE, sseData } from "../../http/sse.ts";
import type { UpstreamEvent, WholeGeneration } from "../../providers/generation.ts";
import { type AnswerHead, createChunkEncoder, toCompletion } from "./encode.ts";
import { openAIErrorBody } from "./errors.ts";
import type { ChatChunk } from "./wire.ts";

export interface ChatStreamOptions {
  /** The caller asked for `stream_options.include_usage`. */
  includeUsage: boolean;
  /** Identity of the answer's chunks when they are encoded here (not passed through). */
  head: AnswerHead;
}

/** The relay's encoder for an OpenAI chat caller: SSE `data:` lines, `[DONE]` only on a whole answer. */
export function createChatStreamEncoder(options: ChatStreamOptions): {
  event(upstream: UpstreamEvent): string;
  end(): string;
  fail(error: GatewayError): string;
} {
  const encoder = createChunkEncoder(options.head);
  return {
    event(upstream) {
      if (upstream.dialect === "openai-chat" && upstream.raw !== undefined) {
        if (options.includeUsage) return sseData(upstream.raw);
        const stripped = withoutUsage(
          upstream.raw,
          upstream.events.some((e) => e.type === "usage"),
        );
        return stripped === undefined ? "" : sseData(stripped);
      }
      let out = "";
      for (const event of upstream.events) {
        if (event.type === "usage" && !options.includeUsage) continue;
        const chunk = encoder.encode(event);
        if (chunk !== undefined) out += sseData(JSON.stringify(chunk));
      }
      return out;
    },
    end: () => SSE_DONE,
    fail: (error) => sseData(JSON.stringify(openAIErrorBody(reportOf(error)))),
  };
}

/**
 * A raw chunk as the caller sees it when the gateway added `include_usage` itself: the usage-only
 * chunk is dropped (undefined), and a `usage` member on any other chunk removed. Parsed again only
 * when it carries usage.
 */
function withoutUsage(raw: string, hasUsage: boolean): string | undefined {
  if (!hasUsage && !raw.includes('"usage"')) return raw;
  const chunk = JSON.parse(raw) as ChatChunk;
  if (!("usage" in chunk)) return raw;
  const { usage: _usage, ...rest } = chunk;
  if (!rest.choices || rest.choices.length === 0) return undefined;
  return JSON.stringify(rest);
}

/**
 * A whole answer's body for an OpenAI chat caller: the upstream's own bytes where it speaks OpenAI
 * chat; `head` (a fresh id) is made only when the answer is encoded here.
 */
export function completionBody(answer: WholeGeneration, head: () => AnswerHead): string {
  if (answer.dialect === "openai-chat" && answer.raw !== undefined) return answer.raw;
  return JSON.stringify(toCompletion(answer.result(), head()));
}
