import { describe, expect, it } from "vitest";
import { backoffDelay, parseRetryAfter } from "../../lib/retry/backoff.ts";

const policy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1000, maxRetryAfterMs: 10_000 };

describe("backoffDelay (full jitter)", () => {
  it("draws from [0, base * 2^(attempt-1)] and caps at maxDelayMs", () => {
    expect(backoffDelay(1, policy, () => 0.999)).toBe(99);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(200);
    expect(backoffDelay(10, policy, () => 0.999)).toBe(999);
    expect(backoffDelay(2, policy, () => 0)).toBe(0);
  });
});

describe("parseRetryAfter", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");

  it("reads delta-seconds, decimals included", () => {
    expect(parseRetryAfter({ "retry-after": "2" }, now)).toBe(2000);
    expect(parseRetryAfter({ "retry-after": "0.5" }, now)).toBe(500);
  });

  it("reads an HTTP-date", () => {
    expect(parseRetryAfter({ "retry-after": "Thu, 01 Jan 2026 00:00:07 GMT" }, now)).toBe(7000);
    expect(parseRetryAfter({ "retry-after": "Wed, 31 Dec 2025 23:00:00 GMT" }, now)).toBe(0);
  });

  it("prefers retry-after-ms", () => {
    expect(parseRetryAfter({ "retry-after-ms": "150", "retry-after": "9" }, now)).toBe(150);
  });

  it("ignores garbage", () => {
    expect(parseRetryAfter({ "retry-after": "soon" }, now)).toBeUndefined();
    expect(parseRetryAfter({ "retry-after-ms": "-5" }, now)).toBeUndefined();
    expect(parseRetryAfter({}, now)).toBeUndefined();
  });
});
