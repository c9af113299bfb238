/**
 * Token usage in the gateway's own terms, one floor below every API dialect and provider (issue 17):
 * each wire format (OpenAI's `prompt_tokens`, Anthropic's `input_tokens`, Bedrock's `inputTokens`)
 * is read into this shape by the adapter that speaks it, and the ledger, limits and logs read only
 * this.
 */
export interface Usage {
  /** Every prompt token, cached ones included. */
  inputTokens: number;
  outputTokens: number;
  /** Prompt tokens served from the provider's cache (a part of `inputTokens`). */
  cacheReadTokens: number;
  /** Prompt tokens written to the provider's cache (a part of `inputTokens`). */
  cacheWriteTokens: number;
  /** Output tokens spent on reasoning (a part of `outputTokens`). */
  reasoningTokens: number;
}

/** Usage as a request's meter is told it: the provider's figures, or the gateway's estimate. */
export interface MeteredUsage extends Usage {
  /** True when some figure is the gateway's estimate (the provider's usage never arrived). */
  estimated: boolean;
}

export const NO_USAGE: Usage = Object.freeze({
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
});

/** Characters per token the estimates assume: about right for English prose, high for code. */
export const CHARS_PER_TOKEN = 4;

/**
 * Tokens in `chars` characters of text, estimated (at least 1 for any text). Used where the
 * provider's count never arrived (a caller that left, a cut stream) and for a prompt's size at
 * admission; every figure it produces is marked `estimated`.
 */
export function estimateTokens(chars: number): number {
  return chars <= 0 ? 0 : Math.ceil(chars / CHARS_PER_TOKEN);
}
