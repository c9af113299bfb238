import { describe, expect, it } from "vitest";
import { type ErrorCode, GatewayError, UpstreamTimeoutError } from "../../lib/errors.ts";
import { bedrockError } from "../../lib/providers/bedrock-errors.ts";
import { countsAgainstTarget, faultOf } from "../../lib/retry/blame.ts";
import { errorFromStatus } from "../../lib/retry/classify.ts";

const when = { now: 1_000, deadline: 10_000 };
const failed = (code: ErrorCode, action: "retry" | "failover" | "return" = "failover", status = 502) =>
  new GatewayError("x", { status, code, action });

describe("whose fault a failed attempt was", () => {
  it.each([
    "gateway_overloaded",
    "response_too_large",
    "internal_error",
    "provider_key_unavailable",
    "provider_not_configured",
    "continuation_diverged",
  ] as const)("%s is the gateway's", (code) => {
    expect(faultOf(failed(code), when)).toBe("gateway");
  });

  it("a 4xx handed back is the caller's", () => {
    expect(faultOf(failed("context_length_exceeded", "return", 400), when)).toBe("caller");
  });

  it("the request's own deadline is the caller's, whatever phase it cut", () => {
    expect(faultOf(new UpstreamTimeoutError("gateway", "deadline", 5), when)).toBe("caller");
    expect(
      faultOf(new UpstreamTimeoutError("p", "first_token", 9_000), { now: 10_000, deadline: 10_000 }),
    ).toBe("caller");
  });

  it("the provider's silence, errors and broken answers are the provider's", () => {
    for (const phase of ["connect", "headers", "first_token", "idle"] as const) {
      expect(faultOf(new UpstreamTimeoutError("p", phase, 500), when)).toBe("provider");
    }
    expect(faultOf(failed("upstream_stream_cut"), when)).toBe("provider");
    expect(faultOf(failed("upstream_error", "retry", 503), when)).toBe("provider");
    expect(faultOf(failed("upstream_error", "failover", 502), when)).toBe("provider");
  });

  it("a whole answer not in by responseMs is the caller's (it asked for it at once), Bedrock's limit too", () => {
    expect(faultOf(new UpstreamTimeoutError("p", "response", 120_000), when)).toBe("caller");
    const modelTimeout = Object.assign(new Error("Model has timed out in processing the request."), {
      name: "ModelTimeoutException",
      $fault: "client",
      $metadata: { httpStatusCode: 408 },
    });
    const mapped = bedrockError(modelTimeout, { providerId: "b", region: "r", modelId: "m", warn() {} });
    expect(faultOf(mapped as GatewayError, when)).toBe("caller");
  });

  it.each([
    ["bedrock_access_denied", 403],
    ["bedrock_model_not_found", 404],
    ["bedrock_model_not_found", 400],
    ["upstream_redirect", 502],
    // The upstream's own 401 (the gateway's key), 402 (its credit), 403 and 404 (its route): by kind.
    ["upstream_error", 401],
    ["upstream_error", 402],
    ["upstream_error", 403],
    ["upstream_error", 404],
  ] as const)("a failed-over %s (%s) is the configuration's", (code, status) => {
    expect(faultOf(failed(code, "failover", status), when)).toBe("config");
  });

  it("an upstream's own code never passes for the gateway's (issue 17): its 503 saying internal_error is its fault", () => {
    for (const code of ["internal_error", "gateway_overloaded", "provider_not_configured"]) {
      const body = JSON.stringify({ error: { message: "busy", type: "server_error", code } });
      const error = errorFromStatus("p", 503, {}, body, 0);
      expect(error.code).toBe("upstream_error");
      expect(error.upstreamCode).toBe(code);
      expect(faultOf(error, when)).toBe("provider");
    }
  });

  it("a 403 handed back (a feature the caller chose) is the caller's, not the configuration's", () => {
    expect(faultOf(failed("bedrock_feature_denied", "return", 403), when)).toBe("caller");
  });

  it("only the provider's and the configuration's faults count against the target", () => {
    expect(countsAgainstTarget("provider")).toBe(true);
    expect(countsAgainstTarget("config")).toBe(true);
    expect(countsAgainstTarget("caller")).toBe(false);
    expect(countsAgainstTarget("gateway")).toBe(false);
  });
});
