/**
 * Anthropic Messages, caller side, for the relay (issue 18): how one answer reaches a Messages
 * caller. Unlike OpenAI chat (lib/dialects/openai-chat/stream.ts), a stream is always written from
 * the canonical events, even when the upstream speaks Messages itself: after a failover or a
 * continuation mid-answer the next upstream numbers its content blocks from 0 again and opens with
 * its own `message_start`, so its frames passed on would repeat indexes and restart the message. One
 * encoder for the whole answer keeps the grammar valid across targets. A whole answer has no such
 * seam: an upstream's own Message is passed on as it sent it (unknown block types included).
 */
import type { GatewayError } from "../../errors.ts";
import type { UpstreamEvent, WholeGeneration } from "../../providers/generation.ts";
import { createMessageStreamEncoder, type MessageHead, toMessage } from "./encode.ts";

/** The relay's encoder for a Messages caller: SSE frames, `message_stop` only on a whole answer. */
export function createMessagesStreamEncoder(head: MessageHead): {
  event(upstream: UpstreamEvent): string;
  end(): string;
  fail(error: GatewayError): string;
} {
  const encoder = createMessageStreamEncoder(head);
  return {
    event(upstream) {
      let out = "";
      for (const event of upstream.events) out += encoder.push(event);
      return out;
    },
    end: () => encoder.end(),
    fail: (error) => encoder.fail(error),
  };
}

/** A whole answer's body for a Messages caller: the upstream's own Message where it speaks Messages. */
export function messageBody(answer: WholeGeneration, head: MessageHead): string {
  if (answer.dialect === "anthropic-messages" && answer.raw !== undefined) return answer.raw;
  return JSON.stringify(toMessage(answer.result(), head));
}
