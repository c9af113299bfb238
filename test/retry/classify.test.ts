import { describe, expect, it } from "vitest";
import { passedThroughBody } from "../../lib/dialects/openai-chat/errors.ts";
import { ClientAbortError, UpstreamTimeoutError } from "../../lib/errors.ts";
import {
  HttpNetworkError,
  HttpPoolSaturatedError,
  HttpResponseTooLargeError,
  HttpTimeoutError,
} from "../../lib/http/client.ts";
import {
  actionForStatus,
  errorFromStatus,
  errorFromStreamEvent,
  toUpstreamError,
} from "../../lib/retry/classify.ts";

describe("classification", () => {
  it.each([
    [408, "retry"],
    [409, "retry"],
    [429, "retry"],
    [500, "retry"],
    [502, "retry"],
    [503, "retry"],
    [504, "retry"],
    [529, "retry"],
    [501, "failover"],
    [301, "failover"],
    [302, "failover"],
    [307, "failover"],
    [308, "failover"],
    [401, "failover"],
    [402, "failover"],
    [403, "failover"],
    [404, "failover"],
    [400, "return"],
    [413, "return"],
    [422, "return"],
  ])("HTTP %i -> %s", (status, action) => {
    expect(actionForStatus(status)).toBe(action);
  });

  it("keeps a provider's 4xx body for the caller, key fragments redacted", () => {
    const error = errorFromStatus(
      "p",
      400,
      {},
      JSON.stringify({
        error: { message: "bad key sk-abcdef123456", type: "invalid_request_error", code: "x" },
      }),
      0,
    );
    expect(error.action).toBe("return");
    expect(passedThroughBody(error.passThrough)?.error.code).toBe("x");
    expect(error).toMatchObject({ code: "upstream_error", kind: "invalid_request", upstreamCode: "x" });
    expect(error.message).not.toContain("sk-abcdef");
  });

  it("reads Retry-After only on 429, 503 and 529", () => {
    expect(errorFromStatus("p", 429, { "retry-after": "3" }, "", 0).retryAfterMs).toBe(3000);
    expect(errorFromStatus("p", 529, { "retry-after": "2" }, "", 0).retryAfterMs).toBe(2000);
    expect(errorFromStatus("p", 500, { "retry-after": "3" }, "", 0).retryAfterMs).toBeUndefined();
  });

  it("retries Anthropic's 529 overloaded_error (issue 18)", () => {
    const body = JSON.stringify({
      type: "error",
      error: { type: "overloaded_error", message: "Overloaded" },
    });
    const error = errorFromStatus("anthropic", 529, {}, body, 0);
    expect(error.action).toBe("retry");
    expect(error.status).toBe(529);
    expect(error.kind).toBe("overloaded");
  });

  it("does not blame the caller for the gateway's own bad key", () => {
    const error = errorFromStatus(
      "p",
      401,
      {},
      JSON.stringify({ error: { message: "Incorrect API key" } }),
      0,
    );
    expect(error.action).toBe("failover");
    expect(error.status).toBe(401);
    expect(error.message).toContain("rejected the gateway's credentials");
  });

  it("hands a 403 that refuses the caller's input back to it, and fails a key's 403 over", () => {
    // OpenRouter: "403: Your chosen model requires moderation and your input was flagged".
    const flagged = errorFromStatus(
      "p",
      403,
      {},
      JSON.stringify({
        error: {
          code: 403,
          message: "Request refused",
          metadata: { reasons: ["harassment"], flagged_input: "...", provider_name: "x", model_slug: "y" },
        },
      }),
      0,
    );
    expect(flagged).toMatchObject({ status: 403, action: "return" });
    expect(passedThroughBody(flagged.passThrough)?.error.message).toBe("Request refused");
    const worded = errorFromStatus(
      "p",
      403,
      {},
      JSON.stringify({
        error: { message: "model-x requires moderation. Your input was flagged for harassment" },
      }),
      0,
    );
    expect(worded.action).toBe("return");
    const key = errorFromStatus(
      "p",
      403,
      {},
      JSON.stringify({ error: { message: "Project access denied" } }),
      0,
    );
    expect(key.action).toBe("failover");
  });

  it("maps transport failures", () => {
    const reset = toUpstreamError(
      "p",
      new HttpNetworkError(Object.assign(new Error("x"), { code: "ECONNRESET" }), true),
    );
    expect(reset).toMatchObject({ action: "retry", status: 502 });
    const midBody = toUpstreamError(
      "p",
      new HttpNetworkError(Object.assign(new Error("x"), { code: "ECONNRESET" }), false),
    );
    expect(midBody).toMatchObject({ action: "failover" });
    const timeout = toUpstreamError("p", new HttpTimeoutError("headers", 100));
    expect(timeout).toBeInstanceOf(UpstreamTimeoutError);
    expect(timeout).toMatchObject({ action: "failover", status: 504, code: "headers_timeout" });
    expect(toUpstreamError("p", Object.assign(new Error("aborted"), { name: "AbortError" }))).toBeInstanceOf(
      ClientAbortError,
    );
  });

  it("classifies error events inside a stream", () => {
    expect(
      errorFromStreamEvent("p", { message: "Rate limit reached", type: "rate_limit_error" }),
    ).toMatchObject({ status: 429, action: "retry", kind: "rate_limit", code: "upstream_error" });
    expect(errorFromStreamEvent("p", { message: "bad", type: "invalid_request_error" })).toMatchObject({
      status: 400,
      action: "return",
    });
    expect(errorFromStreamEvent("p", "boom")).toMatchObject({ status: 502, action: "retry" });
  });
});

