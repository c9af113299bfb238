import type { Logger } from "../deps.ts";
import type { CooldownStore } from "../gateway/cooldown.ts";
import type { HealthStore } from "./types.ts";
import type { HealthView } from "./view.ts";

/**
 * Cooldowns shared by the fleet: this process's own (effective at once) plus what the health table
 * says other instances saw (effective at the next cache refresh). Failures are written to the table
 * in the background, with atomic counters, so the request never waits on DynamoDB; a success is
 * written only when there are failures to clear, so healthy traffic costs no writes.
 */
export function createSharedCooldownStore(
  local: CooldownStore,
  view: HealthView,
  store: HealthStore,
  logger: Logger,
): CooldownStore {
  // Targets this process wrote failures for: its next success there clears them, even if the cached
  // view was read before the failure reached the table.
  const dirty = new Set<string>();
  // Writes for one target go out in order, so a recovery never lands before the failure it clears.
  const queues = new Map<string, Promise<void>>();
  const enqueue = (target: string, what: string, write: () => Promise<void>) => {
    const next = (queues.get(target) ?? Promise.resolve())
      .then(write)
      .catch((error: unknown) =>
        logger.warn({ msg: `health table write failed: ${what}`, target, error: (error as Error)?.message }),
      );
    queues.set(target, next);
    void next.finally(() => {
      if (queues.get(target) === next) queues.delete(target);
    });
  };
  return {
    get: (target, now) => local.get(target, now) ?? view.cooldown(target, now),
    recordFailure(target, error, now) {
      local.recordFailure(target, error, now);
      if (error.action === "return") return;
      dirty.add(target);
      enqueue(target, "target failure", () =>
        store.recordTargetFailure(target, { status: error.status, retryAfterMs: error.retryAfterMs }, now),
      );
    },
    recordSuccess(target, now) {
      local.recordSuccess(target, now);
      if (dirty.delete(target) || view.hasFailures(target)) {
        enqueue(target, "target recovery", () => store.clearTarget(target, now, false));
      }
    },
  };
}
