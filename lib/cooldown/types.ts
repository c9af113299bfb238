export type CooldownReason = "rate_limited" | "failing";

export interface Cooldown {
  until: number;
  reason: CooldownReason;
  /** When the bench was set, where known: a request already in flight then is not refused by a rate limit. */
  since?: number;
}

/** A provider's own fault on one attempt (the caller decides whose fault it was before recording it). */
export interface TargetFailure {
  status: number;
  retryAfterMs: number | undefined;
}

/**
 * Which targets (provider + upstream model) are benched, and until when. Kept per target, not per
 * provider: rate limits and many outages are per model, and one model's trouble must not bench its
 * siblings on the same provider. This one lives in the process; the shared store adds the fleet's
 * benches from the health table.
 */
export interface CooldownStore {
  /** The cooldown in force for this target at `now`, if any. */
  get(target: string, now: number): Cooldown | undefined;
  /** Counts a provider fault; returns the bench it caused, if it caused one. */
  recordFailure(target: string, failure: TargetFailure, now: number): Cooldown | undefined;
  recordSuccess(target: string, now: number): void;
  /**
   * Claims the one trial request (half-open) a failure-benched target may take while benched, for a
   * caller who would otherwise be refused. False while another request holds it.
   */
  tryTrial(target: string, now: number): boolean;
  /** Frees the trial slot when the trial ended with no verdict on the target (not its fault either way). */
  endTrial(target: string): void;
}
