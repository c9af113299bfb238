import type { CooldownPolicy } from "../config/types.ts";
import type { GatewayError } from "../errors.ts";
import { cooldownFor } from "../health/transition.ts";

export type CooldownReason = "rate_limited" | "failing";

export interface Cooldown {
  until: number;
  reason: CooldownReason;
}

/**
 * Which targets (provider + upstream model) are benched, and until when. Kept per target, not per
 * provider: rate limits and many outages are per model, and one model's trouble must not bench its
 * siblings on the same provider. This one lives in the process; the health issue's DynamoDB store
 * implements the same interface to share it across the fleet.
 */
export interface CooldownStore {
  /** The cooldown in force for this target at `now`, if any. */
  get(target: string, now: number): Cooldown | undefined;
  recordFailure(target: string, error: GatewayError, now: number): void;
  recordSuccess(target: string, now: number): void;
}

export function targetKey(providerId: string, model: string): string {
  return `${providerId}/${model}`;
}

export function createMemoryCooldownStore(policy: CooldownPolicy): CooldownStore {
  const entries = new Map<string, { failures: number; cooldown: Cooldown | undefined }>();
  return {
    get(target, now) {
      const cooldown = entries.get(target)?.cooldown;
      return cooldown !== undefined && cooldown.until > now ? cooldown : undefined;
    },
    recordFailure(target, error, now) {
      // The caller's own mistakes (returned 4xx) say nothing about the target's health.
      if (error.action === "return") return;
      const entry = entries.get(target) ?? { failures: 0, cooldown: undefined };
      entry.failures++;
      // Still failing after a cooldown ended (half-open): the count is past the threshold, so it
      // is benched again at once.
      const cooldown = cooldownFor(
        { status: error.status, retryAfterMs: error.retryAfterMs },
        entry.failures,
        policy,
        now,
      );
      if (cooldown && cooldown.until > (entry.cooldown?.until ?? 0)) entry.cooldown = cooldown;
      entries.set(target, entry);
    },
    recordSuccess(target) {
      entries.delete(target);
    },
  };
}
