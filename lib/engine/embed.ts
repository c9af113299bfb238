import { capTimeouts } from "../config/timeouts.ts";
import type { ModelRoute } from "../config/types.ts";
import { inEmbeddingSpaceOf } from "../core/embedding-space.ts";
import type { EmbeddingRequest } from "../core/embeddings.ts";
import { InternalError } from "../errors.ts";
import type { ProviderFactory } from "../providers/factory.ts";
import type { EmbeddingAnswer } from "../providers/generation.ts";
import { countEmbedding, countFailure, startAttempt } from "./metering.ts";
import type { Candidate, EngineCall } from "./run.ts";
import { type Operation, withAttempts } from "./serve.ts";

/** One embeddings request, as the embeddings endpoint hands it to the engine. */
export interface EmbeddingCall extends EngineCall {
  /** The canonical request; each target is sent it with its own model. */
  request: EmbeddingRequest;
}

/**
 * Embeddings over the engine (issue 20): retries, `Retry-After`, cooldowns, the breaker and failover
 * as for a whole chat answer, over the route's targets of one vector space only ({@link embeddingPlan}).
 */
export const embedding: Operation<EmbeddingAnswer, EmbeddingCall> = {
  continues: false,
  plan: (candidates, call) => embeddingPlan(candidates, call.route),
  attempt: (run, candidate, maxAttempts) =>
    withAttempts(run, candidate, maxAttempts, async () => {
      const embeddings = candidate.provider.embeddings;
      // The plan holds only providers that embed.
      if (embeddings === undefined)
        throw new InternalError(new Error(`${candidate.target.provider} cannot embed`));
      const { target } = candidate;
      const request: EmbeddingRequest = { ...run.call.request, model: target.model };
      // The caller's `dimensions` win; a target configured for some gets them when the caller names none.
      if (request.dimensions === undefined && target.dimensions !== undefined)
        request.dimensions = target.dimensions;
      const usage = startAttempt(run.usage);
      try {
        const answer = await embeddings.embed(request, {
          model: target.model,
          signal: run.signal,
          timeouts: capTimeouts(candidate.provider.config.timeouts, run.call.deadline - run.deps.now()),
        });
        countEmbedding(usage, answer);
        return answer;
      } catch (error) {
        countFailure(usage, error, run.signal.aborted);
        throw error;
      }
    }),
};

/**
 * The candidates that may answer an embeddings request, in the balancer's order: those that embed,
 * in the vector space of the route's first target. The first *configured* target fixes the space,
 * not the first in the balancer's order: a health-first or round-robin order changes from request
 * to request, and a route whose space followed it would write vectors of two spaces into one index.
 * A target of another space is never tried, whatever failed: the request answers the failure.
 */
export function embeddingPlan(candidates: Candidate[], route: ModelRoute): Candidate[] {
  const first = route.targets[0];
  if (first === undefined) return [];
  const able = candidates.filter((c) => c.provider.embeddings?.serves(c.target.model) === true);
  const same = new Set(
    inEmbeddingSpaceOf(
      first,
      able.map((c) => c.target),
    ),
  );
  return able.filter((c) => same.has(c.target));
}

/**
 * Whether `route` serves embeddings: its first target (the one that fixes its vector space) is of a
 * provider that embeds with its model. Else `/v1/embeddings` refuses the route as the caller's error.
 */
export function servesEmbeddings(factory: ProviderFactory, route: ModelRoute): boolean {
  const first = route.targets[0];
  if (first === undefined) return false;
  return factory.getProvider(first.provider)?.embeddings?.serves(first.model) === true;
}
