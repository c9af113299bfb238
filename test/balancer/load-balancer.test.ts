import { describe, expect, it } from "vitest";
import { type HealthLookup, LoadBalancer } from "../../lib/balancer/load-balancer.ts";
import { LoadBalanceStrategy } from "../../lib/config/types.ts";
import type { HealthStatus } from "../../lib/health/types.ts";
import { seededRandom } from "../support/random.ts";

function lookup(
  status: Record<string, HealthStatus> = {},
  extra: { weight?: Record<string, number>; disabled?: string[] } = {},
): HealthLookup {
  return {
    status: (id) => status[id] ?? "unknown",
    weight: (id) => extra.weight?.[id],
    enabled: (id) => (extra.disabled?.includes(id) ? false : undefined),
  };
}

function balancer(strategy: LoadBalanceStrategy, health = lookup(), random = seededRandom(1)) {
  const b = new LoadBalancer(strategy, random, health);
  b.registerProvider("a", { weight: 3 });
  b.registerProvider("b", { weight: 1 });
  b.registerProvider("c", { weight: 0 });
  return b;
}

describe("LoadBalancer", () => {
  it("round robin rotates the start, per instance", () => {
    const b = balancer(LoadBalanceStrategy.ROUND_ROBIN);
    expect([
      b.getAvailableProviders(),
      b.getAvailableProviders(),
      b.getAvailableProviders(),
      b.getAvailableProviders(),
    ]).toEqual([
      ["a", "b", "c"],
      ["b", "c", "a"],
      ["c", "a", "b"],
      ["a", "b", "c"],
    ]);
  });

  it("weighted picks converge on the configured weights", () => {
    const b = balancer(LoadBalanceStrategy.WEIGHTED, lookup(), seededRandom(42));
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
    const draws = 20_000;
    for (let i = 0; i < draws; i++) {
      const pick = b.getProvider() as string;
      counts[pick] = (counts[pick] ?? 0) + 1;
    }
    expect((counts.a ?? 0) / draws).toBeCloseTo(0.75, 1);
    expect(Math.abs((counts.a ?? 0) / draws - 0.75)).toBeLessThan(0.015);
    expect(Math.abs((counts.b ?? 0) / draws - 0.25)).toBeLessThan(0.015);
    expect(counts.c).toBe(0);
  });

  it("weighted order puts zero weights after the others, and the table's weight wins", () => {
    const b = balancer(LoadBalanceStrategy.WEIGHTED, lookup({}, { weight: { a: 0, b: 5 } }), seededRandom(3));
    for (let i = 0; i < 20; i++) expect(b.getAvailableProviders()[0]).toBe("b");
  });

  it("health first: healthy, then degraded, never unhealthy unless nothing else is left", () => {
    const b = balancer(
      LoadBalanceStrategy.HEALTH_FIRST,
      lookup({ a: "unhealthy", b: "degraded", c: "healthy" }),
    );
    expect(b.getAvailableProviders()).toEqual(["c", "b", "a"]);
    expect(b.getProvider()).toBe("c");

    const allDown = balancer(
      LoadBalanceStrategy.HEALTH_FIRST,
      lookup({ a: "unhealthy", b: "unhealthy", c: "unhealthy" }),
    );
    expect(allDown.getAvailableProviders()).toEqual(["a", "b", "c"]);
  });

  it("puts unhealthy providers last in every strategy and leaves disabled ones out", () => {
    const health = lookup({ a: "unhealthy" }, { disabled: ["b"] });
    for (const strategy of Object.values(LoadBalanceStrategy)) {
      const order = balancer(strategy, health).getAvailableProviders();
      expect(order).toEqual(["c", "a"]);
    }
  });

  it("registers and unregisters targets", () => {
    const b = balancer(LoadBalanceStrategy.HEALTH_FIRST);
    b.unregisterProvider("a");
    b.registerProvider("d", { providerId: "a" });
    expect(b.getAvailableProviders()).toEqual(["b", "c", "d"]);
  });
});
