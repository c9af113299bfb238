import type { Cooldown } from "../cooldown/types.ts";
import {
  deadlineExceeded,
  type GatewayError,
  gatewayOverloaded,
  noAvailableProvider,
  providersCoolingDown,
  rateLimitExceeded,
  UpstreamTimeoutError,
  upstreamTimeout,
  upstreamUnavailable,
} from "../errors.ts";
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
  if (candidateCount === 0) return noAvailableProvider(model);
  if (failures.some(isDeadline)) return deadlineExceeded(summary(failures.filter((f) => !isDeadline(f))));
  const waits = [
    ...cooling.map((c) => c.until - now),
    ...failures.filter((f) => f.retryAfterMs !== undefined).map((f) => f.retryAfterMs as number),
  ];
  const retryAfter =
    waits.length > 0
      ? { "retry-after": String(Math.max(1, Math.ceil(Math.min(...waits) / 1000))) }
      : undefined;
  if (failures.length > 0 && failures.every((f) => f.code === "gateway_overloaded"))
    return gatewayOverloaded(retryAfter ? { model, headers: retryAfter } : { model });
  const allRateLimited =
    failures.every((f) => f.status === 429) && cooling.every((c) => c.reason === "rate_limited");
  if (failures.length === 0 || allRateLimited) {
    const rateLimited =
      allRateLimited && (failures.length > 0 || cooling.some((c) => c.reason === "rate_limited"));
    return rateLimited
      ? rateLimitExceeded(
          `Every provider for model '${model}' is rate limited; retry later.`,
          retryAfter ? { headers: retryAfter } : {},
        )
      : providersCoolingDown(model, retryAfter);
  }
  const allTimeouts = failures.every((f) => f instanceof UpstreamTimeoutError);
  return (allTimeouts ? upstreamTimeout : upstreamUnavailable)(model, summary(failures), retryAfter);
}

export function isDeadline(error: GatewayError): boolean {
  return error instanceof UpstreamTimeoutError && error.phase === "deadline";
}

function summary(failures: GatewayError[]): string {
  return failures.map((f) => f.message).join("; ") || "no attempt was made";
}
