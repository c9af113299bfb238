/**
 * Amazon Bedrock errors as the gateway's typed errors, decided here once, beside the table in
 * `lib/retry/classify.ts` that does the same for HTTP providers.
 *
 * The SDK throws service exceptions named after the API's error shapes
 * (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html#API_runtime_ConverseStream_Errors),
 * before a stream (an HTTP status) or inside one (an `exception` event). They are told apart by
 * `name`, not `instanceof`, so this file never loads the SDK.
 */
import { type ClientAbortError, type GatewayError, UpstreamError, UpstreamTimeoutError } from "../errors.ts";
import { actionForStatus, toUpstreamError } from "../retry/classify.ts";
import { redactSecrets } from "../secrets/redact.ts";

/** What the provider knows about the call that failed, to name the fix. */
export interface BedrockCallContext {
  providerId: string;
  region: string;
  modelId: string;
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
 * inference profile, or one that does not exist. Another target may serve the request.
 */
const TARGET_INVALID =
  /on-demand throughput isn.t supported|inference profile|model identifier is invalid|provided model identifier/i;

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
      return new UpstreamError(`${providerId}: no AWS credentials for Amazon Bedrock`, {
        status: 502,
        type: "api_error",
        code: "provider_not_configured",
        action: "failover",
        providerId,
        cause: error,
      });
    }
    if (
      (typeof code === "string" && /^(?:E[A-Z]+|ERR_HTTP2_[A-Z_]+)$/.test(code)) ||
      name === "TimeoutError"
    ) {
      return new UpstreamError(
        `${providerId}: connection to Amazon Bedrock failed (${String(code ?? name)})`,
        {
          status: 502,
          type: "api_error",
          code: "upstream_connection_error",
          action: "retry",
          providerId,
          cause: error,
        },
      );
    }
    return toUpstreamError(providerId, error);
  }
  const message = redactSecrets(error.message || error.name);
  const status = error.$metadata?.httpStatusCode;
  const upstream = (options: { status: number; code: string; action: "retry" | "failover"; type?: string }) =>
    new UpstreamError(`${providerId} (Bedrock ${call.region}) ${error.name}: ${message}`, {
      ...options,
      providerId,
      cause: error,
    });
  switch (error.name) {
    case "ThrottlingException":
    case "ServiceQuotaExceededException":
      // Bedrock sends no Retry-After: the gateway's backoff and the rate-limit cooldown decide.
      return upstream({
        status: 429,
        type: "rate_limit_error",
        code: "rate_limit_exceeded",
        action: "retry",
      });
    case "ServiceUnavailableException":
    case "ModelNotReadyException":
      return upstream({ status: 503, code: "upstream_unavailable", action: "retry" });
    case "InternalServerException":
      return upstream({ status: 500, code: "upstream_error", action: "retry" });
    case "ModelErrorException":
      return upstream({ status: 502, code: "upstream_error", action: "failover" });
    case "ModelTimeoutException":
      return new BedrockTimeoutError(providerId, "response", `ModelTimeoutException: ${message}`, error);
    case "ModelStreamErrorException":
      return new BedrockTimeoutError(
        providerId,
        "idle",
        `stream failed (ModelStreamErrorException): ${message}`,
        error,
      );
    case "AccessDeniedException":
      call.warn({
        msg: "Bedrock access denied",
        provider: providerId,
        region: call.region,
        model: call.modelId,
        fix: `enable access to this model in the Bedrock console (Model access) in ${call.region} and every region its inference profile routes to, and allow bedrock:InvokeModel and bedrock:InvokeModelWithResponseStream on it in the function's role`,
      });
      return upstream({
        status: 403,
        type: "permission_error",
        code: "bedrock_access_denied",
        action: "failover",
      });
    case "ResourceNotFoundException":
      call.warn({
        msg: "Bedrock model not found",
        provider: providerId,
        region: call.region,
        model: call.modelId,
        fix: `check the target's model id in ${call.region}: the model may not be offered in this region, or needs a cross-region inference profile id (us./eu./apac./global. prefix)`,
      });
      return upstream({ status: 404, type: "not_found_error", code: "model_not_found", action: "failover" });
    case "ValidationException": {
      if (TARGET_INVALID.test(error.message)) {
        call.warn({
          msg: "Bedrock refused the target's model id",
          provider: providerId,
          region: call.region,
          model: call.modelId,
          fix: "use the model's inference profile id (e.g. us.<model id>) or its ARN as the target's model",
          detail: message,
        });
        return upstream({
          status: 400,
          type: "invalid_request_error",
          code: "model_not_found",
          action: "failover",
        });
      }
      const code = CONTEXT_LENGTH.test(error.message) ? "context_length_exceeded" : null;
      return new UpstreamError(`${providerId} (Bedrock) rejected the request: ${message}`, {
        status: 400,
        type: "invalid_request_error",
        code,
        action: "return",
        providerId,
        upstreamBody: { error: { message, type: "invalid_request_error", param: null, code } },
        cause: error,
      });
    }
    default: {
      const httpStatus = status ?? (error.$fault === "client" ? 400 : 502);
      const action = actionForStatus(httpStatus);
      if (action === "return") {
        return new UpstreamError(`${providerId} (Bedrock) ${error.name}: ${message}`, {
          status: httpStatus,
          action,
          providerId,
          upstreamBody: { error: { message, type: "invalid_request_error", param: null, code: null } },
          cause: error,
        });
      }
      return upstream({ status: httpStatus, code: "upstream_error", action });
    }
  }
}
