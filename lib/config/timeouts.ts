import type { Timeouts } from "./types.ts";

/** The same timeouts, none longer than `limitMs` (what is left of a deadline or a probe budget). */
export function capTimeouts(timeouts: Timeouts, limitMs: number): Timeouts {
  const cap = Math.max(1, limitMs);
  return {
    connectMs: Math.min(timeouts.connectMs, cap),
    headersMs: Math.min(timeouts.headersMs, cap),
    firstTokenMs: Math.min(timeouts.firstTokenMs, cap),
    idleMs: Math.min(timeouts.idleMs, cap),
    responseMs: Math.min(timeouts.responseMs, cap),
  };
}
