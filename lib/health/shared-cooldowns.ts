import type { Logger } from "../deps.ts";
import type { CooldownStore } from "../gateway/cooldown.ts";
import type { HealthStore } from "./types.ts";
import type { HealthView } from "./view.ts";

/**
 * Cooldowns shared by the fleet: this process's own (effective at once) plus what the health table
 * says other instances saw (effective at the next cache refresh). Failures are written to the table
 * in the background, with atomic counters, so the request never waits on DynamoDB; a success is
 * written only when the table shows failures to clear, so healthy traffic costs no writes.
 */
export function createSharedCooldownStore(
  local: CooldownStore,
  view: HealthView,
  store: HealthStore,
  logger: Logger,
): CooldownStore {
  const background = (what: string, work: Promise<void>) =>
    work.catch((error: unknown) =>
      logger.warn({ msg: `health table write failed: ${what}`, error: (error as Error)?.message }),
    );
  return {
    get: (target, now) => local.get(target, now) ?? view.cooldown(target, now),
    recordFailure(target, error, now) {
      local.recordFailure(target, error, now);
      if (error.action === "return") return;
      void background(
        "target failure",
        store.recordTargetFailure(target, { status: error.status, retryAfterMs: error.retryAfterMs }, now),
      );
    },
    recordSuccess(target, now) {
      local.recordSuccess(target, now);
      if (view.hasFailures(target)) void background("target recovery", store.clearTarget(target, now, false));
    },
  };
}
