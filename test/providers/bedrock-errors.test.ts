import { describe, expect, it } from "vitest";
import { passedThroughBody } from "../../lib/dialects/openai-chat/errors.ts";
import { ClientAbortError, GatewayError, InternalError, UpstreamTimeoutError } from "../../lib/errors.ts";
import { bedrockError } from "../../lib/providers/bedrock-errors.ts";
import { redactSecrets } from "../../lib/secrets/redact.ts";

/** An error shaped as the SDK's service exceptions are (name, $fault, $metadata). */
function serviceError(name: string, message: string, status: number): Error {
  return Object.assign(new Error(message), {
    name,
    $fault: status < 500 ? "client" : "server",
    $metadata: { httpStatusCode: status },
  });
}

/** `extension`: the caller's `bedrock` field, as the request carried it. */
function classify(error: unknown, extension?: unknown) {
  const warnings: Array<Record<string, unknown>> = [];
  const result = bedrockError(error, {
    providerId: "bedrock-east",
    region: "us-east-1",
    modelId: "anthropic.claude-test",
    extension,
    warn: (fields) => warnings.push(fields),
  });
  return { result, warnings };
}

const GUARDRAIL = { guardrailConfig: { guardrailIdentifier: "gr-abc123", guardrailVersion: "1" } };
/** AWS's text for a role without bedrock:ApplyGuardrail: the role's ARN and the account id. */
const APPLY_GUARDRAIL_DENIED =
  "User: arn:aws:sts::123456789012:assumed-role/gateway-chat-role/fn is not authorized to perform: bedrock:ApplyGuardrail on resource: arn:aws:bedrock:us-east-1:123456789012:guardrail/gr-abc123 because no identity-based policy allows the bedrock:ApplyGuardrail action";
const INVOKE_DENIED =
  "User: arn:aws:sts::123456789012:assumed-role/gateway-chat-role/fn is not authorized to perform: bedrock:InvokeModel on resource: arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-test because no identity-based policy allows the bedrock:InvokeModel action";

