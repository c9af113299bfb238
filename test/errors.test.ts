import { describe, expect, it } from "vitest";
import { type ErrorCode, KIND_OF_CODE, kindOf } from "../lib/core/error.ts";
import { openAIErrorBody, openAIPassThrough } from "../lib/dialects/openai-chat/errors.ts";
import {
  authUnavailable,
  budgetExceeded,
  ClientAbortError,
  clientClosed,
  connectionFailed,
  continuationDiverged,
  countTokensUnsupported,
  deadlineExceeded,
  emptyStream,
  expectationFailed,
  GatewayError,
  gatewayOverloaded,
  InternalError,
  invalidApiKey,
  invalidHttpRequest,
  invalidJson,
  invalidPath,
  invalidResponse,
  invalidType,
  invalidValue,
  limitsUnavailable,
  methodNotAllowed,
  missingHostHeader,
  missingParameter,
  modelNotFound,
  modelNotSupported,
  nestingTooDeep,
  noAvailableProvider,
  providerKeyUnavailable,
  providerNotConfigured,
  providersCoolingDown,
  rateLimitExceeded,
  reportOf,
  requestHeadersTooLarge,
  requestTimeout,
  requestTooLarge,
  responseNotFound,
  responseTooDeep,
  responseTooLarge,
  statusOf,
  storeUnavailable,
  streamCut,
  streamInterrupted,
  stringTooLong,
  tooManyProperties,
  UpstreamError,
  UpstreamTimeoutError,
  unknownPath,
  unsupportedParameter,
  unsupportedValue,
  upstreamRedirect,
  upstreamReported,
  upstreamTimeout,
  upstreamUnavailable,
} from "../lib/errors.ts";
import { bedrockError } from "../lib/providers/bedrock-errors.ts";
import { registerSecret } from "../lib/secrets/redact.ts";

/** A key the process holds, of no recognisable shape: only the registry can find it. */
const HELD = "Np4kW7zQ1xR8vB3mT6yH9cL2fJ5dS0gA";
registerSecret(HELD);

const bedrockCall = { providerId: "b", region: "us-east-1", modelId: "m", warn() {} };
/** A Bedrock service exception as the SDK throws it. */
function serviceException(name: string, message: string, status: number): Error {
  return Object.assign(new Error(message), { name, $fault: "client", $metadata: { httpStatusCode: status } });
}
function fromBedrock(error: Error, extension?: unknown): GatewayError {
  const mapped = bedrockError(error, { ...bedrockCall, extension });
  if (!(mapped instanceof GatewayError)) throw new Error("expected a GatewayError");
  return mapped;
}

/**
 * Every code the gateway emits, built by its one constructor, with the OpenAI body a caller saw
 * before issue 17, written out by hand. Typed as a record over `ErrorCode`: a code added to the
 * union without a line here does not compile.
 */
