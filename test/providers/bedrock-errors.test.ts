import { describe, expect, it } from "vitest";
import { ClientAbortError, GatewayError, InternalError, UpstreamTimeoutError } from "../../lib/errors.ts";
import { isContextLengthError } from "../../lib/gateway/outcome.ts";
import { bedrockError } from "../../lib/providers/bedrock-errors.ts";

/** An error shaped as the SDK's service exceptions are (name, $fault, $metadata). */
function serviceError(name: string, message: string, status: number): Error {
  return Object.assign(new Error(message), {
    name,
    $fault: status < 500 ? "client" : "server",
    $metadata: { httpStatusCode: status },
  });
}

function classify(error: unknown) {
  const warnings: Array<Record<string, unknown>> = [];
  const result = bedrockError(error, {
    providerId: "bedrock-east",
    region: "us-east-1",
    modelId: "anthropic.claude-test",
    warn: (fields) => warnings.push(fields),
  });
  return { result, warnings };
}

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
    expect(result).toMatchObject({ type: "rate_limit_error", code: "rate_limit_exceeded" });
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

  it("returns a validation error to the caller, as context_length_exceeded when the prompt does not fit", () => {
    const { result: tooLong } = classify(
      serviceError("ValidationException", "Input is too long for requested model.", 400),
    );
    expect(tooLong).toMatchObject({ status: 400, action: "return", code: "context_length_exceeded" });
    expect(isContextLengthError(tooLong as GatewayError)).toBe(true);
    const { result: other, warnings } = classify(
      serviceError("ValidationException", "temperature: must be less than or equal to 1", 400),
    );
    expect(other).toMatchObject({ status: 400, action: "return", code: null });
    expect((other as GatewayError).upstreamBody?.error.message).toContain("temperature");
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
