import {
  type OpenAIErrorBody,
  openAIErrorObject,
  openAIPassThrough,
  readOpenAIErrorBody,
} from "../dialects/openai-chat/errors.ts";
import {
  ClientAbortError,
  connectionFailed,
  type ErrorAction,
  GatewayError,
  gatewayOverloaded,
  InternalError,
  redactSecrets,
  responseTooLarge,
  type UpstreamError,
  UpstreamTimeoutError,
  upstreamRedirect,
  upstreamReported,
} from "../errors.ts";
import {
  HttpNetworkError,
  HttpPoolSaturatedError,
  HttpResponseTooLargeError,
  HttpTimeoutError,
} from "../http/client.ts";
import { parseRetryAfter } from "./backoff.ts";

/**
 * The one place where an upstream outcome becomes a typed error with a decision:
 * - `retry` on the same target: resets/refusals before a response, 408, 409, 429, 500, 502, 503, 504,
 *   and 529 (Anthropic's "overloaded_error": https://docs.anthropic.com/en/api/errors, a transient
 *   fault of the API as a whole, retried and then failed over like a 503);
 * - `failover` to the next target: timeouts (a silent provider is not asked again), other 5xx,
 *   401/402/403/404, which concern the gateway's key, credit or route, not the caller's request, and 3xx: a chat
 *   API does not redirect, so the configured base URL is wrong (and a redirect is never followed, as
 *   it would carry the gateway's key to another host);
 * - `return` to the caller as is: 400 and the remaining 4xx, so a context-length error is never resent
 *   unchanged and a content-policy rejection keeps the provider's reason; also a 403 that refuses
 *   the caller's content rather than the gateway's key ({@link refusesCallerContent}).
 */
const RETRY_STATUSES = new Set([408, 409, 429, 500, 502, 503, 504, 529]);
// 402: the gateway's account is out of credit (DeepSeek's "Insufficient Balance"), not the caller's fault.
const FAILOVER_4XX = new Set([401, 402, 403, 404]);

export function actionForStatus(status: number): ErrorAction {
  if (RETRY_STATUSES.has(status)) return "retry";
  if (status >= 500 || FAILOVER_4XX.has(status) || isRedirect(status)) return "failover";
  return "return";
}

function isRedirect(status: number): boolean {
  return status >= 300 && status < 400;
}

/**
 * A 403 about the caller's input, not the gateway's key: OpenRouter answers 403 when "your chosen
 * model requires moderation and your input was flagged" (https://openrouter.ai/docs/api-reference/errors),
 * with `metadata.flagged_input` and `metadata.reasons`. Failed over and counted against the target,
 * it would let any caller bench a target for the whole fleet by sending flagged text (issue 16).
 * Upstream text may echo the caller's, but reading a key problem as the caller's only costs that
 * caller its failover, never anyone else's service.
 */
function refusesCallerContent(
  status: number,
  bodyText: string,
  parsed: OpenAIErrorBody | undefined,
): boolean {
  if (status !== 403 || parsed === undefined) return false;
  if (/^content_(?:policy_violation|filter)$|^moderation/i.test(parsed.error.code ?? "")) return true;
  if (/\bflagged\b|\bmoderation\b/i.test(parsed.error.message)) return true;
  // Only the head of the body is searched: its metadata comes right after the message.
  return /"(?:flagged_input|reasons)"\s*:/.test(bodyText.slice(0, 4096));
}

/** What an upstream says when the prompt does not fit the model's context window (OpenAI's code). */
const CONTEXT_LENGTH_CODE = "context_length_exceeded";
/** The same said in words: DeepSeek and many OpenAI-compatible servers send no code. */
const CONTEXT_LENGTH_WORDS =
  /maximum context length|context length|context window|too many tokens|prompt is too long/i;

/**
 * Whether an upstream refusal (a 400 or 413) says the prompt does not fit the model's context
 * window: the error is then `context_length_exceeded`, the code the engine's context fallback reads.
 */
export function saysContextLength(status: number, code: string | null | undefined, message: string): boolean {
  if (status !== 400 && status !== 413) return false;
  return code === CONTEXT_LENGTH_CODE || CONTEXT_LENGTH_WORDS.test(message);
}