const CASES: Record<ErrorCode, { build: () => GatewayError; status: number; body: string }> = {
  invalid_json: {
    build: () => invalidJson("The request body must be a JSON object."),
    status: 400,
    body: '{"error":{"message":"The request body must be a JSON object.","type":"invalid_request_error","param":null,"code":"invalid_json"}}',
  },
  nesting_too_deep: {
    build: () => nestingTooDeep(64),
    status: 400,
    body: '{"error":{"message":"The request body nests arrays and objects deeper than the limit of 64 levels.","type":"invalid_request_error","param":null,"code":"nesting_too_deep"}}',
  },
  missing_required_parameter: {
    build: () => missingParameter("model"),
    status: 400,
    body: '{"error":{"message":"Missing required parameter: \'model\'.","type":"invalid_request_error","param":"model","code":"missing_required_parameter"}}',
  },
  invalid_type: {
    build: () => invalidType("stream", "a boolean"),
    status: 400,
    body: '{"error":{"message":"Invalid type for \'stream\': expected a boolean.","type":"invalid_request_error","param":"stream","code":"invalid_type"}}',
  },
  invalid_value: {
    build: () => invalidValue("n", "'n' must be between 1 and 128, got 0."),
    status: 400,
    body: '{"error":{"message":"\'n\' must be between 1 and 128, got 0.","type":"invalid_request_error","param":"n","code":"invalid_value"}}',
  },
  unsupported_parameter: {
    build: () => unsupportedParameter("n", "'n' must be 1 for Amazon Bedrock targets."),
    status: 400,
    body: '{"error":{"message":"\'n\' must be 1 for Amazon Bedrock targets.","type":"invalid_request_error","param":"n","code":"unsupported_parameter"}}',
  },
  unsupported_value: {
    build: () => unsupportedValue("tool_choice", "'tool_choice' requires the hosted tool 'web_search'."),
    status: 400,
    body: '{"error":{"message":"\'tool_choice\' requires the hosted tool \'web_search\'.","type":"invalid_request_error","param":"tool_choice","code":"unsupported_value"}}',
  },
  object_above_max_properties: {
    build: () => tooManyProperties("metadata", "Invalid 'metadata': too many properties."),
    status: 400,
    body: '{"error":{"message":"Invalid \'metadata\': too many properties.","type":"invalid_request_error","param":"metadata","code":"object_above_max_properties"}}',
  },
  string_above_max_length: {
    build: () => stringTooLong("metadata", "Invalid 'metadata.k': longer than 512 characters."),
    status: 400,
    body: '{"error":{"message":"Invalid \'metadata.k\': longer than 512 characters.","type":"invalid_request_error","param":"metadata","code":"string_above_max_length"}}',
  },
  response_not_found: {
    build: () => responseNotFound("resp_1"),
    status: 404,
    body: '{"error":{"message":"Response with id \'resp_1\' not found.","type":"invalid_request_error","param":null,"code":"response_not_found"}}',
  },
  client_closed: {
    // Nobody reads it (the adapter drops a 499): the bytes main's edge wrote as a literal.
    build: () => clientClosed(),
    status: 499,
    body: '{"error":{"message":"client closed the request","type":"api_error","param":null,"code":"client_closed"}}',
  },
  invalid_path: {
    build: () => invalidPath("%E0%A4%A"),
    status: 400,
    body: '{"error":{"message":"The path segment \'%E0%A4%A\' is not valid percent-encoded UTF-8.","type":"invalid_request_error","param":null,"code":"invalid_path"}}',
  },
  missing_host_header: {
    build: () => missingHostHeader(),
    status: 400,
    body: '{"error":{"message":"The Host header is missing.","type":"invalid_request_error","param":null,"code":"missing_host_header"}}',
  },
  invalid_http_request: {
    build: () => invalidHttpRequest("HPE_INVALID_METHOD"),
    status: 400,
    body: '{"error":{"message":"The request is not valid HTTP/1.1 (HPE_INVALID_METHOD).","type":"invalid_request_error","param":null,"code":"invalid_http_request"}}',
  },
  expectation_failed: {
    build: () => expectationFailed(),
    status: 417,
    body: '{"error":{"message":"The Expect header is not supported, except for \'100-continue\'.","type":"invalid_request_error","param":null,"code":"expectation_failed"}}',
  },
  request_timeout: {
    build: () => requestTimeout({ headersTimeoutMs: 10_000, requestTimeoutMs: 30_000 }),
    status: 408,
    body: '{"error":{"message":"The request did not arrive in time: headers are allowed 10000 ms, the whole request 30000 ms.","type":"invalid_request_error","param":null,"code":"request_timeout"}}',
  },
  method_not_allowed: {
    build: () => methodNotAllowed("DELETE", { path: "/v1/chat/completions", allow: ["POST", "OPTIONS"] }),
    status: 405,
    body: '{"error":{"message":"Method DELETE is not allowed on /v1/chat/completions; use POST, OPTIONS.","type":"invalid_request_error","param":null,"code":"method_not_allowed"}}',
  },
  unknown_url: {
    build: () => unknownPath("GET", "/v2/nothing"),
    status: 404,
    body: '{"error":{"message":"Unknown path: GET /v2/nothing","type":"invalid_request_error","param":null,"code":"unknown_url"}}',
  },
  model_not_found: {
    build: () => modelNotFound("gpt-x"),
    status: 404,
    body: '{"error":{"message":"The model \'gpt-x\' does not exist or you do not have access to it.","type":"invalid_request_error","param":"model","code":"model_not_found"}}',
  },
  request_too_large: {
    build: () => requestTooLarge(1024),
    status: 413,
    body: '{"error":{"message":"The request body is larger than the limit of 1024 bytes.","type":"invalid_request_error","param":null,"code":"request_too_large"}}',
  },
  request_headers_too_large: {
    build: () => requestHeadersTooLarge(16384),
    status: 431,
    body: '{"error":{"message":"The request headers are larger than the limit of 16384 bytes.","type":"invalid_request_error","param":null,"code":"request_headers_too_large"}}',
  },
  context_length_exceeded: {
    // Handed back as the upstream sent it.
    build: () =>
      upstreamReported("p", "p: too long", {
        status: 400,
        action: "return",
        contextLength: true,
        passThrough: openAIPassThrough({
          error: {
            message: "too long",
            type: "invalid_request_error",
            param: "messages",
            code: "context_length_exceeded",
          },
        }),
      }),
    status: 400,
    body: '{"error":{"message":"too long","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}',
  },
  invalid_api_key: {
    build: () => invalidApiKey("Missing bearer key."),
    status: 401,
    body: '{"error":{"message":"Missing bearer key.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}',
  },
  auth_unavailable: {
    build: () => authUnavailable(new Error("table down")),
    status: 503,
    body: '{"error":{"message":"Client authentication is unavailable; retry later.","type":"api_error","param":null,"code":"auth_unavailable"}}',
  },
  rate_limit_exceeded: {
    build: () => rateLimitExceeded("Every provider for model 'm' is rate limited; retry later."),
    status: 429,
    body: '{"error":{"message":"Every provider for model \'m\' is rate limited; retry later.","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}',
  },
  budget_exceeded: {
    build: () => budgetExceeded("Budget reached.", { param: "daily", headers: { "retry-after": "60" } }),
    status: 429,
    body: '{"error":{"message":"Budget reached.","type":"insufficient_quota","param":"daily","code":"budget_exceeded"}}',
  },
  store_unavailable: {
    build: () => storeUnavailable(new Error("table down")),
    status: 503,
    body: '{"error":{"message":"Stored responses are unavailable; retry later.","type":"api_error","param":null,"code":"store_unavailable"}}',
  },
  model_not_supported: {
    build: () => modelNotSupported("m", "embeddings"),
    status: 400,
    body: '{"error":{"message":"The model \'m\' does not serve embeddings.","type":"invalid_request_error","param":"model","code":"model_not_supported"}}',
  },
  count_tokens_unsupported: {
    build: () => countTokensUnsupported("a", "no token count for m"),
    status: 501,
    body: '{"error":{"message":"a: no token count for m","type":"api_error","param":null,"code":"count_tokens_unsupported"}}',
  },
  limits_unavailable: {
    build: () => limitsUnavailable(new Error("table down")),
    status: 503,
    body: '{"error":{"message":"Rate limits cannot be checked right now; retry later.","type":"api_error","param":null,"code":"limits_unavailable"}}',
  },
  no_available_provider: {
    build: () => noAvailableProvider("m"),
    status: 503,
    body: '{"error":{"message":"No provider is configured and enabled for model \'m\'.","type":"api_error","param":null,"code":"no_available_provider"}}',
  },
  providers_cooling_down: {
    build: () => providersCoolingDown("m"),
    status: 503,
    body: '{"error":{"message":"Every provider for model \'m\' is cooling down after failures; retry later.","type":"api_error","param":null,"code":"providers_cooling_down"}}',
  },
  gateway_overloaded: {
    build: () => gatewayOverloaded({ model: "m" }),
    status: 503,
    body: '{"error":{"message":"The gateway has no free upstream connection for model \'m\'; retry shortly.","type":"api_error","param":null,"code":"gateway_overloaded"}}',
  },
  deadline_exceeded: {
    build: () => deadlineExceeded("no attempt was made"),
    status: 504,
    body: '{"error":{"message":"The request did not complete within its deadline; no attempt was made","type":"timeout_error","param":null,"code":"deadline_exceeded"}}',
  },
  upstream_timeout: {
    build: () => upstreamTimeout("m", "a: timed out"),
    status: 504,
    body: '{"error":{"message":"No provider could answer for model \'m\': a: timed out","type":"timeout_error","param":null,"code":"upstream_timeout"}}',
  },
  upstream_unavailable: {
    build: () => upstreamUnavailable("m", "a: 500"),
    status: 502,
    body: '{"error":{"message":"No provider could answer for model \'m\': a: 500","type":"api_error","param":null,"code":"upstream_unavailable"}}',
  },
  stream_interrupted: {
    build: () => streamInterrupted(12, streamCut("a", "stream ended without a finish reason")),
    status: 502,
    body: '{"error":{"message":"The answer was cut off after 12 characters and could not be completed: a: stream ended without a finish reason","type":"api_error","param":null,"code":"stream_interrupted"}}',
  },
  internal_error: {
    build: () => new InternalError(new TypeError("x"), "Internal server error (request id r1)."),
    status: 500,
    body: '{"error":{"message":"Internal server error (request id r1).","type":"api_error","param":null,"code":"internal_error"}}',
  },
  connect_timeout: {
    build: () => new UpstreamTimeoutError("a", "connect", 100),
    status: 504,
    body: '{"error":{"message":"a: timed out waiting for connect after 100 ms","type":"timeout_error","param":null,"code":"connect_timeout"}}',
  },
  headers_timeout: {
    build: () => new UpstreamTimeoutError("a", "headers", 100),
    status: 504,
    body: '{"error":{"message":"a: timed out waiting for headers after 100 ms","type":"timeout_error","param":null,"code":"headers_timeout"}}',
  },
  first_token_timeout: {
    build: () => new UpstreamTimeoutError("a", "first_token", 100),
    status: 504,
    body: '{"error":{"message":"a: timed out waiting for first token after 100 ms","type":"timeout_error","param":null,"code":"first_token_timeout"}}',
  },
  idle_timeout: {
    build: () => new UpstreamTimeoutError("a", "idle", 100),
    status: 504,
    body: '{"error":{"message":"a: timed out waiting for idle after 100 ms","type":"timeout_error","param":null,"code":"idle_timeout"}}',
  },
  response_timeout: {
    build: () => new UpstreamTimeoutError("a", "response", 100),
    status: 504,
    body: '{"error":{"message":"a: timed out waiting for response after 100 ms","type":"timeout_error","param":null,"code":"response_timeout"}}',
  },
  deadline_timeout: {
    build: () => new UpstreamTimeoutError("gateway", "deadline", 100),
    status: 504,
    body: '{"error":{"message":"gateway: timed out waiting for deadline after 100 ms","type":"timeout_error","param":null,"code":"deadline_timeout"}}',
  },
  upstream_stream_cut: {
    build: () => streamCut("a", "stream sent [DONE] before a finish reason"),
    status: 502,
    body: '{"error":{"message":"a: stream sent [DONE] before a finish reason","type":"api_error","param":null,"code":"upstream_stream_cut"}}',
  },
  upstream_empty_stream: {
    build: () => emptyStream("a"),
    status: 502,
    body: '{"error":{"message":"a: stream ended before any content","type":"api_error","param":null,"code":"upstream_empty_stream"}}',
  },
  upstream_invalid_response: {
    build: () => invalidResponse("a", "a body that is not JSON"),
    status: 502,
    body: '{"error":{"message":"a answered HTTP 200 with a body that is not JSON","type":"api_error","param":null,"code":"upstream_invalid_response"}}',
  },
  upstream_redirect: {
    build: () => upstreamRedirect("a", 302),
    status: 502,
    body: '{"error":{"message":"a answered HTTP 302 (a redirect, not followed): its configured base URL is likely wrong","type":"api_error","param":null,"code":"upstream_redirect"}}',
  },
  upstream_connection_error: {
    build: () =>
      connectionFailed("a", "a: connection failed (ECONNRESET)", { retry: true, cause: undefined }),
    status: 502,
    body: '{"error":{"message":"a: connection failed (ECONNRESET)","type":"api_error","param":null,"code":"upstream_connection_error"}}',
  },
  response_too_large: {
    build: () => responseTooLarge("a", 1024, undefined),
    status: 502,
    body: '{"error":{"message":"a: the answer exceeded the gateway\'s limit of 1024 bytes (maxResponseBytes)","type":"api_error","param":null,"code":"response_too_large"}}',
  },
  response_too_deep: {
    build: () => responseTooDeep("a", 64),
    status: 502,
    body: '{"error":{"message":"a: the answer nests JSON deeper than the gateway relays (maxNestingDepth 64)","type":"api_error","param":null,"code":"response_too_deep"}}',
  },
  continuation_diverged: {
    build: () => continuationDiverged("a"),
    status: 502,
    body: '{"error":{"message":"a: restarted answer does not begin with the text already sent","type":"api_error","param":null,"code":"continuation_diverged"}}',
  },
  provider_not_configured: {
    build: () => providerNotConfigured("a"),
    status: 502,
    body: '{"error":{"message":"a: no API key configured","type":"api_error","param":null,"code":"provider_not_configured"}}',
  },
  provider_key_unavailable: {
    build: () => providerKeyUnavailable("a", Object.assign(new Error("x"), { name: "ThrottlingException" })),
    status: 502,
    body: '{"error":{"message":"a: its API key could not be read (ThrottlingException)","type":"api_error","param":null,"code":"provider_key_unavailable"}}',
  },
  upstream_error: {
    // Handed back as the upstream sent it.
    build: () =>
      upstreamReported("a", "refused", {
        status: 422,
        action: "return",
        passThrough: openAIPassThrough({
          error: { message: "bad tool", type: "invalid_request_error", param: "tools", code: "bad_tool" },
        }),
      }),
    status: 422,
    body: '{"error":{"message":"bad tool","type":"invalid_request_error","param":"tools","code":"bad_tool"}}',
  },
  bedrock_feature_denied: {
    build: () =>
      fromBedrock(
        serviceException(
          "AccessDeniedException",
          "not authorized: bedrock:ApplyGuardrail on guardrail/g1",
          403,
        ),
        {
          guardrailConfig: { guardrailIdentifier: "g1", guardrailVersion: "1" },
        },
      ),
    status: 403,
    body: '{"error":{"message":"The guardrail in \'bedrock.guardrailConfig\' cannot be applied: the gateway\'s role lacks permission to apply it (bedrock:ApplyGuardrail).","type":"permission_error","param":"bedrock.guardrailConfig","code":"bedrock_feature_denied"}}',
  },
  bedrock_resource_not_found: {
    build: () =>
      fromBedrock(serviceException("ResourceNotFoundException", "guardrail g1 not found", 404), {
        guardrailConfig: { guardrailIdentifier: "g1", guardrailVersion: "1" },
      }),
    status: 400,
    body: '{"error":{"message":"The guardrail in \'bedrock.guardrailConfig\' was not found: check its identifier, its version and that it exists in the region of the route\'s Bedrock targets.","type":"invalid_request_error","param":"bedrock.guardrailConfig","code":"bedrock_resource_not_found"}}',
  },
  bedrock_access_denied: {
    build: () =>
      fromBedrock(serviceException("AccessDeniedException", "You don't have access to the model", 403)),
    status: 403,
    body: '{"error":{"message":"b (Bedrock us-east-1): the gateway does not have access to the target\'s model (model access or the role\'s permissions); the fix is logged","type":"permission_error","param":null,"code":"bedrock_access_denied"}}',
  },
  bedrock_model_not_found: {
    build: () => fromBedrock(serviceException("ResourceNotFoundException", "Model not found", 404)),
    status: 404,
    body: '{"error":{"message":"b (Bedrock us-east-1): the target\'s model does not exist in this region (or needs an inference profile id); the fix is logged","type":"invalid_request_error","param":null,"code":"bedrock_model_not_found"}}',
  },
};

