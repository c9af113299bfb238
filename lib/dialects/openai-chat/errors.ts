/**
 * Errors in the OpenAI shape (https://platform.openai.com/docs/guides/error-codes): the serializer
 * the edge uses for an OpenAI caller, and the reader of an OpenAI-speaking upstream's error body.
 * The core hands over an {@link ErrorReport} (kind and code); the OpenAI `type` string is this
 * dialect's, derived here, so the bytes an OpenAI caller sees stay what they were before issue 17.
 */
import type { ErrorKind, ErrorReport, PassThrough } from "../../core/error.ts";
import { redactForCaller } from "../../secrets/redact.ts";

/** The OpenAI error body. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** The dialect tag of a pass-through body this file built. */
const DIALECT = "openai-chat";

/**
 * OpenAI's `type` for each kind. A refused key is `invalid_request_error` with the code
 * `invalid_api_key`, a missing model or path `invalid_request_error` with its code, as OpenAI
 * itself answers them; a spent budget is `insufficient_quota`, OpenAI's type for a spent quota.
 */
const TYPE_OF_KIND: Record<ErrorKind, string> = {
  invalid_request: "invalid_request_error",
  authentication: "invalid_request_error",
  permission: "permission_error",
  not_found: "invalid_request_error",
  request_too_large: "invalid_request_error",
  rate_limit: "rate_limit_error",
  quota: "insufficient_quota",
  overloaded: "api_error",
  unavailable: "api_error",
  timeout: "timeout_error",
  upstream: "api_error",
  internal: "api_error",
  cancelled: "api_error",
};

/** OpenAI's `type` for an error of the gateway's own. */
export function openAIErrorType(report: Pick<ErrorReport, "kind">): string {
  return TYPE_OF_KIND[report.kind];
}

const INTERNAL: OpenAIErrorBody = {
  error: { message: "Internal server error", type: "api_error", param: null, code: null },
};

/**
 * An error in the OpenAI shape. A body passed through from an OpenAI-speaking upstream is handed
 * back as it came; an error of the gateway's own is built from its kind and code; a value that is
 * not a gateway error (`code` null) never shows its message. Every field is redacted for a caller
 * ({@link redactForCaller}): held keys, key shapes, ARNs and account ids (an upstream's message may
 * carry any of them).
 */
export function openAIErrorBody(report: ErrorReport): OpenAIErrorBody {
  const upstream = passedThroughBody(report.passThrough);
  if (upstream !== undefined) {
    // Passed through from the provider: any field may echo what it was sent.
    const e = upstream.error;
    return {
      error: {
        message: redactForCaller(e.message),
        type: redactForCaller(e.type),
        param: redactNullable(e.param),
        code: redactNullable(e.code),
      },
    };
  }
  if (report.code === null) return INTERNAL;
  return {
    error: {
      message: redactForCaller(report.message),
      type: openAIErrorType(report),
      param: redactNullable(report.param),
      code: report.code,
    },
  };
}

function redactNullable(text: string | null): string | null {
  return text === null ? null : redactForCaller(text);
}

/** An OpenAI-speaking upstream's error body, to hand back as is to an OpenAI caller. */
export function openAIPassThrough(body: OpenAIErrorBody): PassThrough {
  return { dialect: DIALECT, body };
}

/** The OpenAI body of a pass-through, if it is one this dialect built. */
export function passedThroughBody(passThrough: PassThrough | undefined): OpenAIErrorBody | undefined {
  if (passThrough?.dialect !== DIALECT) return undefined;
  return isOpenAIErrorBody(passThrough.body) ? passThrough.body : undefined;
}

function isOpenAIErrorBody(body: unknown): body is OpenAIErrorBody {
  const e = (body as { error?: unknown } | null)?.error;
  return typeof e === "object" && e !== null && typeof (e as { message?: unknown }).message === "string";
}

/** Reads an OpenAI-shaped error out of an upstream body, if it has one. */
export function readOpenAIErrorBody(text: string): OpenAIErrorBody | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  return openAIErrorObject((json as { error?: unknown } | null)?.error);
}

/**
 * The `error` member of an upstream body or stream event, normalised: a bare string is its message,
 * a numeric code its decimal text, missing fields their OpenAI defaults.
 */
export function openAIErrorObject(error: unknown): OpenAIErrorBody | undefined {
  if (typeof error === "string")
    return { error: { message: error, type: "api_error", param: null, code: null } };
  if (typeof error !== "object" || error === null) return undefined;
  const e = error as Record<string, unknown>;
  const message = typeof e.message === "string" ? e.message : "upstream error";
  return {
    error: {
      message,
      type: typeof e.type === "string" ? e.type : "api_error",
      param: typeof e.param === "string" ? e.param : null,
      code: typeof e.code === "string" ? e.code : typeof e.code === "number" ? String(e.code) : null,
    },
  };
}
