import { describe, expect, it } from "vitest";
import { GatewayError, UpstreamTimeoutError } from "../../lib/errors.ts";
import { faultOf } from "../../lib/retry/blame.ts";

const when = { now: 1_000, deadline: 10_000 };
const failed = (code: string | null, action: "retry" | "failover" | "return" = "failover", status = 502) =>
  new GatewayError("x", { status, code, action });

describe("whose fault a failed attempt was", () => {
  it.each([
    "gateway_overloaded",
    "response_too_large",
    "internal_error",
    "provider_key_unavailable",
    "provider_not_configured",
    "continuation_diverged",
  ])("%s is the gateway's", (code) => {
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
    expect(faultOf(new UpstreamTimeoutError("p", "first_token", 500), when)).toBe("provider");
    expect(faultOf(failed("upstream_stream_cut"), when)).toBe("provider");
    expect(faultOf(failed(null, "retry", 503), when)).toBe("provider");
  });
});
