import type { HealthPolicy } from "../config/types.ts";
import type { HealthResult } from "../providers/types.ts";
import type { ProviderState } from "./types.ts";

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
