import { describe, expect, it } from "vitest";
import { GatewayError } from "../../lib/errors.ts";
import { createMemoryCooldownStore, targetKey } from "../../lib/gateway/cooldown.ts";

const policy = { failureThreshold: 2, cooldownMs: 1000, maxCooldownMs: 5000 };
const failure = (status: number, extra: { retryAfterMs?: number } = {}) =>
  new GatewayError("x", { status, action: "retry", ...extra });

describe("memory cooldown store", () => {
  it("benches a target after the threshold, and only that target", () => {
    const store = createMemoryCooldownStore(policy);
    const sick = targetKey("openai", "gpt-4o");
    const sibling = targetKey("openai", "gpt-4o-mini");
    store.recordFailure(sick, failure(503), 0);
    expect(store.get(sick, 0)).toBeUndefined();
    store.recordFailure(sick, failure(503), 10);
    expect(store.get(sick, 10)).toEqual({ until: 1010, reason: "failing" });
    expect(store.get(sibling, 10)).toBeUndefined();
    expect(store.get(sick, 1010)).toBeUndefined();
  });

  it("benches at once for a 429 with Retry-After, capped", () => {
    const store = createMemoryCooldownStore(policy);
    store.recordFailure("t", failure(429, { retryAfterMs: 60_000 }), 0);
    expect(store.get("t", 0)).toEqual({ until: 5000, reason: "rate_limited" });
  });

  it("ignores the caller's own errors and forgets failures after a success", () => {
    const store = createMemoryCooldownStore(policy);
    store.recordFailure("t", new GatewayError("bad", { status: 400, action: "return" }), 0);
    store.recordFailure("t", failure(500), 0);
    store.recordSuccess("t", 0);
    store.recordFailure("t", failure(500), 0);
    expect(store.get("t", 0)).toBeUndefined();
  });

  it("re-benches a target that fails again right after its cooldown (half-open)", () => {
    const store = createMemoryCooldownStore(policy);
    store.recordFailure("t", failure(500), 0);
    store.recordFailure("t", failure(500), 0);
    store.recordFailure("t", failure(500), 2000);
    expect(store.get("t", 2000)).toEqual({ until: 3000, reason: "failing" });
  });
});
