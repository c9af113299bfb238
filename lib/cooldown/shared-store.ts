import type { Logger } from "../deps.ts";
import { createOutageLog } from "../outage-log.ts";
import type { Cooldown, CooldownStore } from "./types.ts";

/**
 * What the shared store reads of the fleet's benches: the health table's cached view
 * (`lib/health/view.ts` provides it). Declared here, not imported, so `cooldown` depends on no
 * `health` module and `health` can depend on `cooldown`.
 */
export interface FleetCooldownView {
  /** A bench some instance wrote to the table, in force at `now`. */
  cooldown(target: string, now: number): Cooldown | undefined;
  /** Whether the table counts failures for the target since it last answered. */
  hasFailures(target: string): boolean;
}

/** Where the shared store writes the benches it decides (the health table: `lib/health/types.ts`). */
export interface FleetCooldownTable {
  recordTargetFailure(target: string, bench: Cooldown, now: number): Promise<void>;
  clearTarget(target: string, now: number, keepRateLimit: boolean): Promise<void>;
}

export interface SharedCooldownOptions {
  now: () => number;
  /**
   * A bench shorter than this is not written to the table: other instances would read it only at
   * their next cache refresh (the health cache TTL), after it ended.
   */
  minSharedMs: number;
}

/**
 * Cooldowns shared by the fleet: this process's own breaker (effective at once) plus the benches
 * other instances wrote to the health table (effective at the next cache refresh). Each instance
 * judges a target on what it saw itself; a bench it decides is written to the table in the
 * background, so the request never waits on DynamoDB, and healthy traffic costs no writes.
 */
export function createSharedCooldownStore(
  local: CooldownStore,
  view: FleetCooldownView,
  store: FleetCooldownTable,
  logger: Logger,
  options: SharedCooldownOptions,
): CooldownStore {
  // Targets this process benched in the table: its next success there clears them, even if the
  // cached view was read before the bench reached the table.
  const dirty = new Map<string, number>();
  // Writes for one target go out in order, so a recovery never lands before the bench it clears.
  const queues = new Map<string, Promise<void>>();
  // While the table is down every bench would warn: one line per outage, with a count at its end.
  const outage = createOutageLog({
    logger,
    failing: "health table write failed",
    recovered: "health table written again",
    unit: "writes",
    now: options.now,
  });
  const enqueue = (target: string, what: string, write: () => Promise<void>) => {
    const next = (queues.get(target) ?? Promise.resolve()).then(write).then(
      () => outage.succeeded(),
      (error: unknown) => outage.failed({ what, target, error: (error as Error)?.message }),
    );
    queues.set(target, next);
    void next.finally(() => {
      if (queues.get(target) === next) queues.delete(target);
    });
  };
  const publish = (target: string, bench: Cooldown, now: number) => {
    if (bench.until - now < options.minSharedMs) return;
    if ((dirty.get(target) ?? 0) >= bench.until) return;
    dirty.set(target, bench.until);
    enqueue(target, "target bench", () => store.recordTargetFailure(target, bench, now));
  };
  return {
    get: (target, now) => local.get(target, now) ?? view.cooldown(target, now),
    recordFailure(target, failure, now) {
      const bench = local.recordFailure(target, failure, now);
      if (bench !== undefined) publish(target, bench, now);
      return bench;
    },
    recordSuccess(target, now) {
      local.recordSuccess(target, now);
      if (dirty.delete(target) || view.hasFailures(target)) {
        enqueue(target, "target recovery", () => store.clearTarget(target, now, false));
      }
    },
    tryTrial: (target, now) => local.tryTrial(target, now),
    endTrial: (target) => local.endTrial(target),
  };
}