describe("error codes (issue 17)", () => {
  it.each(Object.entries(CASES))(
    "%s: its constructor builds it, with its kind",
    (code, { build, status }) => {
      const error = build();

      expect(error).toBeInstanceOf(GatewayError);
      expect(error.code).toBe(code);
      expect(error.status).toBe(status);
      expect(error.kind).toBe(kindOf(code as ErrorCode, status));
    },
  );

  it.each(Object.entries(CASES))(
    "%s: an OpenAI caller sees the bytes it saw before",
    (_code, { build, status, body }) => {
      const error = build();

      expect(statusOf(error)).toBe(status);
      expect(JSON.stringify(openAIErrorBody(reportOf(error)))).toBe(body);
    },
  );

  it("has a line in the table for every code", () => {
    expect(Object.keys(CASES).sort()).toEqual(Object.keys(KIND_OF_CODE).sort());
  });

  it("gives each kind; an upstream's own error takes its status's", () => {
    expect(modelNotFound("m").kind).toBe("not_found");
    expect(rateLimitExceeded("x").kind).toBe("rate_limit");
    expect(streamCut("a", "cut").kind).toBe("upstream");
    expect(new UpstreamTimeoutError("a", "idle", 1).kind).toBe("timeout");
    expect(new InternalError(undefined).kind).toBe("internal");
    const reported = (status: number) => upstreamReported("a", "x", { status, action: "failover" }).kind;
    expect([400, 401, 402, 403, 404, 408, 413, 429, 500, 503, 529].map(reported)).toEqual([
      "invalid_request",
      "authentication",
      "quota",
      "permission",
      "not_found",
      "timeout",
      "request_too_large",
      "rate_limit",
      "upstream",
      "unavailable",
      "overloaded",
    ]);
  });

  it("keeps the Allow header of a 405 and the Retry-After of an overload", () => {
    expect(methodNotAllowed("PUT", { path: "/health", allow: ["GET", "HEAD"] }).headers).toEqual({
      allow: "GET, HEAD",
    });
    expect(methodNotAllowed("CONNECT", { reason: "this is not a proxy" }).message).toBe(
      "Method CONNECT is not allowed: this is not a proxy.",
    );
    expect(gatewayOverloaded({ model: "m" }).headers).toEqual({ "retry-after": "1" });
    expect(gatewayOverloaded({ providerId: "a", maxSockets: 4, cause: undefined })).toMatchObject({
      action: "failover",
      retryAfterMs: 1000,
      headers: { "retry-after": "1" },
      providerId: "a",
    });
  });
});

