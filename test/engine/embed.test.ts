import { describe, expect, it } from "vitest";
import { LoadBalanceStrategy, type ModelRoute, type RouteTarget } from "../../lib/config/types.ts";
import { embeddingPlan } from "../../lib/engine/embed.ts";
import type { Candidate } from "../../lib/engine/run.ts";
import type { Provider } from "../../lib/providers/types.ts";

/** A provider that embeds (or not): only `embeddings.serves` is read by the plan. */
const provider = (embeds: boolean): Provider =>
  ({
    embeddings: embeds ? { serves: () => true, embed: async () => ({}) } : undefined,
  }) as unknown as Provider;

const candidate = (target: RouteTarget, embeds = true): Candidate => ({
  target,
  provider: provider(embeds),
  key: `${target.provider}/${target.model}`,
});

const small: RouteTarget = { provider: "a", model: "text-embedding-3-small" };
const smallElsewhere: RouteTarget = { provider: "b", model: "text-embedding-3-small" };
const large: RouteTarget = { provider: "b", model: "text-embedding-3-large" };
const route = (targets: RouteTarget[]): ModelRoute => ({
  name: "r",
  targets,
  strategy: LoadBalanceStrategy.HEALTH_FIRST,
});

describe("the plan of an embeddings request", () => {
  it("keeps the space of the route's first target even when the balancer puts another model first", () => {
    // A health-first order after the first target was marked unhealthy: the large model leads.
    const order = [candidate(large), candidate(smallElsewhere), candidate(small)];
    const plan = embeddingPlan(order, route([small, large, smallElsewhere]));
    expect(plan.map((c) => c.target)).toEqual([smallElsewhere, small]);
  });

  it("leaves out targets whose provider cannot embed, and is empty when nothing shares the space", () => {
    expect(
      embeddingPlan([candidate(small, false), candidate(smallElsewhere)], route([small])).map(
        (c) => c.target,
      ),
    ).toEqual([smallElsewhere]);
    expect(embeddingPlan([candidate(large)], route([small, large]))).toEqual([]);
  });

  it("follows declared spaces and configured dimensions", () => {
    const x = { provider: "a", model: "bge-m3", space: "bge" };
    const y = { provider: "b", model: "BAAI/bge-m3", space: "bge" };
    const z = { provider: "b", model: "bge-m3", space: "bge", dimensions: 512 };
    expect(
      embeddingPlan([candidate(y), candidate(z), candidate(x)], route([x, y, z])).map((c) => c.target),
    ).toEqual([y, x]);
  });
});
