import {
  type ErrorCode,
  type ErrorKind,
  type ErrorReport,
  kindOf,
  type PassThrough,
  type TimeoutCode,
  type TimeoutPhase,
} from "./core/error.ts";
import { redactSecrets } from "./secrets/redact.ts";

export type { ErrorCode, ErrorKind, ErrorReport, PassThrough, TimeoutCode, TimeoutPhase };

/** Re-exported: the upstream error mapping (`lib/retry/classify.ts`) redacts where it builds messages. */
export { redactSecrets };

/**
 * One error hierarchy for the whole gateway (issue 17). Every {@link GatewayError} carries a code
 * from the closed set {@link ErrorCode} and a neutral {@link ErrorKind} (`lib/core/error.ts`); each
 * code is built by one named constructor below, and nowhere else. Upstream statuses become errors in one place
 * (`lib/retry/classify.ts`). The edge serialises an error in the caller's dialect
 * (`lib/dialects/<dialect>/errors.ts`) from its {@link ErrorReport}. A stack trace or a key never
 * leaves the process.
 */

/**
 * Longest piece of caller text any error message quotes (issue 16): a 128 KB invalid `role` quoted
 * whole made redaction the slowest step of the process. Every message that repeats what a caller
 * sent goes through {@link quoteCallerText}.
 */
export const MAX_ECHO_CHARS = 200;

/**
 * Caller text (or any caller value, shown as JSON) cut to {@link MAX_ECHO_CHARS} characters, with an
 * ellipsis when cut. Only the head of a huge value is ever stringified.
 */
