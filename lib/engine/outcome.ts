import type { Cooldown } from "../cooldown/types.ts";
import { GatewayError, UpstreamTimeoutError } from "../errors.ts";
import type { EngineCall } from "./run.ts";

/**
 * The error for a request no candidate answered: every one failed, was cooling down, or none could
 * be used. The status tells the caller what to do: 429/503 with `Retry-After` when waiting helps,
 * 504 when time ran out, 502 when providers failed.
 */
export function exhausted(
  call: EngineCall,
  candidateCount: number,
  failures: GatewayError[],
  cooling: Cooldown[],
  now: number,
): GatewayError {
  const model = call.route.name;
  if (candidateCount === 0) {
    return new GatewayError(`No provider is configured and enabled for model '${model}'.`, {
      status: 503,
      type: "api_error",
      code: "no_available_provider",
    });
  }
  const deadline = failures.find(isDeadline);
  if (deadline) {
    return new GatewayError(
      `The request did not complete within its deadline; ${summary(failures.filter((f) => !isDeadline(f)))}`,
      { status: 504, type: "timeout_error", code: "deadline_exceeded" },
    );
  }
  const waits = [
    ...cooling.map((c) => c.until - now),
    ...failures.filter((f) => f.retryAfterMs !== undefined).map((f) => f.retryAfterMs as number),
  ];
  const retryAfter =
    waits.length > 0
      ? { "retry-after": String(Math.max(1, Math.ceil(Math.min(...waits) / 1000))) }
      : undefined;
  if (failures.length > 0 && failures.every((f) => f.code === "gateway_overloaded")) {
    return new GatewayError(
      `The gateway has no free upstream connection for model '${model}'; retry shortly.`,
      {
        status: 503,
        type: "api_error",
        code: "gateway_overloaded",
        headers: retryAfter ?? { "retry-after": "1" },
      },
    );
  }
  const allRateLimited =
    failures.every((f) => f.status === 429) && cooling.every((c) => c.reason === "rate_limited");
  if (failures.length === 0 || allRateLimited) {
    const rateLimited =
      allRateLimited && (failures.length > 0 || cooling.some((c) => c.reason === "rate_limited"));
    return new GatewayError(
      rateLimited
        ? `Every provider for model '${model}' is rate limited; retry later.`
        : `Every provider for model '${model}' is cooling down after failures; retry later.`,
      {
        status: rateLimited ? 429 : 503,
        type: rateLimited ? "rate_limit_error" : "api_error",
        code: rateLimited ? "rate_limit_exceeded" : "providers_cooling_down",
        ...(retryAfter ? { headers: retryAfter } : {}),
      },
    );
  }
  const allTimeouts = failures.every((f) => f instanceof UpstreamTimeoutError);
  return new GatewayError(`No provider could answer for model '${model}': ${summary(failures)}`, {
    status: allTimeouts ? 504 : 502,
    type: allTimeouts ? "timeout_error" : "api_error",
    code: allTimeouts ? "upstream_timeout" : "upstream_unavailable",
    ...(retryAfter ? { headers: retryAfter } : {}),
  });
}

export function isDeadline(error: GatewayError): boolean {
  return error instanceof UpstreamTimeoutError && error.phase === "deadline";
}

function summary(failures: GatewayError[]): string {
  return failures.map((f) => f.message).join("; ") || "no attempt was made";
}

/**
 * Whether an upstream 400 says the prompt does not fit the model's context window. OpenAI sends the
 * code `context_length_exceeded`; DeepSeek and many OpenAI-compatible servers only say it in words.
 */
export function isContextLengthError(error: GatewayError): boolean {
  if (error.status !== 400 && error.status !== 413) return false;
  if (error.code === "context_length_exceeded") return true;
  const message = error.upstreamBody?.error.message ?? error.message;
  return /maximum context length|context length|context window|too many tokens|prompt is too long/i.test(
    message,
  );
}
