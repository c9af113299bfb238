import type { GenerationEvent } from "../core/events.ts";
import { estimateTokens, type MeteredUsage, NO_USAGE, type Usage } from "../core/usage.ts";
import { GatewayError, UpstreamTimeoutError } from "../errors.ts";
import { HttpNetworkError } from "../http/client.ts";
import type { EmbeddingAnswer, WholeGeneration } from "../providers/generation.ts";

/**
 * What one attempt on an upstream produced for a request, as far as the gateway saw it. Every
 * attempt counts, failed ones included (issue 16: a caller who hangs up, a cut, a timeout, a
 * failover must not make the upstreams' work free).
 */
export interface AttemptUsage {
  /** Input sent beyond the caller's prompt, in characters: a continuation's prefilled answer. */
  extraInputChars: number;
  /** Output characters received, every choice: text, reasoning, refusals, tool calls. */
  outputChars: number;
  /** The provider's own count, once it arrived. */
  reported: Usage | undefined;
  /**
   * The upstream worked on the request: it answered (maybe with no text), or failed after it had
   * the request (a timeout once it was sent). Such an attempt counts at least its prompt.
   */
  worked: boolean;
}

/** A request's attempts, in the order they were made. */
export type UsageTally = AttemptUsage[];

/** Starts counting one attempt of the request. */
export function startAttempt(tally: UsageTally, extraInputChars = 0): AttemptUsage {
  const attempt: AttemptUsage = { extraInputChars, outputChars: 0, reported: undefined, worked: false };
  tally.push(attempt);
  return attempt;
}

/** Counts one upstream event as received (whether or not the caller gets it). */
export function countEvents(attempt: AttemptUsage, events: readonly GenerationEvent[]): void {
  for (const event of events) {
    switch (event.type) {
      case "text":
      case "reasoning":
      case "refusal":
        attempt.outputChars += event.text.length;
        break;
      case "tool-call-start":
        attempt.outputChars += event.name.length;
        break;
      case "tool-call-delta":
        attempt.outputChars += event.input.length;
        break;
      case "usage":
        attempt.reported = event.usage;
        break;
      default:
        break;
    }
  }
}

/** Counts a whole (non-streamed) answer: an answer, so at least its prompt was worked on. */
export function countWhole(attempt: AttemptUsage, answer: WholeGeneration): void {
  attempt.worked = true;
  attempt.outputChars += answer.outputChars;
  attempt.reported = answer.usage;
}

/**
 * Counts an embedding answer: input tokens only, the provider's count when it gave one. Without one
 * the attempt is left to the request's estimate (from `Call.promptChars`, which an embeddings call
 * sets to its inputs' size) and marked estimated.
 */
export function countEmbedding(attempt: AttemptUsage, answer: EmbeddingAnswer): void {
  attempt.worked = true;
  if (!answer.usage.estimated) attempt.reported = { ...NO_USAGE, inputTokens: answer.usage.inputTokens };
}

/**
 * Counts a failed attempt. `aborted`: the attempt was stopped from our side (the caller left, the
 * deadline passed) with its request in flight.
 */
export function countFailure(attempt: AttemptUsage, error: unknown, aborted: boolean): void {
  if (upstreamWorked(error, aborted)) attempt.worked = true;
}

/**
 * Whether an attempt that failed had the upstream work on the prompt. A rejection before any work
 * (connection refused or reset before a response, a 4xx or 5xx status, an error event, no free
 * connection) costs nothing. A timeout once the request was sent (headers, first token, idle,
 * response, deadline), the caller leaving or the deadline passing mid-request, or a response cut or
 * unreadable after its 200 means the upstream had the prompt: it counts at least the prompt's
 * estimate. (Output the gateway received counts whatever ended the attempt.)
 */
function upstreamWorked(error: unknown, aborted: boolean): boolean {
  if (error instanceof UpstreamTimeoutError) return error.phase !== "connect";
  if (aborted) return true;
  if (!(error instanceof GatewayError)) return false;
  if (error.cause instanceof HttpNetworkError) return !error.cause.beforeResponse;
  return WORKED_CODES.has(error.code ?? "");
}

/** Failures of a whole answer after its 200 (a body cut short, unreadable or too large). */
const WORKED_CODES = new Set(["upstream_invalid_response", "response_too_large"]);

/**
 * The request's usage, over every attempt: the provider's count where it arrived, else the
 * gateway's estimate (output from the characters received, input from the prompt's size, see
 * `estimateTokens`) for an attempt the upstream worked on, marked `estimated`. `promptChars` is asked
 * (once) only when an estimate is needed; without it, only the providers' counts are summed.
 */
export function meteredUsage(tally: UsageTally, promptChars: (() => number) | undefined): MeteredUsage {
  const total: MeteredUsage = { ...NO_USAGE, estimated: false };
  let prompt: number | undefined;
  for (const attempt of tally) {
    const reported = attempt.reported;
    if (reported !== undefined) {
      total.inputTokens += reported.inputTokens;
      total.outputTokens += reported.outputTokens;
      total.cacheReadTokens += reported.cacheReadTokens;
      total.cacheWriteTokens += reported.cacheWriteTokens;
      total.reasoningTokens += reported.reasoningTokens;
    } else if (promptChars !== undefined && (attempt.worked || attempt.outputChars > 0)) {
      prompt ??= promptChars();
      total.inputTokens += estimateTokens(prompt + attempt.extraInputChars);
      total.outputTokens += estimateTokens(attempt.outputChars);
      total.estimated = true;
    }
  }
  return total;
}

/** Whether any attempt's usage came from the provider. */
export function anyReported(tally: UsageTally): boolean {
  return tally.some((attempt) => attempt.reported !== undefined);
}