/** What an OpenAI caller is sent for `error`. */
const openAI = (error: unknown) => openAIErrorBody(reportOf(error));

describe("the OpenAI serializer", () => {
  it("removes held keys and key shapes from every field of a passed-through upstream body", () => {
    const error = new UpstreamError("refused", {
      status: 400,
      code: "upstream_error",
      providerId: "p",
      passThrough: openAIPassThrough({
        error: {
          message: `bad key ${HELD} and gsk_7Hq2Lr9XwVb4Nc8Tz1Km5Pd3Fy6Js0AeGuRi`,
          type: `type_${HELD}`,
          param: `param.${HELD}`,
          code: `sk_live_51HxYzAbCdEfGhIj`,
        },
      }),
    });

    expect(openAI(error)).toEqual({
      error: {
        message: "bad key [redacted] and [redacted]",
        type: "type_[redacted]",
        param: "param.[redacted]",
        code: "[redacted]",
      },
    });
  });

  it("removes held keys from the gateway's own errors, and keeps null fields null", () => {
    const error = new GatewayError(`failed with ${HELD}`, { status: 502, code: "upstream_unavailable" });

    expect(openAI(error)).toEqual({
      error: {
        message: "failed with [redacted]",
        type: "api_error",
        param: null,
        code: "upstream_unavailable",
      },
    });
  });

  it("never shows an unknown error's message", () => {
    expect(openAI(new Error(`boom ${HELD}`))).toEqual({
      error: { message: "Internal server error", type: "api_error", param: null, code: null },
    });
    expect(statusOf(new ClientAbortError())).toBe(500);
  });

  it("ignores a pass-through of another dialect: the gateway's own words go out", () => {
    const error = upstreamReported("p", "p refused", {
      status: 400,
      action: "return",
      passThrough: {
        dialect: "anthropic-messages",
        body: { type: "error", error: { type: "x", message: "m" } },
      },
    });

    expect(openAI(error)).toEqual({
      error: { message: "p refused", type: "invalid_request_error", param: null, code: "upstream_error" },
    });
  });
});
