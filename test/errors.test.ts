import { describe, expect, it } from "vitest";
import { GatewayError, toOpenAIErrorBody, UpstreamError } from "../lib/errors.ts";
import { registerSecret } from "../lib/secrets/redact.ts";

/** A key the process holds, of no recognisable shape: only the registry can find it. */
const HELD = "Np4kW7zQ1xR8vB3mT6yH9cL2fJ5dS0gA";
registerSecret(HELD);

describe("toOpenAIErrorBody", () => {
  it("removes held keys and key shapes from every field of a passed-through upstream body", () => {
    const error = new UpstreamError("refused", {
      status: 400,
      providerId: "p",
      upstreamBody: {
        error: {
          message: `bad key ${HELD} and gsk_7Hq2Lr9XwVb4Nc8Tz1Km5Pd3Fy6Js0AeGuRi`,
          type: `type_${HELD}`,
          param: `param.${HELD}`,
          code: `sk_live_51HxYzAbCdEfGhIj`,
        },
      },
    });

    expect(toOpenAIErrorBody(error)).toEqual({
      error: {
        message: "bad key [redacted] and [redacted]",
        type: "type_[redacted]",
        param: "param.[redacted]",
        code: "[redacted]",
      },
    });
  });

  it("removes held keys from the gateway's own errors, and keeps null fields null", () => {
    const error = new GatewayError(`failed with ${HELD}`, { status: 502 });

    expect(toOpenAIErrorBody(error)).toEqual({
      error: { message: "failed with [redacted]", type: "api_error", param: null, code: null },
    });
  });

  it("never shows an unknown error's message", () => {
    expect(toOpenAIErrorBody(new Error(`boom ${HELD}`)).error.message).toBe("Internal server error");
  });
});
