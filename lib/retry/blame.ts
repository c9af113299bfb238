import { type ErrorCode, type ErrorKind, type GatewayError, UpstreamTimeoutError } from "../errors.ts";

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

/**
 * Faults a code fixes whatever else the error says: the gateway's own (its limits, its pool, its
 * bugs, its keys) and the configuration's (a redirect means a wrong base URL; Bedrock's access
 * denied and model not found for the model a target names). Every other code is judged from the
 * error's action, kind and phase (`undefined`). The compiler holds every code to a line here.
 * (Bedrock's access denied for a feature the caller chose is handed back to the caller, never
 * failed over: `bedrock-errors.ts`.)
 */
const FAULT_OF_CODE: Record<ErrorCode, "gateway" | "config" | undefined> = {
  gateway_overloaded: "gateway",
  response_too_large: "gateway",
  internal_error: "gateway",
  // The provider's key could not be read, or none is configured: our side, not the provider's.
  provider_key_unavailable: "gateway",
  provider_not_configured: "gateway",
  count_tokens_unsupported: "gateway",
  // A restarted answer that did not begin with the text sent: at temperature > 0 that is expected
  // of a healthy provider, so it must not push the backup toward a bench.
  continuation_diverged: "gateway",
  upstream_redirect: "config",
  bedrock_access_denied: "config",
  bedrock_model_not_found: "config",
  // Judged from the action, kind and phase.
  upstream_error: undefined,
  upstream_stream_cut: undefined,
  upstream_empty_stream: undefined,
  upstream_invalid_response: undefined,
  upstream_connection_error: undefined,
  response_too_deep: undefined,
  context_length_exceeded: undefined,
  bedrock_feature_denied: undefined,
  bedrock_resource_not_found: undefined,
  connect_timeout: undefined,
  headers_timeout: undefined,
  first_token_timeout: undefined,
  idle_timeout: undefined,
  response_timeout: undefined,
  deadline_timeout: undefined,
  // Never an attempt's: the caller's request, its key, the request's outcome. Judged like the rest.
  invalid_json: undefined,
  nesting_too_deep: undefined,
  missing_required_parameter: undefined,
  invalid_type: undefined,
  invalid_value: undefined,
  unsupported_parameter: undefined,
  unsupported_value: undefined,
  object_above_max_properties: undefined,
  string_above_max_length: undefined,
  invalid_path: undefined,
  missing_host_header: undefined,
  invalid_http_request: undefined,
  expectation_failed: undefined,
  request_timeout: undefined,
  method_not_allowed: undefined,
  unknown_url: undefined,
  model_not_found: undefined,
  response_not_found: undefined,
  model_not_supported: undefined,
  store_unavailable: undefined,
  request_too_large: undefined,
  request_headers_too_large: undefined,
  invalid_api_key: undefined,
  auth_unavailable: undefined,
  rate_limit_exceeded: undefined,
  budget_exceeded: undefined,
  limits_unavailable: undefined,
  no_available_provider: undefined,
  providers_cooling_down: undefined,
  deadline_exceeded: undefined,
  upstream_timeout: undefined,
  upstream_unavailable: undefined,
  stream_interrupted: undefined,
  client_closed: undefined,
};

/**
 * Kinds of a failed-over error that concern the gateway's own key, credit or route at a provider
 * (its 401, 402, 403, 404): only a fix to the configuration ends them.
 */
const CONFIG_KINDS: Record<ErrorKind, boolean> = {
  authentication: true,
  quota: true,
  permission: true,
  not_found: true,
  invalid_request: false,
  request_too_large: false,
  rate_limit: false,
  overloaded: false,
  unavailable: false,
  timeout: false,
  upstream: false,
  internal: false,
  cancelled: false,
};

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
  const fixed = FAULT_OF_CODE[error.code];
  if (fixed === "gateway") return "gateway";
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
  if (error.action === "failover" && (fixed === "config" || CONFIG_KINDS[error.kind])) return "config";
  return "provider";
}
