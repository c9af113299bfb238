import type { CooldownPolicy, HealthPolicy } from "../config/types.ts";
import type { Cooldown } from "../gateway/cooldown.ts";
import type { HealthResult } from "../providers/types.ts";
import type { FailureInput, ProviderState } from "./types.ts";

/**
 * The state after one check. Failures below the threshold mark a provider degraded; at the
 * threshold it is unhealthy, and it needs `recoveryThreshold` good checks in a row to come back
 * (auto-recovery). A good but slow check (latency or time to first token over the limit) is degraded.
 */
export function nextState(
  previous: ProviderState,
  result: HealthResult,
  policy: HealthPolicy,
  now: number,
): ProviderState {
  const base = {
    ...previous,
    lastCheckAt: now,
    latencyMs: result.latencyMs,
    ttftMs: result.ttftMs,
    version: previous.version + 1,
  };
  if (!result.ok) {
    const failures = previous.consecutiveFailures + 1;
    return {
      ...base,
      consecutiveFailures: failures,
      consecutiveSuccesses: 0,
      status:
        failures >= policy.failureThreshold || previous.status === "unhealthy" ? "unhealthy" : "degraded",
      lastError: (result.error ?? `HTTP ${result.status}`).slice(0, 200),
    };
  }
  const successes = previous.consecutiveSuccesses + 1;
  const slow =
    result.latencyMs > policy.degradedLatencyMs ||
    (result.ttftMs !== undefined && result.ttftMs > policy.degradedTtftMs);
  const recovering = previous.status === "unhealthy" && successes < policy.recoveryThreshold;
  return {
    ...base,
    consecutiveFailures: 0,
    consecutiveSuccesses: successes,
    status: recovering ? "unhealthy" : slow ? "degraded" : "healthy",
    lastError: undefined,
  };
}

/**
 * Whether a target with `failures` consecutive failures (this one included) should be benched, and
 * until when: a 429 with Retry-After at once, for that long (capped); otherwise from the threshold on.
 */
export function cooldownFor(
  failure: FailureInput,
  failures: number,
  policy: CooldownPolicy,
  now: number,
): Cooldown | undefined {
  if (failure.status === 429 && failure.retryAfterMs !== undefined) {
    return { until: now + Math.min(failure.retryAfterMs, policy.maxCooldownMs), reason: "rate_limited" };
  }
  if (failures >= policy.failureThreshold) {
    return { until: now + policy.cooldownMs, reason: failure.status === 429 ? "rate_limited" : "failing" };
  }
  return undefined;
}
