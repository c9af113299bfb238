import type { RetryPolicy } from "../config/types.ts";
import type { Deps } from "../deps.ts";
import { ClientAbortError, GatewayError } from "../errors.ts";
import { backoffDelay } from "./backoff.ts";

export interface RetryOptions {
  signal: AbortSignal;
  /** Absolute clock time after which no attempt starts and no wait is taken. */
  deadline: number;
  onAttemptFailed?: (error: GatewayError, attempt: number) => void;
  /** Fewer attempts than the policy allows (a half-open trial is one request). */
  maxAttempts?: number;
}

/**
 * Calls `call` until it succeeds, the error is not `retry`, the attempts are spent, or waiting would
 * pass the deadline. A `Retry-After` longer than `maxRetryAfterMs` is not waited for: the error is
 * thrown at once so the caller can fail over. The last error is rethrown as is; its `action` tells
 * the caller what to do next.
 */
export async function retry<T>(
  call: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  deps: Pick<Deps, "now" | "sleep" | "random">,
  options: RetryOptions,
): Promise<T> {
  const maxAttempts = Math.min(policy.maxAttempts, options.maxAttempts ?? policy.maxAttempts);
  for (let attempt = 1; ; attempt++) {
    try {
      return await call(attempt);
    } catch (thrown) {
      if (options.signal.aborted || thrown instanceof ClientAbortError) throw new ClientAbortError();
      if (!(thrown instanceof GatewayError)) throw thrown;
      options.onAttemptFailed?.(thrown, attempt);
      if (thrown.action !== "retry" || attempt >= maxAttempts) throw thrown;
      let wait: number;
      if (thrown.retryAfterMs !== undefined) {
        if (thrown.retryAfterMs > policy.maxRetryAfterMs) throw thrown;
        wait = thrown.retryAfterMs;
      } else {
        wait = backoffDelay(attempt, policy, deps.random);
      }
      if (deps.now() + wait >= options.deadline) throw thrown;
      try {
        await deps.sleep(wait, options.signal);
      } catch {
        throw new ClientAbortError();
      }
    }
  }
}
