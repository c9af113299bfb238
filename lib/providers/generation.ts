import type { ProviderConfig } from "../config/types.ts";
import type { EmbeddingRequest, EmbeddingResult } from "../core/embeddings.ts";
import type { GenerationEvent, GenerationResult } from "../core/events.ts";
import type { GenerationRequest } from "../core/request.ts";
import type { Usage } from "../core/usage.ts";

/**
 * The provider contract for generation (issue 17): one capability a provider exposes, whatever API
 * dialect the caller speaks. The engine (plan, retries, failover, first-token gate, continuation)
 * reads only the canonical events; an inbound dialect encodes them for its caller, or, when the
 * upstream speaks the caller's own dialect, passes the upstream's bytes on unchanged.
 */

/** The API dialects the gateway speaks to callers, and that upstreams may speak natively. */
export type Dialect = "openai-chat" | "anthropic-messages" | "openai-responses";

/**
 * What one generation call is given: the caller's body in its own dialect (for a provider that
 * speaks that dialect and passes it through, unknown fields included) and the canonical request,
 * parsed on first use (for a provider that translates). Providers set the target's model themselves.
 */
export interface GenerationInput {
  readonly dialect: Dialect;
  /** The caller's body as parsed JSON; never mutated (copy to change a field). */
  readonly body: Readonly<Record<string, unknown>>;
  /** The canonical form, parsed once on first call; throws a 400 for what it cannot represent. */
  canonical(): GenerationRequest;
  /** Set on a continuation: the answer so far, to be continued by the provider (see `continuation`). */
  readonly prefill?: string | undefined;
  /**
   * The caller's headers a provider of the caller's dialect may forward (lower-case names; Messages:
   * `anthropic-beta`, `anthropic-version`). Only those the endpoint picked: never a key, never all.
   */
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/** One upstream event: canonical events for the engine, and the upstream's own bytes when it has a dialect. */
export interface UpstreamEvent {
  /** What the event says, in the gateway's terms (often one; none for a keep-alive or a block stop). */
  events: GenerationEvent[];
  /** The event as the upstream sent it (one SSE data payload), when the upstream speaks `dialect`. */
  raw?: string | undefined;
  /** The upstream's dialect; absent for a provider that speaks none of the callers' (Bedrock Converse). */
  dialect?: Dialect | undefined;
}

/** A stream whose upstream status is known to be good. Iterating may throw a `GatewayError`. */
export interface GenerationStream {
  /**
   * Ends when the upstream's answer is over (`[DONE]`, `message_stop`, `messageStop`): an iterator
   * that ends without a `finish` event for every choice is a cut answer.
   */
  events: AsyncIterable<UpstreamEvent>;
  /** Stops the upstream request. */
  cancel(): void;
}

/** A whole (non-streamed) answer. */
export interface WholeGeneration {
  /** The upstream's body as it sent it, when the upstream speaks `dialect`. */
  raw?: string | undefined;
  dialect?: Dialect | undefined;
  /** The answer in the gateway's terms (built on first call: a pass-through never needs it). */
  result(): GenerationResult;
  /** The provider's own usage figures, when it gave them. */
  usage: Usage | undefined;
  /** Output characters (every choice: text, reasoning, tool calls), for an estimate without usage. */
  outputChars: number;
}

/** Limits and context of one call to one provider. */
export interface GenerationOptions {
  /** The target's model, as the upstream names it (the caller's body names the route). */
  model: string;
  signal: AbortSignal;
  /** The provider's timeouts for this call (capped by the request's deadline). */
  timeouts: ProviderConfig["timeouts"];
}

/**
 * Chat generation, the capability every provider has (embeddings are a member of their own,
 * {@link EmbeddingsCapability}). Each method talks to the upstream once: retries, cooldowns and
 * failover are the engine's, under the provider's configured policy.
 */
export interface ChatCapability {
  complete(input: GenerationInput, options: GenerationOptions): Promise<WholeGeneration>;
  /** Resolves once the upstream status is known (a refusal rejects); events follow. */
  stream(input: GenerationInput, options: GenerationOptions): Promise<GenerationStream>;
  /**
   * How a cut answer is resumed on this target: `prefill`, it continues `input.prefill` itself
   * (DeepSeek's prefix completion, a trailing assistant message for Claude) and streams only the
   * rest; `restart`, it is asked again and its answer kept only if it begins with the text sent.
   */
  readonly resume: "prefill" | "restart";
  /**
   * The prompt's input tokens as the target itself counts them (Anthropic's
   * `POST /v1/messages/count_tokens`, Bedrock's `CountTokens`), for a target that has such a count;
   * absent, the caller estimates. Rejects with the same typed errors as `complete`; a target whose
   * model has no count (a Bedrock model other than Claude) rejects with `count_tokens_unsupported`.
   */
  countTokens?(input: GenerationInput, options: GenerationOptions): Promise<number>;
  /**
   * Whether `countTokens` counts for this model (Bedrock counts only Claude's); absent, it counts for
   * every model. A target that cannot count is left out of the plan, not tried and refused.
   */
  countsTokensFor?(model: string): boolean;
}

/**
 * An embedding answer: the vectors in the gateway's terms, and the upstream's own bytes when they
 * already are the answer the caller asked for (OpenAI's shape, in the caller's `encoding_format`,
 * with usage), to be handed on unchanged.
 */
export interface EmbeddingAnswer extends EmbeddingResult {
  raw?: string | undefined;
}

/**
 * Embeddings (issue 20), a capability of its own: a provider that has it serves `/v1/embeddings`.
 * Like chat, `embed` talks to the upstream once (a batch the upstream takes in pieces is one call
 * here); retries, cooldowns and failover are the engine's.
 */
export interface EmbeddingsCapability {
  /** Whether this provider can embed with `model` (a Bedrock target must be of a known family). */
  serves(model: string): boolean;
  embed(request: EmbeddingRequest, options: GenerationOptions): Promise<EmbeddingAnswer>;
}
