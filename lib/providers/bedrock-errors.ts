/**
 * Amazon Bedrock errors as the gateway's typed errors, decided here once, beside the table in
 * `lib/retry/classify.ts` that does the same for HTTP providers.
 *
 * The SDK throws service exceptions named after the API's error shapes
 * (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html#API_runtime_ConverseStream_Errors),
 * before a stream (an HTTP status) or inside one (an `exception` event). They are told apart by
 * `name`, not `instanceof`, so this file never loads the SDK.
 */
import { openAIPassThrough } from "../dialects/openai-chat/errors.ts";
import {
  bedrockConfigFault,
  bedrockFeatureRefused,
  type ClientAbortError,
  connectionFailed,
  type ErrorAction,
  type GatewayError,
  providerNotConfigured,
  type UpstreamError,
  UpstreamTimeoutError,
  upstreamReported,
} from "../errors.ts";
import { actionForStatus, saysContextLength, toUpstreamError } from "../retry/classify.ts";
import { redactSecrets } from "../secrets/redact.ts";

/** What the provider knows about the call that failed, to name the fix. */
export interface BedrockCallContext {
  providerId: string;
  region: string;
  modelId: string;
  /**
   * The caller's `bedrock` extension field as sent, when the call was a caller's request (a health
   * probe has none): an access denied for a feature it chose is the caller's, not the target's.
   */
  extension?: unknown;
  /** One log line per misconfiguration met: access denied, model not found. */
  warn(fields: Record<string, unknown>): void;
}

/** A Bedrock service exception as the SDK throws it. */
interface ServiceException {
  name: string;
  message: string;
  $fault?: string;
  $metadata?: { httpStatusCode?: number };
}

function isServiceException(error: unknown): error is ServiceException {
  return (
    error instanceof Error &&
    ("$fault" in error || "$metadata" in error) &&
    typeof (error as { name?: unknown }).name === "string"
  );
}

/** A timeout Bedrock itself reported (ModelTimeoutException, a stalled stream): failed over like ours. */
export class BedrockTimeoutError extends UpstreamTimeoutError {
  constructor(providerId: string, phase: "response" | "idle", detail: string, cause: unknown) {
    super(providerId, phase, 0);
    this.name = "BedrockTimeoutError";
    this.message = `${providerId}: Bedrock ${detail}`;
    this.cause = cause;
  }
}

/**
 * A ValidationException that says the prompt does not fit: the gateway's context-window fallback
 * reads `context_length_exceeded`. Bedrock words it per model ("Input is too long for requested
 * model", Claude's "prompt is too long", "input length and `max_tokens` exceed context limit").
 */
const CONTEXT_LENGTH =
  /too long|context (?:limit|length|window)|exceeds? the maximum|maximum (?:context|input)/i;

/**
 * A ValidationException about the target, not the caller's request: a model id that needs an
 * inference profile, or one that does not exist. Another target may serve the request. Anchored at
 * the start of Bedrock's own sentences: its messages echo what the caller sent ("extraneous key
 * [...] is not permitted"), and a caller's text must never read as a broken target (issue 16).
 */
const TARGET_INVALID =
  /^(?:Invocation of model ID \S+ with on-demand throughput isn.t supported|The provided model identifier is invalid|Could not resolve the foundation model from (?:the )?(?:provided )?model identifier)/i;

/**
 * Fields of the `bedrock` extension that ask Bedrock for a feature the gateway's role may not be
 * allowed (a guardrail needs `bedrock:ApplyGuardrail`; latency-optimized inference, prompt caching
 * and model-specific fields have been gated per account). Checked in this order.
 */
const CALLER_FEATURES = [
  "guardrailConfig",
  "performanceConfig",
  "cachePoints",
  "additionalModelRequestFields",
] as const;

/** Whether the caller's `bedrock` extension carried `field`. */
function carries(extension: unknown, field: string): boolean {
  if (typeof extension !== "object" || extension === null) return false;
  const value = (extension as Record<string, unknown>)[field];
  return value !== undefined && value !== null;
}

/** An AccessDeniedException about a guardrail (`bedrock:ApplyGuardrail on resource ...:guardrail/...`). */
const GUARDRAIL_DENIED = /guardrail/i;
/** An AccessDeniedException about the model itself: its access, its marketplace subscription, invoking it. */
const MODEL_DENIED =
  /access to the model|model access|bedrock:InvokeModel|foundation-model\/|inference-profile\/|aws-marketplace/i;

