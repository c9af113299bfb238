import type { ErrorReport } from "../core/error.ts";
import { openAIErrorBody } from "../dialects/openai-chat/errors.ts";
import { type GatewayError, reportOf } from "../errors.ts";

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

/** A dialect's error serializer (`lib/dialects/<dialect>/errors.ts`): the body for an error. */
export type ErrorSerializer = (report: ErrorReport) => unknown;

/**
 * Any error, in the caller's dialect (`serialize`, OpenAI's by default), with its status and
 * headers (Retry-After, Allow).
 */
export function errorResponse(
  error: unknown,
  requestId: string,
  headers: Record<string, string> = {},
  serialize: ErrorSerializer = openAIErrorBody,
): GatewayResponse {
  const report = reportOf(error);
  const extra = (error as Partial<GatewayError> | undefined)?.headers ?? {};
  return jsonResponse(report.status, serialize(report), {
    ...extra,
    ...headers,
    "x-request-id": requestId,
  });
}
