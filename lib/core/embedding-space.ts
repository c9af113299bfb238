/**
 * Which targets produce the same vectors (issue 20). A vector index is only searchable with vectors
 * of one space: an embeddings request fails over only to a target of the first target's space, never
 * to "some other embedding model", which would answer 200 and corrupt the caller's index in silence.
 *
 * Two targets share a space when the configuration says so (both name the same `space`), or else when
 * they call the same upstream model (once Bedrock's ARN and cross-region inference-profile prefixes
 * are taken off, on whichever provider); and in either case their configured output `dimensions`
 * agree. The rule errs on the side of not failing over: an id this file cannot normalise compares
 * unequal, which costs a failover, never an index.
 */

/** What decides a target's vector space; a route target has these fields. */
export interface EmbeddingSpaceTarget {
  provider: string;
  /** The upstream model id (`text-embedding-3-small`, `us.cohere.embed-v4:0`, an ARN). */
  model: string;
  /** A space the configuration declares; targets of one space are interchangeable by declaration. */
  space?: string | undefined;
  /** The output dimensions the target is configured to produce; the model's own when absent. */
  dimensions?: number | undefined;
}

/**
 * Bedrock's geographic inference-profile prefixes (`us.amazon.titan-embed-text-v2:0` routes the
 * foundation model `amazon.titan-embed-text-v2:0` within a geography):
 * https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html. A list, not
 * a pattern: `vendor.model` ids look like `prefix.vendor.model` ones to any pattern short enough to
 * trust.
 */
const PROFILE_PREFIX = /^(?:us|us-gov|eu|apac|jp|au|ca|global)\.(?=[a-z0-9-]+\.)/;

/**
 * The foundation model behind a model id: the resource of a Bedrock ARN
 * (`arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0`, or an inference
 * profile's ARN), without a geographic inference-profile prefix. Other ids come back unchanged,
 * and so does an application inference profile (its id names no model).
 */
export function baseModelId(modelId: string): string {
  let id = modelId;
  if (id.startsWith("arn:")) {
    const slash = id.lastIndexOf("/");
    if (slash >= 0) id = id.slice(slash + 1);
  }
  return id.replace(PROFILE_PREFIX, "");
}

/**
 * Whether `a` and `b` produce vectors of one space. Declared spaces decide when both targets declare
 * one (two different declarations are two spaces, even on one model); otherwise the models must be
 * the same foundation model. Configured dimensions must agree in every case.
 */
export function sameEmbeddingSpace(a: EmbeddingSpaceTarget, b: EmbeddingSpaceTarget): boolean {
  if (a.dimensions !== b.dimensions) return false;
  if (a.space !== undefined && b.space !== undefined) return a.space === b.space;
  return baseModelId(a.model) === baseModelId(b.model);
}

/**
 * The targets of `order` that may answer in place of `first` (itself included, when it is in the
 * list), in their order: the failover order of an embeddings request whose first choice is `first`.
 */
export function inEmbeddingSpaceOf<T extends EmbeddingSpaceTarget>(
  first: EmbeddingSpaceTarget,
  order: T[],
): T[] {
  return order.filter((target) => sameEmbeddingSpace(first, target));
}
