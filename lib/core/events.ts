import type { AssistantPart } from "./request.ts";
import type { Usage } from "./usage.ts";

/**
 * Why an answer ended, in the gateway's terms; each dialect maps its own names to and from these
 * (OpenAI `stop`/`length`/`tool_calls`/`content_filter`, Anthropic `end_turn`/`max_tokens`/
 * `tool_use`/`stop_sequence`/`refusal`/`pause_turn`, Bedrock's `stopReason`).
 */
export type FinishReason = "stop" | "length" | "tool-calls" | "content-filter" | "stop-sequence" | "other";

/**
 * One event of a generation's stream, in the gateway's terms (issue 17). `choice` is the answer's
 * index for requests of several answers (OpenAI's `n`); 0 otherwise. Tool calls are numbered per
 * choice in order of appearance (`index`). Modelled on vercel/ai's `LanguageModelV2StreamPart`.
 */
export type GenerationEvent =
  | { type: "text"; choice: number; text: string }
  | { type: "reasoning"; choice: number; text: string }
  /** A reasoning block's signature (or opaque redacted data), once the block is complete. */
  | { type: "reasoning-signature"; choice: number; signature?: string; redacted?: string; family?: string }
  | { type: "tool-call-start"; choice: number; index: number; id: string; name: string; custom?: boolean }
  | { type: "tool-call-delta"; choice: number; index: number; input: string }
  | { type: "tool-call-end"; choice: number; index: number }
  | { type: "refusal"; choice: number; text: string }
  | { type: "usage"; usage: Usage }
  | { type: "finish"; choice: number; reason: FinishReason; raw?: string | undefined };

/** Whether an event carries something a caller sees (a first-token timer counts these, not bytes). */
export function isContent(event: GenerationEvent): boolean {
  if (event.type === "usage") return false;
  return !("text" in event) || event.text !== "";
}

/** A whole (non-streamed) answer, in the gateway's terms. */
export interface GenerationResult {
  /** The upstream's id for the answer, when it gave one. */
  id?: string | undefined;
  /** The model that answered, as the upstream named it. */
  model: string;
  choices: Array<{
    content: AssistantPart[];
    finish: FinishReason;
    /** The upstream's own name for the finish (as on a `finish` event), for a dialect that has it. */
    rawFinish?: string | undefined;
  }>;
  usage?: Usage | undefined;
}
