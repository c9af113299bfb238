/**
 * An error in the gateway's own terms (issue 17), one floor below every API dialect and provider:
 * a code the gateway chose from a closed set, and a neutral kind. The engine and the blame decide
 * from these; each inbound dialect's serializer (`lib/dialects/<dialect>/errors.ts`) turns an
 * {@link ErrorReport} into its wire shape at the edge. This file imports nothing, so the
 * serializers can read it without depending on the error classes in `lib/errors.ts`.
 */

/** The phases an attempt can time out in: connect, headers, first token, idle, response, deadline. */
export type TimeoutPhase = "connect" | "headers" | "first_token" | "idle" | "response" | "deadline";

/**
 * What kind of failure, whatever the dialect. A dialect's serializer maps it (with the code, where
 * the dialect names a case apart) to its own error type.
 */
export type ErrorKind =
  /** The caller's request is wrong. */
  | "invalid_request"
  /** The caller's key is missing or unknown. */
  | "authentication"
  /** The key may not do what was asked. */
  | "permission"
  | "not_found"
  /** The request (or its prompt) is larger than allowed. */
  | "request_too_large"
  | "rate_limit"
  /** A budget or the account's credit is spent. */
  | "quota"
  /** The gateway has no capacity left (connections to a provider). */
  | "overloaded"
  /** A dependency is down or every provider is benched: retry later. */
  | "unavailable"
  | "timeout"
  /** An upstream failed or answered what cannot be relayed. */
  | "upstream"
  /** A bug of the gateway's. */
  | "internal"
  /** The caller left. */
  | "cancelled";

/**
 * Every code the gateway emits, each with its kind; `"status"` where the kind is the upstream's
 * status read as a kind ({@link kindOfStatus}). A misspelt code does not compile, and a new code
 * cannot be added without saying its kind (and, in `lib/retry/blame.ts`, whose fault it is).
 */
export const KIND_OF_CODE = {
  // The caller's request.
  invalid_json: "invalid_request",
  nesting_too_deep: "invalid_request",
  missing_required_parameter: "invalid_request",
  invalid_type: "invalid_request",
  invalid_value: "invalid_request",
  unsupported_parameter: "invalid_request",
  unsupported_value: "invalid_request",
  object_above_max_properties: "invalid_request",
  string_above_max_length: "invalid_request",
  invalid_path: "invalid_request",
  missing_host_header: "invalid_request",
  invalid_http_request: "invalid_request",
  expectation_failed: "invalid_request",
  // A slow upload is the caller's request going wrong, not a timeout of the gateway's.
  request_timeout: "invalid_request",
  method_not_allowed: "invalid_request",
  unknown_url: "not_found",
  model_not_found: "not_found",
  response_not_found: "not_found",
  // A route whose targets cannot serve the operation asked (a chat-only route for embeddings).
  model_not_supported: "invalid_request",
  request_too_large: "request_too_large",
  request_headers_too_large: "request_too_large",
  context_length_exceeded: "request_too_large",
  // The caller's key and its limits (lib/callers).
  invalid_api_key: "authentication",
  auth_unavailable: "unavailable",
  rate_limit_exceeded: "rate_limit",
  budget_exceeded: "quota",
  limits_unavailable: "unavailable",
  // Stored responses (the gateway's table) cannot be read or written right now.
  store_unavailable: "unavailable",
  // The request's outcome over every target.
  no_available_provider: "unavailable",
  providers_cooling_down: "unavailable",
  gateway_overloaded: "overloaded",
  deadline_exceeded: "timeout",
  upstream_timeout: "timeout",
  upstream_unavailable: "upstream",
  stream_interrupted: "upstream",
  internal_error: "internal",
  client_closed: "cancelled",
  // One attempt's timeouts (`UpstreamTimeoutError`).
  connect_timeout: "timeout",
  headers_timeout: "timeout",
  first_token_timeout: "timeout",
  idle_timeout: "timeout",
  response_timeout: "timeout",
  deadline_timeout: "timeout",
  // One attempt on an upstream.
  upstream_stream_cut: "upstream",
  upstream_empty_stream: "upstream",
  upstream_invalid_response: "upstream",
  upstream_redirect: "upstream",
  upstream_connection_error: "upstream",
  response_too_large: "upstream",
  response_too_deep: "upstream",
  continuation_diverged: "upstream",
  provider_not_configured: "upstream",
  // The target has no token count of its own (the endpoint falls back to an estimate).
  count_tokens_unsupported: "upstream",
  provider_key_unavailable: "upstream",
  /** The upstream reported an error of its own (a status, an error event): its kind is its status's. */
  upstream_error: "status",
  // Amazon Bedrock (lib/providers/bedrock-errors.ts).
  bedrock_feature_denied: "permission",
  bedrock_resource_not_found: "not_found",
  bedrock_access_denied: "permission",
  bedrock_model_not_found: "not_found",
} as const satisfies Record<string, ErrorKind | "status">;

/** A code the gateway emits. */
export type ErrorCode = keyof typeof KIND_OF_CODE;

/** The code of a timeout in `phase`. */
export type TimeoutCode = `${TimeoutPhase}_timeout`;

/** An upstream's status read as a kind (an upstream error that is not one of the gateway's own). */
export function kindOfStatus(status: number): ErrorKind {
  if (status === 400 || status === 422) return "invalid_request";
  if (status === 401) return "authentication";
  if (status === 402) return "quota";
  if (status === 403) return "permission";
  if (status === 404) return "not_found";
  if (status === 408) return "timeout";
  if (status === 413) return "request_too_large";
  if (status === 429) return "rate_limit";
  if (status < 500) return "invalid_request";
  if (status === 503) return "unavailable";
  if (status === 529) return "overloaded";
  return "upstream";
}

/** The kind of an error of `code` with `status`. */
export function kindOf(code: ErrorCode, status: number): ErrorKind {
  const kind = KIND_OF_CODE[code];
  return kind === "status" ? kindOfStatus(status) : kind;
}

/**
 * An upstream's own error body, kept in the dialect it came in, to hand back as is to a caller who
 * speaks that dialect (a 4xx that refused the caller's request keeps the provider's reason). Only
 * that dialect's serializer reads `body`: it built it (`openAIPassThrough`).
 */
export interface PassThrough {
  readonly dialect: string;
  readonly body: unknown;
}

/** What a dialect's serializer is given: any error, as the gateway describes it to a caller. */
export interface ErrorReport {
  readonly status: number;
  readonly kind: ErrorKind;
  /** Null only for a value that is not a gateway error (a bug): nothing about it is shown. */
  readonly code: ErrorCode | null;
  readonly message: string;
  /** The request field at fault, in the caller's dialect. */
  readonly param: string | null;
  readonly passThrough: PassThrough | undefined;
}