describe("bedrockError", () => {
  it.each([
    ["ThrottlingException", 429, 429, "retry"],
    ["ServiceQuotaExceededException", 400, 429, "retry"],
    ["ServiceUnavailableException", 503, 503, "retry"],
    ["ModelNotReadyException", 429, 503, "retry"],
    ["InternalServerException", 500, 500, "retry"],
    ["ModelErrorException", 424, 502, "failover"],
  ])("%s → HTTP %s is status %s, action %s", (name, httpStatus, status, action) => {
    const { result } = classify(serviceError(name, "x", httpStatus));
    expect(result).toBeInstanceOf(GatewayError);
    expect(result).toMatchObject({ status, action, providerId: "bedrock-east" });
  });

  it("makes a throttle a rate limit, so the cooldown treats it as one", () => {
    const { result } = classify(serviceError("ThrottlingException", "Too many requests", 429));
    expect(result).toMatchObject({
      status: 429,
      kind: "rate_limit",
      code: "upstream_error",
      upstreamCode: "ThrottlingException",
    });
  });

  it("makes model timeouts and stream errors timeouts, failed over", () => {
    for (const name of ["ModelTimeoutException", "ModelStreamErrorException"]) {
      const { result } = classify(serviceError(name, "slow", 408));
      expect(result).toBeInstanceOf(UpstreamTimeoutError);
      expect(result).toMatchObject({ status: 504, action: "failover" });
    }
  });

  it.each([
    [
      "AccessDeniedException",
      "You don't have access to the model with the specified model ID.",
      403,
      "Model access",
    ],
    ["ResourceNotFoundException", "Could not resolve the foundation model", 404, "inference profile"],
    [
      "ValidationException",
      "Invocation of model ID anthropic.claude-test with on-demand throughput isn't supported. Retry your request with the ID or ARN of an inference profile",
      400,
      "inference profile",
    ],
  ])("fails %s over with one log line naming the fix", (name, message, status, fix) => {
    const { result, warnings } = classify(serviceError(name, message, status));
    expect(result).toMatchObject({ action: "failover" });
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]?.fix)).toContain(fix);
    expect(warnings[0]).toMatchObject({
      provider: "bedrock-east",
      region: "us-east-1",
      model: "anthropic.claude-test",
    });
  });

  describe("access denied: a feature the caller chose, or the model the configuration names", () => {
    it("hands a guardrail the role cannot apply back to the caller as a 403, in our words", () => {
      const { result, warnings } = classify(
        serviceError("AccessDeniedException", APPLY_GUARDRAIL_DENIED, 403),
        GUARDRAIL,
      );
      expect(result).toMatchObject({
        status: 403,
        kind: "permission",
        code: "bedrock_feature_denied",
        param: "bedrock.guardrailConfig",
        action: "return",
        message:
          "The guardrail in 'bedrock.guardrailConfig' cannot be applied: the gateway's role lacks permission to apply it (bedrock:ApplyGuardrail).",
      });
      expect((result as GatewayError).passThrough).toBeUndefined();
      // The operator's line names the fix; Bedrock's own text is kept there only.
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ field: "bedrock.guardrailConfig", provider: "bedrock-east" });
      expect(String(warnings[0]?.fix)).toContain("bedrock:ApplyGuardrail");
      expect(String(warnings[0]?.detail)).toContain("ApplyGuardrail");
    });

    it("still reads a guardrail denial as the caller's when its identifier looks like a model", () => {
      const crafted = {
        guardrailConfig: { guardrailIdentifier: "foundation-model/x", guardrailVersion: "1" },
      };
      const message = APPLY_GUARDRAIL_DENIED.replace("guardrail/gr-abc123", "guardrail/foundation-model/x");
      const { result } = classify(serviceError("AccessDeniedException", message, 403), crafted);
      expect(result).toMatchObject({ action: "return", param: "bedrock.guardrailConfig" });
    });

    it("blames another feature field the caller chose when the denial does not name the model", () => {
      const { result } = classify(
        serviceError("AccessDeniedException", "Access denied for this feature.", 403),
        { performanceConfig: { latency: "optimized" } },
      );
      expect(result).toMatchObject({ status: 403, action: "return", param: "bedrock.performanceConfig" });
      expect((result as GatewayError).message).not.toContain("Access denied for this feature");
    });

    it.each([
      ["with a guardrail in the request", INVOKE_DENIED, GUARDRAIL],
      [
        "with a guardrail in the request",
        "You don't have access to the model with the specified model ID.",
        GUARDRAIL,
      ],
      ["from a health probe (no caller fields)", APPLY_GUARDRAIL_DENIED, undefined],
      ["from a plain request", "Access denied.", {}],
    ])("fails a denial of the routed model over as the configuration's, %s", (_, message, extension) => {
      const { result, warnings } = classify(serviceError("AccessDeniedException", message, 403), extension);
      expect(result).toMatchObject({ status: 403, code: "bedrock_access_denied", action: "failover" });
      // The message may reach a caller (in the summary when every target failed): no ARN, no account.
      expect((result as GatewayError).message).not.toMatch(/arn:|123456789012/);
      expect((result as GatewayError).message).toContain("bedrock-east (Bedrock us-east-1)");
      expect(warnings).toHaveLength(1);
      // The operator's warning carries AWS's own words (ARNs and account ids redacted by the logger's
      // redactor, as everywhere).
      expect(String(warnings[0]?.detail)).toBe(redactSecrets(message));
    });

    it("hands a guardrail that does not exist back to the caller as a 400", () => {
      const { result, warnings } = classify(
        serviceError(
          "ResourceNotFoundException",
          "The guardrail identifier or version provided in the request does not exist.",
          404,
        ),
        GUARDRAIL,
      );
      expect(result).toMatchObject({ status: 400, action: "return", param: "bedrock.guardrailConfig" });
      expect(warnings).toHaveLength(0);
    });
  });

  it("never reads the caller's own text, echoed back, as a broken target", () => {
    const { result, warnings } = classify(
      serviceError(
        "ValidationException",
        "Malformed input request: #: extraneous key [use an inference profile] is not permitted",
        400,
      ),
      { additionalModelRequestFields: { "use an inference profile": 1 } },
    );
    expect(result).toMatchObject({ status: 400, action: "return" });
    expect(warnings).toHaveLength(0);
  });

  it("returns a validation error to the caller, as context_length_exceeded when the prompt does not fit", () => {
    const { result: tooLong } = classify(
      serviceError("ValidationException", "Input is too long for requested model.", 400),
    );
    expect(tooLong).toMatchObject({ status: 400, action: "return", code: "context_length_exceeded" });
    const { result: other, warnings } = classify(
      serviceError("ValidationException", "temperature: must be less than or equal to 1", 400),
    );
    expect(other).toMatchObject({ status: 400, action: "return", code: "upstream_error" });
    expect(passedThroughBody((other as GatewayError).passThrough)?.error.code).toBeNull();
    expect(passedThroughBody((other as GatewayError).passThrough)?.error.message).toContain("temperature");
    expect(warnings).toHaveLength(0);
  });

  it("retries a connection failure, keeps the caller's abort, and never blames Bedrock for our own bug", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    expect(classify(refused).result).toMatchObject({
      status: 502,
      action: "retry",
      code: "upstream_connection_error",
    });
    const abort = Object.assign(new Error("aborted"), { name: "AbortError" });
    expect(classify(abort).result).toBeInstanceOf(ClientAbortError);
    expect(classify(new TypeError("x is undefined")).result).toBeInstanceOf(InternalError);
  });

  it("names missing credentials as a configuration fault", () => {
    const missing = Object.assign(new Error("Could not load credentials from any providers"), {
      name: "CredentialsProviderError",
    });
    const { result, warnings } = classify(missing);
    expect(result).toMatchObject({ action: "failover", code: "provider_not_configured" });
    expect(warnings).toHaveLength(1);
  });
});
