import type { RetryPolicy } from "../config/types.ts";

/**
 * Exponential backoff with *full* jitter: a wait drawn uniformly from [0, min(max, base * 2^(n-1))].
 * Many Lambda environments retry the same rate-limited provider at once; full jitter spreads those
 * retries the most and does the least total work of the common schemes (AWS Architecture Blog,
 * "Exponential Backoff And Jitter"), and unlike decorrelated jitter it needs no state between calls.
 */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/**
 * The wait an upstream asked for, in ms: `retry-after-ms` (OpenAI) wins over `retry-after`, which is
 * either delta-seconds or an HTTP-date (RFC 9110 §10.2.3). Unparseable or negative values count as
 * absent.
 */
export function parseRetryAfter(
  headers: Record<string, string | string[] | undefined>,
  now: number,
): number | undefined {
  const ms = first(headers["retry-after-ms"]);
  if (ms !== undefined) {
    const value = Number(ms);
    if (ms.trim() !== "" && Number.isFinite(value) && value >= 0) return Math.ceil(value);
  }
  const after = first(headers["retry-after"])?.trim();
  if (!after) return undefined;
  if (/^\d+(\.\d+)?$/.test(after)) return Math.ceil(Number(after) * 1000);
  const date = Date.parse(after);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
