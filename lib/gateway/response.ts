import { type GatewayError, InvalidRequestError, statusOf, toOpenAIErrorBody } from "../errors.ts";

/** A request as any runtime adapter hands it over. */
export interface GatewayRequest {
  method: string;
  /** Path with or without a query string. */
  path: string;
  /** Lower-case names. */
  headers: Record<string, string | undefined>;
  body: string;
  /** Aborts when the caller goes away. */
  signal: AbortSignal;
  /** Time the runtime still allows (Lambda's remaining time minus a margin); caps the deadline. */
  remainingMs?: number;
  requestId?: string;
}

/**
 * What the gateway answers, independent of the runtime serving it: `node:http` locally, a Lambda
 * response stream on AWS. A string body is sent whole; an iterable is streamed chunk by chunk.
 */
export interface GatewayResponse {
  status: number;
  headers: Record<string, string>;
  body: string | AsyncIterable<string>;
}

export const jsonHeaders: Readonly<Record<string, string>> = { "content-type": "application/json" };

export function jsonResponse(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): GatewayResponse {
  return { status, headers: { ...jsonHeaders, ...headers }, body: JSON.stringify(body) };
}

/** Any error, in the OpenAI shape, with its status and headers (Retry-After, Allow). */
export function errorResponse(
  error: unknown,
  requestId: string,
  headers: Record<string, string> = {},
): GatewayResponse {
  const extra = (error as Partial<GatewayError> | undefined)?.headers ?? {};
  return jsonResponse(statusOf(error), toOpenAIErrorBody(error), {
    ...extra,
    ...headers,
    "x-request-id": requestId,
  });
}

export class PayloadTooLargeError extends InvalidRequestError {
  constructor(limit: number) {
    super(`The request body is larger than the limit of ${limit} bytes.`, null, "request_too_large", 413);
    this.name = "PayloadTooLargeError";
  }
}