/**
 * The caller-chosen field an AccessDeniedException is about, if any: a guardrail the message names,
 * else (when the message does not say it is the model) the first feature field the request carried.
 * The guardrail is checked first: its message quotes the caller's guardrail identifier, which must
 * not be able to make it read as the model's.
 */
function deniedCallerField(message: string, extension: unknown): string | undefined {
  if (carries(extension, "guardrailConfig") && GUARDRAIL_DENIED.test(message)) return "guardrailConfig";
  if (MODEL_DENIED.test(message)) return undefined;
  return CALLER_FEATURES.find((field) => carries(extension, field));
}

/** What the caller is told, in our words: Bedrock's own message names the role's ARN and account. */
function deniedFeatureMessage(field: string): string {
  return field === "guardrailConfig"
    ? "The guardrail in 'bedrock.guardrailConfig' cannot be applied: the gateway's role lacks permission to apply it (bedrock:ApplyGuardrail)."
    : `Amazon Bedrock refused the feature requested in 'bedrock.${field}': the gateway's role lacks permission for it.`;
}

/** The fields of a warn line that say where: provider, region and the target's model. */
function where(call: BedrockCallContext, msg: string): Record<string, unknown> {
  return { msg, provider: call.providerId, region: call.region, model: call.modelId };
}

/** A refusal of a field the caller chose: handed back to it, in our words, never failed over. */
function callerRefusal(
  message: string,
  field: string,
  status: 400 | 403,
  providerId: string,
  cause: unknown,
): UpstreamError {
  return bedrockFeatureRefused(providerId, message, { field, status, cause });
}

/**
 * A fault of the configuration (the model a target names): failed over, counted against that
 * target only (`lib/retry/blame.ts`), in our words. Bedrock's text names the role's ARN and the
 * account: it goes to the warn line naming the fix, not into the message a caller may see when
 * every target failed.
 */
function configFault(
  call: BedrockCallContext,
  cause: unknown,
  fault: { status: number; fault: "access_denied" | "model_not_found"; what: string },
): UpstreamError {
  return bedrockConfigFault(
    call.providerId,
    `${call.providerId} (Bedrock ${call.region}): ${fault.what}; the fix is logged`,
    { fault: fault.fault, status: fault.status, cause },
  );
}

