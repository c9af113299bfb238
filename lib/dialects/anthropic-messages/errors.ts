/**
 * Gateway errors in the Messages API's error shape (issue 18):
 * `{"type":"error","error":{"type":…,"message":…}}`, https://docs.anthropic.com/en/api/errors.
 * Messages are the ones the OpenAI serializer writes (`openAIErrorBody`), so the redaction and a
 * passed-through upstream's message are the same; the type is Anthropic's for the status (Claude Code and the SDKs decide retries from the status and the type:
 * `overloaded_error` and `rate_limit_error` are retried, `invalid_request_error` is not).
 */
import type { ErrorKind } from "../../core/error.ts";
import { reportOf } from "../../errors.ts";
import { openAIErrorBody } from "../openai-chat/errors.ts";

/** The error types the Messages API documents. */
export type AnthropicErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "billing_error"
  | "permission_error"
  | "not_found_error"
  | "request_too_large"
  | "rate_limit_error"
  | "api_error"
  | "timeout_error"
  | "overloaded_error";

export interface AnthropicErrorBody {
  type: "error";
  error: { type: AnthropicErrorType; message: string };
  /** The gateway's request id, as the API echoes its own (`request_id`). */
  request_id?: string;
}

/**
 * Any thrown value as the Messages error a caller is answered with: the gateway's status, and the
 * body with Anthropic's type for it. An unknown error is a 500 whose message says nothing of it.
 */
export function toAnthropicError(
  error: unknown,
  requestId?: string,
): { status: number; body: AnthropicErrorBody } {
  const report = reportOf(error);
  const { status } = report;
  const body: AnthropicErrorBody = {
    type: "error",
    error: { type: anthropicErrorType(status, report.kind), message: openAIErrorBody(report).error.message },
  };
  if (requestId !== undefined) body.request_id = requestId;
  return { status, body };
}

/**
 * Anthropic's error type for a status (the error's kind decides only where the status does not: a
 * 5xx that was a timeout). OpenAI calls a bad caller key `invalid_request_error` with 401; Anthropic
 * says `authentication_error`, and Claude Code acts on the difference.
 */
export function anthropicErrorType(status: number, kind?: ErrorKind): AnthropicErrorType {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 402:
      return "billing_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
    case 529:
      return "overloaded_error";
    case 504:
      return "timeout_error";
  }
  if (status < 500) return "invalid_request_error";
  return kind === "timeout" ? "timeout_error" : "api_error";
}
