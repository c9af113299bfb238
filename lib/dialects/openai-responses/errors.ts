/**
 * Gateway errors in the Responses API's shapes (issue 19). A request that fails before its stream
 * opens gets OpenAI's error body, the same as Chat Completions'
 * (https://platform.openai.com/docs/guides/error-codes); a stream that fails after it opened ends
 * with `response.failed`, whose response carries `error: {code, message}`
 * (https://platform.openai.com/docs/api-reference/responses-streaming/response/failed).
 */
import {
  InvalidRequestError,
  type OpenAIErrorBody,
  quoteCallerText,
  toOpenAIErrorBody,
} from "../../errors.ts";

/** The error body of a failed `POST /v1/responses` (and of the stored-response routes). */
export function toResponsesErrorBody(error: unknown): OpenAIErrorBody {
  return toOpenAIErrorBody(error);
}

/** A response object's `error`: what `response.failed` says. */
export interface ResponseErrorObject {
  code: string;
  message: string;
}

/**
 * The `error` of a failed response. The code is the error's own when it has one (Codex reads
 * `context_length_exceeded` and `insufficient_quota` from here, and retries anything else); else
 * `rate_limit_exceeded` for a 429 and `server_error` otherwise, as OpenAI's are. The message is the
 * one {@link toOpenAIErrorBody} writes: redacted, never a stack.
 */
export function toResponseError(error: unknown): ResponseErrorObject {
  const body = toOpenAIErrorBody(error).error;
  const status =
    typeof error === "object" && error !== null && "status" in error && typeof error.status === "number"
      ? error.status
      : 500;
  const code = body.code ?? (status === 429 ? "rate_limit_exceeded" : "server_error");
  return { code, message: body.message };
}

/** The 404 for an unknown, expired, deleted or another key's stored response, in OpenAI's words. */
export function responseNotFound(id: string): InvalidRequestError {
  return new InvalidRequestError(`Response with id '${quoteCallerText(id)}' not found.`, null, null, 404);
}