describe("the upstream's codes, typed (issue 17)", () => {
  it("says context_length_exceeded in the gateway's code when the upstream does, from a status or an event", () => {
    const body = {
      message: "This model's maximum context length is 8192 tokens",
      type: "invalid_request_error",
      code: "context_length_exceeded",
    };
    const status = errorFromStatus("p", 400, {}, JSON.stringify({ error: body }), 0);
    expect(status).toMatchObject({
      code: "context_length_exceeded",
      kind: "request_too_large",
      action: "return",
    });
    expect(passedThroughBody(status.passThrough)).toEqual({ error: { ...body, param: null } });
    const event = errorFromStreamEvent("p", body);
    expect(event).toMatchObject({ code: "context_length_exceeded", action: "return" });
  });

  it("decides context_length_exceeded from words alone (DeepSeek sends no code), on a 400 or 413 only", () => {
    const worded = (status: number, message: string) =>
      errorFromStatus(
        "p",
        status,
        {},
        JSON.stringify({ error: { message, type: "invalid_request_error" } }),
        0,
      );
    const deepseek = worded(
      400,
      "This model's maximum context length is 65536 tokens. However, you requested 70000",
    );
    expect(deepseek).toMatchObject({ code: "context_length_exceeded", action: "return" });
    // The caller sees the upstream's body as it came: no code added to it.
    expect(passedThroughBody(deepseek.passThrough)?.error.code).toBeNull();
    expect(worded(413, "prompt is too long").code).toBe("context_length_exceeded");
    expect(worded(400, "temperature must be at most 2").code).toBe("upstream_error");
    // The engine falls back to a larger window only for a 400 or 413, whatever the body says.
    const coded = JSON.stringify({ error: { message: "x", code: "context_length_exceeded" } });
    expect(errorFromStatus("p", 422, {}, coded, 0).code).toBe("upstream_error");
    const event = errorFromStreamEvent("p", { message: "prompt is too long", type: "invalid_request_error" });
    expect(event).toMatchObject({ code: "context_length_exceeded", action: "return" });
  });

  it("keeps the upstream's own code apart from the gateway's, and reads its kind from the status", () => {
    const body = JSON.stringify({
      error: { message: "no money", type: "insufficient_quota", code: "insufficient_quota" },
    });
    const error = errorFromStatus("p", 402, {}, body, 0);
    expect(error).toMatchObject({
      code: "upstream_error",
      kind: "quota",
      upstreamCode: "insufficient_quota",
      action: "failover",
    });
    expect(error.passThrough).toBeUndefined();
  });
});

describe("odd outcomes (issue 9)", () => {
  it("fails a redirect over as a 502 that names the likely cause, never as the 3xx", () => {
    const error = errorFromStatus("p", 302, { location: "https://elsewhere.example/v1" }, "<html>", 0);
    expect(error).toMatchObject({ status: 502, action: "failover", code: "upstream_redirect" });
    expect(error.passThrough).toBeUndefined();
    expect(error.message).toContain("HTTP 302");
    expect(error.message).toContain("base URL is likely wrong");
    expect(error.message).not.toContain("elsewhere.example");
  });

  it("marks a saturated connection pool as the gateway's overload, to fail over and retry later", () => {
    const error = toUpstreamError("p", new HttpPoolSaturatedError(512));
    expect(error).toMatchObject({
      status: 503,
      kind: "overloaded",
      code: "gateway_overloaded",
      action: "failover",
      retryAfterMs: 1000,
      providerId: "p",
      headers: { "retry-after": "1" },
    });
  });

  it("returns an answer past the size limit to the caller: another provider would do the same", () => {
    const error = toUpstreamError("p", new HttpResponseTooLargeError(16 * 1024 * 1024));
    expect(error).toMatchObject({ status: 502, code: "response_too_large", action: "return" });
    expect(error.message).toContain("16777216 bytes");
  });
});