/** Any error met while calling Bedrock, as a {@link GatewayError} (or the caller's abort). */
export function bedrockError(error: unknown, call: BedrockCallContext): GatewayError | ClientAbortError {
  const { providerId } = call;
  if (!isServiceException(error)) {
    const code = (error as { code?: unknown } | undefined)?.code;
    const name = (error as { name?: unknown } | undefined)?.name;
    if (name === "CredentialsProviderError") {
      call.warn({
        msg: "Bedrock: no AWS credentials found",
        provider: providerId,
        fix: "run with an IAM role (on Lambda the function's role) or set AWS credentials in the environment or a profile",
      });
      return providerNotConfigured(providerId, "no AWS credentials for Amazon Bedrock", error);
    }
    if (
      (typeof code === "string" && /^(?:E[A-Z]+|ERR_HTTP2_[A-Z_]+)$/.test(code)) ||
      name === "TimeoutError"
    ) {
      return connectionFailed(
        providerId,
        `${providerId}: connection to Amazon Bedrock failed (${String(code ?? name)})`,
        { retry: true, cause: error },
      );
    }
    return toUpstreamError(providerId, error);
  }
  const message = redactSecrets(error.message || error.name);
  const status = error.$metadata?.httpStatusCode;
  const upstream = (status: number, action: ErrorAction) =>
    upstreamReported(providerId, `${providerId} (Bedrock ${call.region}) ${error.name}: ${message}`, {
      status,
      action,
      upstreamCode: error.name,
      cause: error,
    });
  switch (error.name) {
    case "ThrottlingException":
    case "ServiceQuotaExceededException":
      // Bedrock sends no Retry-After: the gateway's backoff and the rate-limit cooldown decide.
      return upstream(429, "retry");
    case "ServiceUnavailableException":
    case "ModelNotReadyException":
      return upstream(503, "retry");
    case "InternalServerException":
      return upstream(500, "retry");
    case "ModelErrorException":
      return upstream(502, "failover");
    case "ModelTimeoutException":
      return new BedrockTimeoutError(providerId, "response", `ModelTimeoutException: ${message}`, error);
    case "ModelStreamErrorException":
      return new BedrockTimeoutError(
        providerId,
        "idle",
        `stream failed (ModelStreamErrorException): ${message}`,
        error,
      );
    case "AccessDeniedException": {
      // The caller's if a field it chose asked for what the role may not do: a 403 to it, never
      // failed over (another target would refuse it too) and never counted against the target.
      const field = deniedCallerField(error.message, call.extension);
      if (field !== undefined) {
        call.warn({
          ...where(call, "Bedrock access denied for a feature the request chose"),
          field: `bedrock.${field}`,
          fix:
            field === "guardrailConfig"
              ? "allow bedrock:ApplyGuardrail on the guardrails callers may name in the function's role, or tell callers not to send one"
              : "allow the feature for the function's role and account, or tell callers not to request it",
          detail: message,
        });
        return callerRefusal(deniedFeatureMessage(field), field, 403, providerId, error);
      }
      call.warn({
        ...where(call, "Bedrock access denied"),
        fix: `enable access to this model in the Bedrock console (Model access) in ${call.region} and every region its inference profile routes to, and allow bedrock:InvokeModel and bedrock:InvokeModelWithResponseStream on it in the function's role`,
        detail: message,
      });
      return configFault(call, error, {
        status: 403,
        fault: "access_denied",
        what: "the gateway does not have access to the target's model (model access or the role's permissions)",
      });
    }
    case "ResourceNotFoundException":
      if (carries(call.extension, "guardrailConfig") && GUARDRAIL_DENIED.test(error.message)) {
        // A guardrail the caller named that does not exist (or not in this target's region).
        return callerRefusal(
          "The guardrail in 'bedrock.guardrailConfig' was not found: check its identifier, its version and that it exists in the region of the route's Bedrock targets.",
          "guardrailConfig",
          400,
          providerId,
          error,
        );
      }
      call.warn({
        ...where(call, "Bedrock model not found"),
        fix: `check the target's model id in ${call.region}: the model may not be offered in this region, or needs a cross-region inference profile id (us./eu./apac./global. prefix)`,
        detail: message,
      });
      return configFault(call, error, {
        status: 404,
        fault: "model_not_found",
        what: "the target's model does not exist in this region (or needs an inference profile id)",
      });
    case "ValidationException": {
      if (TARGET_INVALID.test(error.message)) {
        call.warn({
          ...where(call, "Bedrock refused the target's model id"),
          fix: "use the model's inference profile id (e.g. us.<model id>) or its ARN as the target's model",
          detail: message,
        });
        return configFault(call, error, {
          status: 400,
          fault: "model_not_found",
          what: "the target's model id cannot be called as configured (it may need an inference profile)",
        });
      }
      const tooLong = CONTEXT_LENGTH.test(error.message);
      const contextLength = tooLong || saysContextLength(400, null, message);
      // Handed back in the OpenAI shape it always had (Bedrock's own body is not a caller's dialect).
      const code = tooLong ? "context_length_exceeded" : null;
      return upstreamReported(providerId, `${providerId} (Bedrock) rejected the request: ${message}`, {
        status: 400,
        action: "return",
        contextLength,
        upstreamCode: error.name,
        passThrough: openAIPassThrough({
          error: { message, type: "invalid_request_error", param: null, code },
        }),
        cause: error,
      });
    }
    default: {
      const httpStatus = status ?? (error.$fault === "client" ? 400 : 502);
      const action = actionForStatus(httpStatus);
      if (action === "return") {
        return upstreamReported(providerId, `${providerId} (Bedrock) ${error.name}: ${message}`, {
          status: httpStatus,
          action,
          contextLength: saysContextLength(httpStatus, null, message),
          upstreamCode: error.name,
          passThrough: openAIPassThrough({
            error: { message, type: "invalid_request_error", param: null, code: null },
          }),
          cause: error,
        });
      }
      return upstream(httpStatus, action);
    }
  }
}