/** An upstream answered with a status other than 200. */
export function errorFromStatus(
  providerId: string,
  status: number,
  headers: Record<string, string | string[] | undefined>,
  bodyText: string,
  now: number,
): UpstreamError {
  // Not the caller's request and not a status to hand on (a 302 without its Location means nothing
  // to the caller): a 502 that names the likely cause, for the operator.
  if (isRedirect(status)) return upstreamRedirect(providerId, status);
  const parsed = readOpenAIErrorBody(bodyText);
  const action = refusesCallerContent(status, bodyText, parsed) ? "return" : actionForStatus(status);
  const upstreamMessage = parsed ? redactSecrets(parsed.error.message) : `HTTP ${status}`;
  const retryAfterMs =
    status === 429 || status === 503 || status === 529 ? parseRetryAfter(headers, now) : undefined;
  const options = {
    status,
    action,
    contextLength: saysContextLength(status, parsed?.error.code, upstreamMessage),
    ...(parsed?.error.code ? { upstreamCode: parsed.error.code } : {}),
    ...(parsed?.error.param ? { param: parsed.error.param } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  };
  if (action === "return") {
    // The caller's request was refused: hand back the provider's own error (its reason included).
    return upstreamReported(providerId, upstreamMessage, {
      ...options,
      passThrough: openAIPassThrough(
        parsed ?? {
          error: {
            message: `upstream returned HTTP ${status}`,
            type: "invalid_request_error",
            param: null,
            code: null,
          },
        },
      ),
    });
  }
  const what = status === 401 || status === 403 ? "rejected the gateway's credentials" : "answered";
  return upstreamReported(
    providerId,
    `${providerId} ${what} with HTTP ${status}: ${upstreamMessage}`,
    options,
  );
}

/** An error event inside a 200 stream (`data: {"error": {...}}`). */
export function errorFromStreamEvent(providerId: string, error: unknown): UpstreamError {
  const parsed = openAIErrorObject(error) ?? {
    error: { message: "upstream error event", type: "api_error", param: null, code: null },
  };
  const { type, code, message } = parsed.error;
  const isRequestError = type === "invalid_request_error" && !/rate|overload/i.test(`${code} ${message}`);
  const rateLimited = /rate.?limit/i.test(`${type} ${code}`);
  const status = isRequestError ? 400 : rateLimited ? 429 : 502;
  return upstreamReported(providerId, `${providerId} sent an error event: ${redactSecrets(message)}`, {
    status,
    action: isRequestError ? "return" : "retry",
    contextLength: isRequestError && saysContextLength(status, code, message),
    ...(code === null ? {} : { upstreamCode: code }),
    ...(isRequestError ? { passThrough: openAIPassThrough(parsed) } : {}),
  });
}

/** Anything thrown while talking to a provider, as a {@link GatewayError} (or the caller's abort). */
export function toUpstreamError(providerId: string, error: unknown): GatewayError | ClientAbortError {
  if (error instanceof GatewayError || error instanceof ClientAbortError) return error;
  if (error instanceof HttpTimeoutError) {
    return new UpstreamTimeoutError(providerId, error.phase === "body" ? "idle" : error.phase, error.afterMs);
  }
  if (error instanceof HttpPoolSaturatedError) {
    // The gateway's fault, not the provider's: every connection to it is in use. Another provider is
    // another origin with its own connections, so fail over; a caller left with nothing waits a second.
    return gatewayOverloaded({ providerId, maxSockets: error.maxSockets, cause: error });
  }
  // Another provider would write an answer as long: hand the error back rather than try again.
  if (error instanceof HttpResponseTooLargeError) return responseTooLarge(providerId, error.limit, error);
  if (error instanceof HttpNetworkError) {
    // A request that never got a response was not processed: safe to send again.
    return connectionFailed(providerId, `${providerId}: connection failed (${error.message})`, {
      retry: error.beforeResponse,
      cause: error,
    });
  }
  if ((error as Error | undefined)?.name === "AbortError") return new ClientAbortError();
  // Anything else was thrown by our own code: a provider must not be blamed (or benched) for it.
  return new InternalError(error);
}
