import type { Cooldown, CooldownReason } from "../cooldown/types.ts";
import type { HealthResult } from "../providers/types.ts";

/** `unknown` until the first check; the balancer treats it like healthy (no news is good news). */
export type HealthStatus = "healthy" | "degraded" | "unhealthy" | "unknown";

/** One provider's record in the health table. */
export interface ProviderState {
  providerId: string;
  status: HealthStatus;
  consecutiveFailures: number;
  consecutiveSuccesses: number;
  lastCheckAt: number | undefined;
  latencyMs: number | undefined;
  ttftMs: number | undefined;
  /** A short summary, never a key or a prompt. */
  lastError: string | undefined;
  /** Set by an operator; overrides the configured weight. */
  weight: number | undefined;
  /** Set by an operator; `false` takes the provider out of every route. */
  enabled: boolean | undefined;
  /** Bumped by every write; conditional writes compare it. */
  version: number;
}

/** Passive health of one target (provider + upstream model), written by live traffic. */
export interface TargetState {
  target: string;
  /** Benches written by any instance since the target last answered. */
  failures: number;
  cooldownUntil: number | undefined;
  reason: CooldownReason | undefined;
}

/** One probe's outcome (`Provider.healthCheck`), as the history keeps it. */
export interface CheckRecord extends HealthResult {
  providerId: string;
  at: number;
  /** Epoch seconds after which the record is to be ignored (and DynamoDB may delete it). */
  ttl: number;
}

export interface HealthSnapshot {
  providers: Map<string, ProviderState>;
  targets: Map<string, TargetState>;
}

/**
 * Where health lives: DynamoDB in AWS and locally (dynalite), or memory for a single process. Every
 * write is safe against concurrent writers (conditional updates or atomic counters).
 */
export interface HealthStore {
  read(providerIds: readonly string[], targets: readonly string[]): Promise<HealthSnapshot>;
  /** Folds one check into the provider's state, retrying on a concurrent write. Returns the new state. */
  applyCheck(providerId: string, result: HealthResult, now: number): Promise<ProviderState>;
  appendHistory(record: CheckRecord): Promise<void>;
  /** Newest first; records whose TTL has passed are left out (DynamoDB deletes them late). */
  history(providerId: string, limit: number, now: number): Promise<CheckRecord[]>;
  /**
   * Shares a bench one instance's breaker decided with the fleet (a longer one in force is kept) and
   * counts it.
   */
  recordTargetFailure(target: string, bench: Cooldown, now: number): Promise<void>;
  /** Clears a target's failures; with `keepRateLimit`, a rate-limit cooldown still in force stays. */
  clearTarget(target: string, now: number, keepRateLimit: boolean): Promise<void>;
  setWeight(providerId: string, weight: number): Promise<void>;
  setEnabled(providerId: string, enabled: boolean): Promise<void>;
}

export function initialState(providerId: string): ProviderState {
  return {
    providerId,
    status: "unknown",
    consecutiveFailures: 0,
    consecutiveSuccesses: 0,
    lastCheckAt: undefined,
    latencyMs: undefined,
    ttftMs: undefined,
    lastError: undefined,
    weight: undefined,
    enabled: undefined,
    version: 0,
  };
}
