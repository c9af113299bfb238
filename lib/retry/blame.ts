import { type GatewayError, UpstreamTimeoutError } from "../errors.ts";

/**
 * Whose fault a failed attempt was. Only faults of the target itself count against it (cooldowns,
 * the breaker, the benches shared through the table): anything a caller sends or does, and the
 * gateway's own limits, must never bench a provider for the whole fleet (issues 12 and 16).
 * - `provider`: its 5xx, its silence while the gateway was reading, a broken answer;
 * - `config`: what only a fix to the configuration ends (the gateway's key, credit, base URL, a model
 *   the route names that the account may not call): counted against that one target, as the
 *   breaker keys it (provider + model), so a broken target stops costing each request an attempt;
 * - `caller`: a 4xx it caused, a feature it chose that the gateway cannot serve, its own deadline, a
 *   whole answer it asked for that outlasted `responseMs`;
 * - `gateway`: its limits, its pool, its bugs.
 */
export type Fault = "provider" | "config" | "caller" | "gateway";

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
 * Codes of failures the configuration causes: a redirect (the base URL is wrong), and Bedrock's
 * access denied or model not found for the model a target names. (Bedrock's access denied for a
 * feature the caller chose is handed back to the caller, never failed over: `bedrock-errors.ts`.)
 */
const CONFIG_CODES = new Set(["upstream_redirect", "bedrock_access_denied", "model_not_found"]);
/** Failed-over statuses about the gateway's own key, credit or route at an HTTP provider. */
const CONFIG_STATUSES = new Set([401, 402, 403, 404]);

/** Whether a fault counts against the target that failed (its breaker, its bench in the table). */
export function countsAgainstTarget(fault: Fault): boolean {
  return fault === "provider" || fault === "config";
}

/**
 * The one place that decides. `deadline` is the request's: a timeout that fired because the time
 * left ran out (every per-attempt timeout is capped at the time left) is the caller's budget
 * spent, not the provider's silence.
 */
export function faultOf(error: GatewayError, when: { now: number; deadline: number }): Fault {
  if (error.code !== null && GATEWAY_CODES.has(error.code)) return "gateway";
  // Refused as the caller's request (a 4xx passed back), or the caller's own deadline.
  if (error.action === "return") return "caller";
  if (error instanceof UpstreamTimeoutError) {
    if (error.phase === "deadline" || when.now >= when.deadline) return "caller";
    // A whole (non-streamed) answer not in by `responseMs`: nothing arrives before the answer is
    // complete, so a long answer the caller asked for and a stalled provider look the same, and a
    // caller asking for long answers must not bench the target for everyone (issue 16). A stalled
    // provider is still found by what is evidence: connect, header, first-token and idle timeouts
    // on streams, and the health checks. Bedrock's own ModelTimeoutException is the same verdict.
    if (error.phase === "response") return "caller";
    return "provider";
  }
  if (error.action === "failover" && isConfigFault(error)) return "config";
  return "provider";
}

function isConfigFault(error: GatewayError): boolean {
  return (error.code !== null && CONFIG_CODES.has(error.code)) || CONFIG_STATUSES.has(error.status);
}
