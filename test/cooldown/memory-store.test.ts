import { describe, expect, it } from "vitest";
import { createMemoryCooldownStore } from "../../lib/cooldown/memory-store.ts";
import { targetKey } from "../../lib/cooldown/target.ts";

const policy = {
  failureRateThreshold: 0.5,
  minRequests: 10,
  windowMs: 10_000,
  cooldownMs: 1000,
  maxCooldownMs: 5000,
};
const fault = (status: number, retryAfterMs?: number) => ({ status, retryAfterMs });

/** `failures` failures and `successes` successes on `target`, interleaved, at `now`. */
function traffic(
  store: ReturnType<typeof createMemoryCooldownStore>,
  target: string,
  failures: number,
  successes: number,
  now: number,
) {
  for (let i = 0; i < Math.max(failures, successes); i++) {
    if (i < successes) store.recordSuccess(target, now);
    if (i < failures) store.recordFailure(target, fault(503), now);
  }
}

describe("memory cooldown store (the breaker)", () => {
  it("does not bench on a run of failures below the minimum number of requests", () => {
    const store = createMemoryCooldownStore(policy);
    for (let i = 0; i < 9; i++) store.recordFailure("t", fault(503), 0);
    expect(store.get("t", 0)).toBeUndefined();
  });

  it("does not bench a target failing 30% of the time, which retries and failover absorb", () => {
    const store = createMemoryCooldownStore(policy);
    traffic(store, "t", 30, 70, 0);
    expect(store.get("t", 0)).toBeUndefined();
  });

  it("benches a target whose failure rate reaches the threshold, and only that target", () => {
    const store = createMemoryCooldownStore(policy);
    const sick = targetKey("openai", "gpt-4o");
    const sibling = targetKey("openai", "gpt-4o-mini");
    traffic(store, sick, 4, 5, 0);
    expect(store.get(sick, 0)).toBeUndefined();
    expect(store.recordFailure(sick, fault(503), 10)).toEqual({ until: 1010, reason: "failing", since: 10 });
    expect(store.get(sick, 10)).toMatchObject({ until: 1010, reason: "failing" });
    expect(store.get(sibling, 10)).toBeUndefined();
    expect(store.get(sick, 1010)).toBeUndefined();
  });

  it("forgets failures that slid out of the window", () => {
    const store = createMemoryCooldownStore(policy);
    for (let i = 0; i < 9; i++) store.recordFailure("t", fault(503), 0);
    store.recordFailure("t", fault(503), 12_000);
    expect(store.get("t", 12_000)).toBeUndefined();
  });

  it("benches for as long as a 429's Retry-After asks, capped, without counting a failure", () => {
    const store = createMemoryCooldownStore(policy);
    expect(store.recordFailure("t", fault(429, 1500), 0)).toEqual({
      until: 1500,
      reason: "rate_limited",
      since: 0,
    });
    store.recordFailure("u", fault(429, 60_000), 0);
    expect(store.get("u", 0)?.until).toBe(5000);
    // The rate limit ends on time even though the target answered meanwhile (the provider asked).
    store.recordSuccess("t", 100);
    expect(store.get("t", 100)?.reason).toBe("rate_limited");
    expect(store.get("t", 1500)).toBeUndefined();
    // Rate limits are not failures: nine 429s and one 503 do not trip the breaker.
    for (let i = 0; i < 9; i++) store.recordFailure("v", fault(429, 1), i * 10);
    store.recordFailure("v", fault(503), 100);
    expect(store.get("v", 100)).toBeUndefined();
  });

  it("puts a target on probation when its bench ends: a failure benches it again at once", () => {
    const store = createMemoryCooldownStore(policy);
    traffic(store, "t", 10, 0, 0);
    expect(store.get("t", 1000)).toBeUndefined();
    store.recordFailure("t", fault(500), 1000);
    expect(store.get("t", 1000)).toMatchObject({ until: 2000, reason: "failing" });
    expect(store.get("t", 2000)).toBeUndefined();
    store.recordSuccess("t", 2000);
    store.recordFailure("t", fault(500), 2001);
    expect(store.get("t", 2001)).toBeUndefined();
  });

  it("grants one trial at a time to a benched target; its success lifts the bench", () => {
    const store = createMemoryCooldownStore(policy);
    traffic(store, "t", 10, 0, 0);
    expect(store.tryTrial("t", 100)).toBe(true);
    expect(store.tryTrial("t", 100)).toBe(false);
    store.recordFailure("t", fault(503), 200);
    expect(store.get("t", 200)).toMatchObject({ until: 1200, reason: "failing" });
    // A failed trial keeps the next one back for a second.
    expect(store.tryTrial("t", 300)).toBe(false);
    expect(store.tryTrial("t", 1200)).toBe(true);
    store.recordSuccess("t", 1300);
    expect(store.get("t", 1300)).toBeUndefined();
    // A trial whose result never came frees the slot after its lease.
    traffic(store, "u", 10, 0, 0);
    expect(store.tryTrial("u", 0)).toBe(true);
    expect(store.tryTrial("u", 59_999)).toBe(false);
    expect(store.tryTrial("u", 60_000)).toBe(true);
    // A trial that ended with no verdict (not the target's fault either way) frees the slot at once.
    store.endTrial("u");
    expect(store.tryTrial("u", 60_001)).toBe(true);
  });
});
