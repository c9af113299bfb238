import { type GatewayError, UpstreamTimeoutError } from "../errors.ts";

/**
 * Whose fault a failed attempt was. Only the provider's own faults count against it (cooldowns, the
 * breaker, passive health in the table): anything a caller sends or does, and the gateway's own
 * limits, must never bench a provider for the whole fleet.
 */
export type Fault = "provider" | "caller" | "gateway";

/** Codes of failures that are the gateway's own: its limits, its pool, its bugs. */
const GATEWAY_CODES = new Set([
  "gateway_overloaded",
  "response_too_large",
  "internal_error",
  // The provider's key could not be read, or none is configured: our side, not the provider's.
  "provider_key_unavailable",
  "provider_not_configured",
  // A restarted answer that did not begin with the text sent: at temperature > 0 that is expected
  // of a healthy provider, so it must not push the backup toward a bench.
  "continuation_diverged",
]);

/**
 * The one place that decides. `deadline` is the request's: a timeout that fired because the time
 * left ran out (every per-attempt timeout is capped at the time left) is the caller's budget
 * spent, not the provider's silence.
 */
export function faultOf(error: GatewayError, when: { now: number; deadline: number }): Fault {
  if (error.code !== null && GATEWAY_CODES.has(error.code)) return "gateway";
  // Refused as the caller's request (a 4xx passed back), or the caller's own deadline.
  if (error.action === "return") return "caller";
  if (error instanceof UpstreamTimeoutError && (error.phase === "deadline" || when.now >= when.deadline)) {
    return "caller";
  }
  return "provider";
}
