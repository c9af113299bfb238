/**
 * An embeddings request and its answer in the gateway's own terms (issues 17 and 20), one floor below
 * every dialect and provider: the OpenAI embeddings body is parsed into {@link EmbeddingRequest}
 * (lib/dialects/openai-embeddings), each provider builds its own wire body from it (Bedrock's Titan
 * and Cohere bodies, lib/providers/bedrock-embeddings.ts), and every answer comes back as an
 * {@link EmbeddingResult} that the caller's dialect encodes.
 */
import { estimateTokens, type MeteredUsage, NO_USAGE } from "./usage.ts";

/** One input to embed: text, or text the caller already tokenized (OpenAI's token arrays). */
export type EmbeddingInput = { text: string } | { tokens: number[] };

export interface EmbeddingRequest {
  /** The target's model (the route name until a target is chosen). */
  model: string;
  /** At least one, in the caller's order; the answer's vectors follow this order. */
  inputs: EmbeddingInput[];
  /** Output dimensions asked for (OpenAI's `dimensions`); the model's own when absent. */
  dimensions?: number | undefined;
  /** How the caller wants the vectors written: JSON numbers, or little-endian float32 in base64. */
  encoding: "float" | "base64";
  /** An end-user id for the provider's abuse monitoring. */
  user?: string | undefined;
  /**
   * Provider-specific extension fields, by provider family: `bedrock: { inputType, truncate,
   * normalize, maxTokens }`, checked by the target that reads them.
   */
  extensions: Record<string, unknown>;
  /** Fields of the caller's dialect this model has no place for, by their name in that dialect. */
  unmapped: Record<string, unknown>;
}

/** One vector: JSON numbers as the upstream wrote them, or float32 values decoded from base64. */
export type EmbeddingVector = Float32Array | number[];

export interface EmbeddingResult {
  /** One vector per input, in the request's input order. */
  vectors: EmbeddingVector[];
  usage: {
    inputTokens: number;
    /** True when the figure is the gateway's estimate (the upstream gave none). */
    estimated: boolean;
  };
  /** The model that answered, as the upstream named it (or the target's model id). */
  model: string;
}

/**
 * Tokens in the inputs, estimated: a token array counts its length, text its characters over
 * {@link estimateTokens}'s ratio. For admission before the call, and where the upstream's count
 * never arrived (the result is then marked `estimated`).
 */
export function estimateEmbeddingTokens(inputs: readonly EmbeddingInput[]): number {
  let tokens = 0;
  for (const input of inputs)
    tokens += "text" in input ? estimateTokens(input.text.length) : input.tokens.length;
  return tokens;
}

/** An embedding answer's usage as the caller's meter is told it: input tokens only. */
export function embeddingUsage(result: EmbeddingResult): MeteredUsage {
  return { ...NO_USAGE, inputTokens: result.usage.inputTokens, estimated: result.usage.estimated };
}
