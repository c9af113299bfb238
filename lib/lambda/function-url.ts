import { Readable } from "node:stream";
import type { GatewayRequest, GatewayResponse } from "../gateway/response.ts";

/** The parts of a Function URL event (payload format 2.0) the gateway reads. */
export interface FunctionUrlEvent {
  rawPath?: string;
  rawQueryString?: string;
  headers?: Record<string, string | undefined>;
  body?: string;
  isBase64Encoded?: boolean;
  requestContext?: { requestId?: string; http?: { method?: string } };
}

export interface LambdaContextLike {
  awsRequestId?: string;
  getRemainingTimeInMillis?: () => number;
}

/** What middy's streaming mode takes: status and headers first, then the body piped with back-pressure. */
export interface StreamingHandlerResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string | Readable;
}

/**
 * A Function URL event as the gateway's request. `marginMs` is kept back from the function's
 * remaining time so every retry and wait ends (and the error reaches the caller) before Lambda
 * stops the function.
 */
export function toGatewayRequest(
  event: FunctionUrlEvent,
  context: LambdaContextLike,
  signal: AbortSignal,
  marginMs: number,
): GatewayRequest {
  const raw = event.body ?? "";
  const body = event.isBase64Encoded ? Buffer.from(raw, "base64").toString("utf8") : raw;
  const headers: Record<string, string | undefined> = {};
  // Function URLs already lower-case header names; do it anyway for other invokers.
  for (const [name, value] of Object.entries(event.headers ?? {})) headers[name.toLowerCase()] = value;
  const remaining = context.getRemainingTimeInMillis?.();
  const requestId = context.awsRequestId ?? event.requestContext?.requestId;
  return {
    method: event.requestContext?.http?.method ?? "GET",
    path: `${event.rawPath ?? "/"}${event.rawQueryString ? `?${event.rawQueryString}` : ""}`,
    headers,
    body,
    signal,
    ...(remaining === undefined ? {} : { remainingMs: Math.max(0, remaining - marginMs) }),
    ...(requestId ? { requestId } : {}),
  };
}

/**
 * The gateway's response for middy. A streamed body becomes a Readable: middy pipes it into the
 * Lambda response stream with `pipeline`, so back-pressure holds. If the caller goes away the
 * pipeline destroys the Readable, and Node's `Readable.from` then *throws* the stream error into
 * the iterator before any 'close' event; handed to the relay, that error would look like an
 * upstream failure (a provider blamed, a continuation started for nobody). So the iterator given
 * to `Readable.from` turns `throw` into: abort the upstream work (`onClose`), then end the relay.
 */
export function toHandlerResponse(response: GatewayResponse, onClose: () => void): StreamingHandlerResponse {
  if (typeof response.body === "string") {
    return { statusCode: response.status, headers: response.headers, body: response.body };
  }
  const inner = response.body[Symbol.asyncIterator]();
  const finish = async (): Promise<IteratorResult<string>> => {
    onClose();
    return (await inner.return?.()) ?? { done: true, value: undefined };
  };
  const guarded: AsyncIterableIterator<string> = {
    next: () => inner.next(),
    return: finish,
    throw: finish,
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  const body = Readable.from(guarded, { objectMode: false });
  body.once("close", onClose);
  return { statusCode: response.status, headers: response.headers, body };
}
