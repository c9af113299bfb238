import { redactForCaller, redactSecrets } from "./secrets/redact.ts";

/** Re-exported: the upstream error mapping (`lib/retry/classify.ts`) redacts where it builds messages. */
export { redactSecrets };

/**
 * One error hierarchy for the whole gateway. Upstream outcomes become a {@link GatewayError} in
 * exactly one place (`lib/retry/classify.ts`); the edge serialises it to the OpenAI error shape with
 * {@link toOpenAIErrorBody}. A stack trace or a key never leaves the process.
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

/** The OpenAI error body: https://platform.openai.com/docs/guides/error-codes */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** What the failover engine should do after an outcome. */
export type ErrorAction = "retry" | "failover" | "return";

export interface GatewayErrorOptions {
  status: number;
  type?: string;
  code?: string | null;
  param?: string | null;
  action?: ErrorAction;
  retryAfterMs?: number;
  providerId?: string;
  headers?: Record<string, string>;
  /** A body to hand back to the caller as is (an upstream 4xx we pass through). */
  upstreamBody?: OpenAIErrorBody;
  cause?: unknown;
}

export class GatewayError extends Error {
  readonly status: number;
  readonly type: string;
  readonly code: string | null;
  readonly param: string | null;
  readonly action: ErrorAction;
  readonly retryAfterMs: number | undefined;
  readonly providerId: string | undefined;
  readonly headers: Record<string, string>;
  readonly upstreamBody: OpenAIErrorBody | undefined;

  constructor(message: string, options: GatewayErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    this.status = options.status;
    this.type = options.type ?? defaultType(options.status);
    this.code = options.code ?? null;
    this.param = options.param ?? null;
    this.action = options.action ?? "return";
    this.retryAfterMs = options.retryAfterMs;
    this.providerId = options.providerId;
    this.headers = options.headers ?? {};
    this.upstreamBody = options.upstreamBody;
  }
}

/** The caller's request is wrong (400 unless said otherwise). */
export class InvalidRequestError extends GatewayError {
  constructor(message: string, param: string | null = null, code: string | null = null, status = 400) {
    super(message, { status, type: "invalid_request_error", param, code });
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
export type TimeoutPhase = "connect" | "headers" | "first_token" | "idle" | "response" | "deadline";

export class UpstreamTimeoutError extends UpstreamError {
  readonly phase: TimeoutPhase;
  constructor(providerId: string, phase: TimeoutPhase, afterMs: number) {
    super(`${providerId}: timed out waiting for ${phase.replace("_", " ")} after ${afterMs} ms`, {
      status: 504,
      type: "timeout_error",
      code: `${phase}_timeout`,
      action: "failover",
      providerId,
    });
    this.name = "UpstreamTimeoutError";
    this.phase = phase;
  }
}

/**
 * A bug of the gateway's, met while talking to a provider (a thrown TypeError, a stack overflow):
 * never the provider's failure, never failed over. The edge answers 500 with the request id.
 */
export class InternalError extends GatewayError {
  constructor(cause: unknown) {
    super("Internal server error", { status: 500, type: "api_error", code: "internal_error", cause });
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

function defaultType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status < 500) return "invalid_request_error";
  return "api_error";
}

/**
 * Serialises any thrown value to the OpenAI error shape; unknown errors never show their message.
 * Every field is redacted for a caller ({@link redactForCaller}): held keys, key shapes, ARNs and
 * account ids (an upstream's message may carry any of them).
 */
export function toOpenAIErrorBody(error: unknown): OpenAIErrorBody {
  if (error instanceof GatewayError) {
    if (error.upstreamBody) {
      // Passed through from the provider: any field may echo what it was sent.
      const e = error.upstreamBody.error;
      return {
        error: {
          message: redactForCaller(e.message),
          type: redactForCaller(e.type),
          param: redactNullable(e.param),
          code: redactNullable(e.code),
        },
      };
    }
    return {
      error: {
        message: redactForCaller(error.message),
        type: redactForCaller(error.type),
        param: redactNullable(error.param),
        code: redactNullable(error.code),
      },
    };
  }
  return { error: { message: "Internal server error", type: "api_error", param: null, code: null } };
}

function redactNullable(text: string | null): string | null {
  return text === null ? null : redactForCaller(text);
}

export function statusOf(error: unknown): number {
  return error instanceof GatewayError ? error.status : 500;
}
