/**
 * Gateway errors in the Responses API's shapes (issue 19). A request that fails before its stream
 * opens gets OpenAI's error body, the same as Chat Completions'
 * (https://platform.openai.com/docs/guides/error-codes); a stream that fails after it opened ends
 * with `response.failed`, whose response carries `error: {code, message}`
 * (https://platform.openai.com/docs/api-reference/responses-streaming/response/failed).
 */
import { reportOf } from "../../errors.ts";
import { type OpenAIErrorBody, openAIErrorBody } from "../openai-chat/errors.ts";

/** The error body of a failed `POST /v1/responses` (and of the stored-response routes). */
export function toResponsesErrorBody(error: unknown): OpenAIErrorBody {
  return openAIErrorBody(reportOf(error));
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
 * one {@link toResponsesErrorBody} writes: redacted, never a stack. (The 404 for a stored response
 * that is not there is `responseNotFound` in `lib/errors.ts`.)
 */
export function toResponseError(error: unknown): ResponseErrorObject {
  const report = reportOf(error);
  const body = openAIErrorBody(report).error;
  const code = body.code ?? (report.status === 429 ? "rate_limit_exceeded" : "server_error");
  return { code, message: body.message };
}
