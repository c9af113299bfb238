import { describe, expect, it } from "vitest";
import { countUsage } from "../../lib/callers/ledger.ts";
import { validateConfig } from "../../lib/setup/validate.ts";

/**
 * Issue 18: prompt caching's three prices. Anthropic's usage says the prompt's tokens read from the
 * cache and those written to it apart; a cost from one input price over-counts the one and
 * under-counts the other (LiteLLM #11935).
 */
describe("countUsage with cache prices", () => {
  const usage = {
    inputTokens: 1_000_000,
    outputTokens: 100_000,
    cacheReadTokens: 600_000,
    cacheWriteTokens: 300_000,
    reasoningTokens: 0,
  };

  it("prices cache reads at cachedInput, cache writes at cacheWrite and the rest at input", () => {
    // Act
    const counted = countUsage(usage, { input: 3, output: 15, cachedInput: 0.3, cacheWrite: 3.75 });
    // Assess: 100k × $3 + 600k × $0.30 + 300k × $3.75 + 100k × $15, per million.
    expect(counted.cost).toBeCloseTo(0.3 + 0.18 + 1.125 + 1.5, 10);
    expect(counted).toMatchObject({
      promptTokens: 1_000_000,
      cachedTokens: 600_000,
      cacheWriteTokens: 300_000,
      tokens: 1_100_000,
    });
  });

  it("prices cache writes at input when no cacheWrite price is configured", () => {
    const counted = countUsage(usage, { input: 3, output: 15, cachedInput: 0.3 });
    expect(counted.cost).toBeCloseTo(0.3 + 0.18 + 0.9 + 1.5, 10);
  });

  it("reads cacheWrite from callers.prices, defaulting to input", () => {
    // Act
    const config = validateConfig({
      providers: [{ id: "p", type: "mock" }],
      models: { m: { targets: [{ provider: "p", model: "x" }] } },
      callers: { prices: { m: { input: 3, output: 15, cacheWrite: 3.75 }, n: { input: 1, output: 2 } } },
    });
    // Assess
    expect(config.callers.prices.m).toEqual({ input: 3, output: 15, cachedInput: 3, cacheWrite: 3.75 });
    expect(config.callers.prices.n?.cacheWrite).toBe(1);
  });
});
