import type { CallersPolicy, CooldownPolicy, HealthPolicy, RetryPolicy, Timeouts } from "./types.ts";

/**
 * The defaults of the configuration document, where a section or a field is left out. Apart from
 * the validator (lib/setup/validate.ts) so that what reads a default (the health CLI, the smoke
 * check, tests) needs neither the validator nor the provider registry it imports.
 */

export const DEFAULT_TIMEOUTS: Timeouts = {
  connectMs: 3_000,
  headersMs: 15_000,
  firstTokenMs: 15_000,
  idleMs: 30_000,
  responseMs: 120_000,
};

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 2,
  baseDelayMs: 250,
  maxDelayMs: 4_000,
  maxRetryAfterMs: 10_000,
};

export const DEFAULT_COOLDOWN: CooldownPolicy = {
  failureRateThreshold: 0.5,
  minRequests: 10,
  windowMs: 10_000,
  cooldownMs: 30_000,
  maxCooldownMs: 300_000,
};

export const DEFAULT_HEALTH: HealthPolicy = {
  intervalMs: 30_000,
  timeoutMs: 5_000,
  failureThreshold: 3,
  recoveryThreshold: 2,
  degradedLatencyMs: 3_000,
  degradedTtftMs: 2_000,
  historyTtlHours: 24,
  cacheTtlMs: 5_000,
};

export const DEFAULT_CALLERS: CallersPolicy = {
  cacheTtlMs: 30_000,
  flushIntervalMs: 2_000,
  failOpen: true,
  limitTimeoutMs: 500,
  prices: {},
  metricsPerKey: false,
  defaultOutputReservation: 4096,
  concurrencyLeaseMs: 900_000,
};
