import type { Cooldown } from "../cooldown/types.ts";
import { withDeadline } from "../deadline.ts";
import type { Deps, Logger, Timer } from "../deps.ts";
import { createOutageLog } from "../outage-log.ts";
import type { HealthSnapshot, HealthStore, ProviderState } from "./types.ts";

/**
 * The request path's copy of the health table. Reads go through a short cache so a request costs
 * no DynamoDB read while the copy is fresh; a stale copy is served while one refresh runs in the
 * background. If the table cannot be read, the last known state (or, before any, the configured
 * defaults) is served and the failure logged: DynamoDB trouble must not take the gateway down.
 * A read that hangs is abandoned after `readTimeoutMs`, so the next refresh starts a new one.
 */
export interface HealthView {
  /** Resolves at once while the copy is fresh; waits (bounded) only when there is no copy yet. */
  refresh(): Promise<void>;
  provider(id: string): ProviderState | undefined;
  cooldown(target: string, now: number): Cooldown | undefined;
  /** Whether live traffic has recorded failures for this target that a success should clear. */
  hasFailures(target: string): boolean;
  /** Table reads made so far (for the benchmark and tests). */
  readonly reads: number;
}

export interface HealthViewOptions {
  store: HealthStore;
  providerIds: readonly string[];
  targets: readonly string[];
  ttlMs: number;
  /** Longest wait for the very first read before serving defaults. */
  firstReadTimeoutMs: number;
  /**
   * Longest one table read may take before it is abandoned and counted as a failure; the next
   * refresh (a TTL later) then starts a new read instead of joining the stuck one. A backstop behind
   * the DynamoDB client's own timeouts (see createDynamoClient): default 5 s.
   */
  readTimeoutMs?: number;
  now: () => number;
  setTimer: Deps["setTimer"];
  logger: Logger;
}

/** See {@link HealthViewOptions.readTimeoutMs}. */
export const DEFAULT_READ_TIMEOUT_MS = 5_000;

export function createHealthView(options: HealthViewOptions): HealthView {
  let snapshot: HealthSnapshot | undefined;
  let fetchedAt = Number.NEGATIVE_INFINITY;
  let inflight: Promise<void> | undefined;
  let reads = 0;
  const readTimeoutMs = options.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
  const outage = createOutageLog({
    logger: options.logger,
    failing: "health table unreadable; serving last known state",
    recovered: "health table readable again",
    unit: "reads",
    now: options.now,
  });

  const load = (): Promise<void> => {
    inflight ??= (async () => {
      try {
        reads++;
        snapshot = await withDeadline(
          options.store.read(options.providerIds, options.targets),
          readTimeoutMs,
          "health table read",
          options.setTimer,
        );
        outage.succeeded();
      } catch (error) {
        outage.failed({ error: (error as Error)?.message, hasLastKnown: snapshot !== undefined });
      } finally {
        // A failed read is also "fresh" for a TTL: retrying on every request would hammer a sick table.
        fetchedAt = options.now();
        inflight = undefined;
      }
    })();
    return inflight;
  };

  return {
    async refresh() {
      if (options.now() - fetchedAt < options.ttlMs) return;
      const pending = load();
      // Serve the copy we have while it refreshes, unless there is none or caching is off (TTL 0).
      // Once a read has failed, nothing is waited for: requests are not slowed by a table known sick.
      if (!outage.failing && (snapshot === undefined || options.ttlMs === 0)) {
        let timer: Timer | undefined;
        await Promise.race([
          pending,
          new Promise<void>((r) => {
            timer = options.setTimer(r, options.firstReadTimeoutMs);
          }),
        ]);
        timer?.clear();
      }
    },
    provider: (id) => snapshot?.providers.get(id),
    cooldown(target, now) {
      const state = snapshot?.targets.get(target);
      if (state?.cooldownUntil === undefined || state.cooldownUntil <= now) return undefined;
      return { until: state.cooldownUntil, reason: state.reason ?? "failing" };
    },
    hasFailures: (target) => (snapshot?.targets.get(target)?.failures ?? 0) > 0,
    get reads() {
      return reads;
    },
  };
}