export function quoteCallerText(value: unknown, max = MAX_ECHO_CHARS): string {
  let text: string;
  if (typeof value === "string") text = value;
  else if (value === null || typeof value !== "object") text = String(value);
  else text = Array.isArray(value) ? `[array of ${value.length}]` : "[object]";
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** What the failover engine should do after an outcome. */
export type ErrorAction = "retry" | "failover" | "return";

export interface GatewayErrorOptions {
  status: number;
  code: ErrorCode;
  param?: string | null;
  action?: ErrorAction;
  retryAfterMs?: number;
  providerId?: string;
  headers?: Record<string, string>;
  /** An upstream's own body to hand back to the caller as is (an upstream 4xx we pass through). */
  passThrough?: PassThrough;
  /** The upstream's own code for what went wrong, when it gave one: for the operator's log. */
  upstreamCode?: string;
  cause?: unknown;
}

export class GatewayError extends Error implements ErrorReport {
  readonly status: number;
  readonly kind: ErrorKind;
  readonly code: ErrorCode;
  readonly param: string | null;
  readonly action: ErrorAction;
  readonly retryAfterMs: number | undefined;
  readonly providerId: string | undefined;
  readonly headers: Record<string, string>;
  readonly passThrough: PassThrough | undefined;
  readonly upstreamCode: string | undefined;

  constructor(message: string, options: GatewayErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    this.status = options.status;
    this.code = options.code;
    this.kind = kindOf(options.code, options.status);
    this.param = options.param ?? null;
    this.action = options.action ?? "return";
    this.retryAfterMs = options.retryAfterMs;
    this.providerId = options.providerId;
    this.headers = options.headers ?? {};
    this.passThrough = options.passThrough;
    this.upstreamCode = options.upstreamCode;
  }
}

/** The caller's request is wrong (400 unless said otherwise). */
export class InvalidRequestError extends GatewayError {
  constructor(message: string, param: string | null, code: ErrorCode, status = 400) {
    super(message, { status, param, code });
    this.name = "InvalidRequestError";
  }
}

/** A failure talking to an upstream provider: status error, reset, timeout, cut stream. */
export class UpstreamError extends GatewayError {
  constructor(message: string, options: GatewayErrorOptions & { providerId: string }) {
    super(message, options);
    this.name = "UpstreamError";
  }
}

/** A per-phase timeout: connect, headers, first token, idle, response, deadline. */
export class UpstreamTimeoutError extends UpstreamError {
  readonly phase: TimeoutPhase;
  constructor(providerId: string, phase: TimeoutPhase, afterMs: number) {
    const code: TimeoutCode = `${phase}_timeout`;
    super(`${providerId}: timed out waiting for ${phase.replace("_", " ")} after ${afterMs} ms`, {
      status: 504,
      code,
      action: "failover",
      providerId,
    });
    this.name = "UpstreamTimeoutError";
    this.phase = phase;
  }
}

/**
 * A bug of the gateway's (a thrown TypeError, a stack overflow): never a provider's failure, never
 * failed over. The edge answers 500 with the request id (`message`).
 */
export class InternalError extends GatewayError {
  constructor(cause: unknown, message = "Internal server error") {
    super(message, { status: 500, code: "internal_error", cause });
    this.name = "InternalError";
  }
}

/** The caller went away; nothing is sent and no further attempts are made. */
export class ClientAbortError extends Error {
  constructor() {
    super("client closed the request");
    this.name = "ClientAbortError";
  }
}

// ---- the caller's request -------------------------------------------------------------------------

/** A body that is not a JSON object; `message` says how. */
export function invalidJson(message: string): InvalidRequestError {
  return new InvalidRequestError(message, null, "invalid_json");
}

/** A body (or, with `param`, one field of it) nested deeper than `limit` levels. */
export function nestingTooDeep(limit: number, param?: string): InvalidRequestError {
  const what = `nests arrays and objects deeper than the limit of ${limit} levels`;
  return param === undefined
    ? new InvalidRequestError(`The request body ${what}.`, null, "nesting_too_deep")
    : new InvalidRequestError(`Invalid '${param}': ${what}.`, param, "nesting_too_deep");
}

/** A required field absent; `message` in the caller dialect's words (OpenAI's by default). */
export function missingParameter(
  param: string,
  message = `Missing required parameter: '${param}'.`,
): InvalidRequestError {
  return new InvalidRequestError(message, param, "missing_required_parameter");
}

/** A field of the wrong type; `message` in the caller dialect's words (OpenAI's by default). */
export function invalidType(
  param: string,
  expected: string,
  message = `Invalid type for '${param}': expected ${expected}.`,
): InvalidRequestError {
  return new InvalidRequestError(message, param, "invalid_type");
}

/** A field of the right type with a value the gateway refuses; `message` names the field. */
export function invalidValue(param: string, message: string): InvalidRequestError {
  return new InvalidRequestError(message, param, "invalid_value");
}

/** A field the target cannot carry; `message` names the field. */
export function unsupportedParameter(param: string, message: string): InvalidRequestError {
  return new InvalidRequestError(message, param, "unsupported_parameter");
}

/** A value of a field the gateway knows but its targets cannot serve; `message` names the field. */
export function unsupportedValue(param: string, message: string): InvalidRequestError {
  return new InvalidRequestError(message, param, "unsupported_value");
}

/** An object field with more properties than allowed (OpenAI's code for it). */
export function tooManyProperties(param: string, message: string): InvalidRequestError {
  return new InvalidRequestError(message, param, "object_above_max_properties");
}

/** A string field longer than allowed (OpenAI's code for it). */
export function stringTooLong(param: string, message: string): InvalidRequestError {
  return new InvalidRequestError(message, param, "string_above_max_length");
}

/** A path segment that is not valid percent-encoded UTF-8. */
export function invalidPath(segment: string): InvalidRequestError {
  return new InvalidRequestError(
    `The path segment '${quoteCallerText(segment)}' is not valid percent-encoded UTF-8.`,
    null,
    "invalid_path",
  );
}

export function unknownPath(method: string, path: string): InvalidRequestError {
  return new InvalidRequestError(
    `Unknown path: ${quoteCallerText(method)} ${quoteCallerText(path)}`,
    null,
    "unknown_url",
    404,
  );
}

/**
 * A method a path does not take (with the methods it does, sent as `Allow`), or one the gateway
 * takes nowhere (`reason`: CONNECT, as it is not a proxy).
 */
export function methodNotAllowed(
  method: string,
  where: { path: string; allow: readonly string[] } | { reason: string },
): GatewayError {
  if ("reason" in where) {
    return new GatewayError(`Method ${quoteCallerText(method)} is not allowed: ${where.reason}.`, {
      status: 405,
      code: "method_not_allowed",
    });
  }
  const allow = where.allow.join(", ");
  return new GatewayError(
    `Method ${quoteCallerText(method)} is not allowed on ${where.path}; use ${allow}.`,
    { status: 405, code: "method_not_allowed", headers: { allow } },
  );
}

export function missingHostHeader(): InvalidRequestError {
  return new InvalidRequestError("The Host header is missing.", null, "missing_host_header");
}

/** What Node's HTTP parser could not read; `detail` is its error code. */
export function invalidHttpRequest(detail: string): InvalidRequestError {
  return new InvalidRequestError(
    `The request is not valid HTTP/1.1 (${detail}).`,
    null,
    "invalid_http_request",
  );
}

export function expectationFailed(): InvalidRequestError {
  return new InvalidRequestError(
    "The Expect header is not supported, except for '100-continue'.",
    null,
    "expectation_failed",
    417,
  );
}

/** A request slower to arrive than the server's timers allow. */
export function requestTimeout(limits: {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}): InvalidRequestError {
  return new InvalidRequestError(
    `The request did not arrive in time: headers are allowed ${limits.headersTimeoutMs} ms, ` +
      `the whole request ${limits.requestTimeoutMs} ms.`,
    null,
    "request_timeout",
    408,
  );
}

export function requestHeadersTooLarge(limit: number): InvalidRequestError {
  return new InvalidRequestError(
    `The request headers are larger than the limit of ${limit} bytes.`,
    null,
    "request_headers_too_large",
    431,
  );
}

/** A body larger than `maxBodyBytes`: a 413. */
export class PayloadTooLargeError extends InvalidRequestError {
  constructor(limit: number) {
    super(`The request body is larger than the limit of ${limit} bytes.`, null, "request_too_large", 413);
    this.name = "PayloadTooLargeError";
  }
}

export function requestTooLarge(limit: number): PayloadTooLargeError {
  return new PayloadTooLargeError(limit);
}

/**
 * The 404 for a model name that is not a route, and for one the caller's key may not use: the two
 * answer alike, word for word, so a key cannot learn which route names exist (issue 16).
 */
export function modelNotFound(model: string): InvalidRequestError {
  return new InvalidRequestError(
    `The model '${quoteCallerText(model)}' does not exist or you do not have access to it.`,
    "model",
    "model_not_found",
    404,
  );
}

/** A route whose targets cannot serve what was asked of it (`what`: "embeddings"). */
export function modelNotSupported(model: string, what: string): InvalidRequestError {
  return new InvalidRequestError(
    `The model '${quoteCallerText(model)}' does not serve ${what}.`,
    "model",
    "model_not_supported",
  );
}

/** Stored responses cannot be read or written (the table is down): a 503 to retry. */
export function storeUnavailable(cause: unknown): GatewayError {
  return new GatewayError("Stored responses are unavailable; retry later.", {
    status: 503,
    code: "store_unavailable",
    cause,
  });
}

/** A target with no token count of its own; the caller's endpoint estimates instead. */
export function countTokensUnsupported(providerId: string, detail: string): UpstreamError {
  return new UpstreamError(`${providerId}: ${detail}`, {
    status: 501,
    code: "count_tokens_unsupported",
    action: "failover",
    providerId,
  });
}

/** The 404 for a stored response that is unknown, expired, deleted or another key's, in OpenAI's words. */
export function responseNotFound(id: string): InvalidRequestError {
  return new InvalidRequestError(
    `Response with id '${quoteCallerText(id)}' not found.`,
    null,
    "response_not_found",
    404,
  );
}

// ---- the caller's key and its limits (lib/callers) ----------------------------------------------

/** A missing, malformed or unknown caller key: a 401. */
export function invalidApiKey(message: string): GatewayError {
  return new GatewayError(message, { status: 401, code: "invalid_api_key" });
}

/** The caller table cannot be read, so no key can be checked: a 503 to retry. */
export function authUnavailable(cause: unknown): GatewayError {
  return new GatewayError("Client authentication is unavailable; retry later.", {
    status: 503,
    code: "auth_unavailable",
    cause,
  });
}

/** The caller's limits cannot be checked (the table is down): a 503 to retry in 5 s. */
export function limitsUnavailable(cause: unknown): GatewayError {
  return new GatewayError("Rate limits cannot be checked right now; retry later.", {
    status: 503,
    code: "limits_unavailable",
    headers: { "retry-after": "5" },
    cause,
  });
}

/** A caller key's budget (`param` names the limit) is spent until `headers`' Retry-After. */
export function budgetExceeded(
  message: string,
  options: { param: string; headers: Record<string, string> },
): GatewayError {
  return new GatewayError(message, { status: 429, code: "budget_exceeded", ...options });
}

// ---- the request's outcome ------------------------------------------------------------------------

/** A 429 for a rate limit: the caller key's (`param` names it), or every provider's. */
export function rateLimitExceeded(
  message: string,
  options: { param?: string; headers?: Record<string, string> } = {},
): GatewayError {
  return new GatewayError(message, {
    status: 429,
    code: "rate_limit_exceeded",
    ...(options.param === undefined ? {} : { param: options.param }),
    ...(options.headers === undefined ? {} : { headers: options.headers }),
  });
}

export function noAvailableProvider(model: string): GatewayError {
  return new GatewayError(`No provider is configured and enabled for model '${model}'.`, {
    status: 503,
    code: "no_available_provider",
  });
}

export function providersCoolingDown(model: string, headers?: Record<string, string>): GatewayError {
  return new GatewayError(
    `Every provider for model '${model}' is cooling down after failures; retry later.`,
    {
      status: 503,
      code: "providers_cooling_down",
      ...(headers === undefined ? {} : { headers }),
    },
  );
}

/** How long a caller refused for want of a free upstream connection is told to wait. */
export const OVERLOADED_RETRY_AFTER_MS = 1_000;

/**
 * No free connection: to one provider (`providerId`, failed over: another provider is another
 * origin with its own connections), or to any for the request's model (its last word).
 */
export function gatewayOverloaded(
  at:
    | { providerId: string; maxSockets: number; cause: unknown }
    | { model: string; headers?: Record<string, string> },
): GatewayError {
  const retryAfter = { "retry-after": String(Math.ceil(OVERLOADED_RETRY_AFTER_MS / 1000)) };
  if ("model" in at) {
    return new GatewayError(
      `The gateway has no free upstream connection for model '${at.model}'; retry shortly.`,
      {
        status: 503,
        code: "gateway_overloaded",
        headers: at.headers ?? retryAfter,
      },
    );
  }
  return new UpstreamError(
    `${at.providerId}: the gateway has no free connection to this provider (all ${at.maxSockets} in use); retry shortly`,
    {
      status: 503,
      code: "gateway_overloaded",
      action: "failover",
      retryAfterMs: OVERLOADED_RETRY_AFTER_MS,
      headers: retryAfter,
      providerId: at.providerId,
      cause: at.cause,
    },
  );
}

/** The request's deadline passed; `summary` says what the attempts met. */
export function deadlineExceeded(summary: string): GatewayError {
  return new GatewayError(`The request did not complete within its deadline; ${summary}`, {
    status: 504,
    code: "deadline_exceeded",
  });
}

/** Every attempt timed out; `summary` says how. */
export function upstreamTimeout(
  model: string,
  summary: string,
  headers?: Record<string, string>,
): GatewayError {
  return new GatewayError(`No provider could answer for model '${model}': ${summary}`, {
    status: 504,
    code: "upstream_timeout",
    ...(headers === undefined ? {} : { headers }),
  });
}

/** Every attempt failed; `summary` says how. */
export function upstreamUnavailable(
  model: string,
  summary: string,
  headers?: Record<string, string>,
): GatewayError {
  return new GatewayError(`No provider could answer for model '${model}': ${summary}`, {
    status: 502,
    code: "upstream_unavailable",
    ...(headers === undefined ? {} : { headers }),
  });
}

/**
 * A stream that ended before its finish, met where no provider is known (a dialect's encoder,
 * closing a caller's stream): what the caller is told, in the encoder's error frame.
 */
export function streamEndedIncomplete(): GatewayError {
  return new GatewayError("The upstream's stream ended before the answer was complete.", {
    status: 502,
    code: "upstream_stream_cut",
  });
}

/** The caller went away (what is logged for it; nobody reads the answer). */
export function clientClosed(): GatewayError {
  return new GatewayError("client closed the request", { status: 499, code: "client_closed" });
}

/** The error a caller gets for a cut stream: it names the original failure, not a continuation's. */
export function streamInterrupted(sentChars: number, original: GatewayError): GatewayError {
  return new GatewayError(
    `The answer was cut off after ${sentChars} characters and could not be completed: ${original.message}`,
    { status: 502, code: "stream_interrupted", cause: original },
  );
}

// ---- one attempt on an upstream -------------------------------------------------------------------

/** A stream that ended (or broke) before its finish; `why` says how. Failed over. */
export function streamCut(providerId: string, why: string): UpstreamError {
  return new UpstreamError(`${providerId}: ${why}`, {
    status: 502,
    code: "upstream_stream_cut",
    action: "failover",
    providerId,
  });
}

/** A 200 stream that ended before any content: asked again. */
export function emptyStream(providerId: string): UpstreamError {
  return new UpstreamError(`${providerId}: stream ended before any content`, {
    status: 502,
    code: "upstream_empty_stream",
    action: "retry",
    providerId,
  });
}

/**
 * A 200 that is not a readable answer (issue 16): the provider's fault, failed over like a 5xx.
 * `origin` names the upstream in the message when more than its id helps (Bedrock's region).
 */
export function invalidResponse(
  providerId: string,
  detail: string,
  options: { origin?: string; cause?: unknown } = {},
): UpstreamError {
  return new UpstreamError(`${options.origin ?? providerId} answered HTTP 200 with ${detail}`, {
    status: 502,
    code: "upstream_invalid_response",
    action: "failover",
    providerId,
    ...(options.cause === undefined ? {} : { cause: options.cause }),
  });
}

/**
 * An answer that is not what was asked (an embeddings answer without one vector per input, say):
 * the provider's fault, failed over. `message` says which provider and how.
 */
export function invalidAnswer(providerId: string, message: string): UpstreamError {
  return new UpstreamError(message, {
    status: 502,
    code: "upstream_invalid_response",
    action: "failover",
    providerId,
  });
}

/**
 * An answer nested too deeply to relay: the caller can ask a model for one, and every target would
 * write the same, so it goes back to the caller and benches nothing.
 */
export function responseTooDeep(providerId: string, limit: number, cause?: unknown): UpstreamError {
  return new UpstreamError(
    `${providerId}: the answer nests JSON deeper than the gateway relays (maxNestingDepth ${limit})`,
    {
      status: 502,
      code: "response_too_deep",
      action: "return",
      providerId,
      ...(cause === undefined ? {} : { cause }),
    },
  );
}

/** An answer longer than `maxResponseBytes`: another provider would write one as long, so handed back. */
export function responseTooLarge(providerId: string, limit: number, cause: unknown): UpstreamError {
  return new UpstreamError(
    `${providerId}: the answer exceeded the gateway's limit of ${limit} bytes (maxResponseBytes)`,
    { status: 502, code: "response_too_large", action: "return", providerId, cause },
  );
}

/** A restarted answer that did not begin with the text already sent. */
export function continuationDiverged(providerId: string): UpstreamError {
  return new UpstreamError(`${providerId}: restarted answer does not begin with the text already sent`, {
    status: 502,
    code: "continuation_diverged",
    action: "failover",
    providerId,
  });
}

/** The target has no credentials to call with; `what` says which. */
export function providerNotConfigured(
  providerId: string,
  what = "no API key configured",
  cause?: unknown,
): UpstreamError {
  return new UpstreamError(`${providerId}: ${what}`, {
    status: 502,
    code: "provider_not_configured",
    action: "failover",
    providerId,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** The target's key could not be read (Secrets Manager throttled, timed out, denied). */
export function providerKeyUnavailable(providerId: string, cause: unknown): UpstreamError {
  return new UpstreamError(
    `${providerId}: its API key could not be read (${(cause as Error | undefined)?.name ?? "error"})`,
    { status: 502, code: "provider_key_unavailable", action: "failover", providerId, cause },
  );
}

/**
 * A redirect: a chat API does not redirect, so the configured base URL is likely wrong (and it is
 * never followed, as it would carry the gateway's key to another host).
 */
export function upstreamRedirect(providerId: string, status: number): UpstreamError {
  return new UpstreamError(
    `${providerId} answered HTTP ${status} (a redirect, not followed): its configured base URL is likely wrong`,
    { status: 502, code: "upstream_redirect", action: "failover", providerId },
  );
}

/**
 * A connection that failed; `retry` when no response had begun (the request was not processed, so
 * sending it again is safe).
 */
export function connectionFailed(
  providerId: string,
  message: string,
  options: { retry: boolean; cause: unknown },
): UpstreamError {
  return new UpstreamError(message, {
    status: 502,
    code: "upstream_connection_error",
    action: options.retry ? "retry" : "failover",
    providerId,
    cause: options.cause,
  });
}

/**
 * An error the upstream reported itself (a status, an error event, a service exception), its kind
 * read from `status`. `contextLength`: it says the prompt does not fit the model's window, the
 * code the engine's context fallback reads.
 */
export function upstreamReported(
  providerId: string,
  message: string,
  options: {
    status: number;
    action: ErrorAction;
    contextLength?: boolean;
    param?: string;
    passThrough?: PassThrough;
    upstreamCode?: string;
    retryAfterMs?: number;
    cause?: unknown;
  },
): UpstreamError {
  const { contextLength, ...rest } = options;
  return new UpstreamError(message, {
    ...rest,
    code: contextLength === true ? "context_length_exceeded" : "upstream_error",
    providerId,
  });
}

// ---- Amazon Bedrock's own (lib/providers/bedrock-errors.ts) --------------------------------------

/**
 * Bedrock refused a feature the caller chose in `bedrock.<field>`: 403 when the gateway's role may
 * not use it, 400 when what it names does not exist. Handed back to the caller, never failed over.
 */
export function bedrockFeatureRefused(
  providerId: string,
  message: string,
  options: { field: string; status: 400 | 403; cause: unknown },
): UpstreamError {
  return new UpstreamError(message, {
    status: options.status,
    code: options.status === 403 ? "bedrock_feature_denied" : "bedrock_resource_not_found",
    param: `bedrock.${options.field}`,
    action: "return",
    providerId,
    cause: options.cause,
  });
}

/**
 * A fault of the configuration: the gateway's role may not call the target's model
 * (`access_denied`), or the model does not exist as the target names it (`model_not_found`).
 * Failed over, and counted against that target only (`lib/retry/blame.ts`).
 */
export function bedrockConfigFault(
  providerId: string,
  message: string,
  options: { fault: "access_denied" | "model_not_found"; status: number; cause: unknown },
): UpstreamError {
  return new UpstreamError(message, {
    status: options.status,
    code: options.fault === "access_denied" ? "bedrock_access_denied" : "bedrock_model_not_found",
    action: "failover",
    providerId,
    cause: options.cause,
  });
}

// ---- at the edge ----------------------------------------------------------------------------------

const INTERNAL_REPORT: ErrorReport = {
  status: 500,
  kind: "internal",
  code: null,
  message: "Internal server error",
  param: null,
  passThrough: undefined,
};

/** Any thrown value as a dialect's serializer reads it: a value that is not a gateway error shows nothing. */
export function reportOf(error: unknown): ErrorReport {
  return error instanceof GatewayError ? error : INTERNAL_REPORT;
}

export function statusOf(error: unknown): number {
  return reportOf(error).status;
}
