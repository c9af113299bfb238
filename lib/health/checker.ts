import type { GatewayConfig } from "../config/types.ts";
import { targetKey } from "../cooldown/target.ts";
import { withDeadline } from "../deadline.ts";
import type { Deps, Timer } from "../deps.ts";
import { createOutageLog } from "../outage-log.ts";
import type { HealthResult, Provider } from "../providers/types.ts";
import type { HealthStore, ProviderState } from "./types.ts";

export interface HealthCheckOutcome {
  providerId: string;
  state: ProviderState | undefined;
  ok: boolean;
  error: string | undefined;
}

export interface HealthChecker {
  /** Checks every provider once, in parallel; each result is written as soon as it is known. */
  runOnce(): Promise<HealthCheckOutcome[]>;
  /** Runs `runOnce` every `intervalMs` until `stop()`. */
  start(): void;
  stop(): void;
}

export interface HealthCheckerOptions {
  config: GatewayConfig;
  providers: () => Provider[];
  store: HealthStore;
  deps: Deps;
  /**
   * Longest one provider's writes (state, history, cleared targets), or the run's first read, may
   * take before they are abandoned, so a store that hangs delays a run, never stops the job. A
   * backstop behind the DynamoDB client's own timeouts: default 10 s.
   */
  storeTimeoutMs?: number;
}

/** See {@link HealthCheckerOptions.storeTimeoutMs}. */
export const DEFAULT_STORE_TIMEOUT_MS = 10_000;
/** Time a probe gets past its own timeout before the checker gives up on it and counts a failure. */
const PROBE_GRACE_MS = 1_000;

/**
 * The health job: probes each provider with its configured probe under the policy's timeout, folds
 * the result into the provider's state with a conditional write, appends a history record with a
 * TTL, and, on a good check, clears the live-traffic cooldowns of that provider's targets (a
 * rate-limit cooldown runs its course: the provider asked for that time).
 *
 * Every step of a run has a deadline (the probe, the store's read and writes), so a run always
 * ends and the next interval runs; runs never overlap. A table that cannot be written is logged
 * once per outage, not once per provider per run.
 */
export function createHealthChecker(options: HealthCheckerOptions): HealthChecker {
  const { config, store, deps } = options;
  const policy = config.health;
  const targetsOf = new Map<string, string[]>();
  for (const route of config.models) {
    for (const t of route.targets) {
      const list = targetsOf.get(t.provider) ?? [];
      const key = targetKey(t.provider, t.model);
      if (!list.includes(key)) list.push(key);
      targetsOf.set(t.provider, list);
    }
  }
  let timer: Timer | undefined;
  let busy = false;
  const storeTimeoutMs = options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
  const notWritten = createOutageLog({
    logger: deps.logger,
    failing: "health result not written",
    recovered: "health results written again",
    unit: "writes",
    now: deps.now,
  });

  /** The provider's probe, bounded: a probe that ignores its own timeout counts as a failed check. */
  async function probe(provider: Provider): Promise<HealthResult> {
    const limit = policy.timeoutMs + PROBE_GRACE_MS;
    try {
      return await withDeadline(
        provider.healthCheck({ timeoutMs: policy.timeoutMs }),
        limit,
        `health check of ${provider.id}`,
        deps.setTimer,
      );
    } catch (error) {
      return {
        ok: false,
        status: undefined,
        latencyMs: limit,
        ttftMs: undefined,
        error: (error as Error).message,
      };
    }
  }

  /** Writes one check's result; resolves to the new state, or rejects (also on the deadline). */
  async function write(
    provider: Provider,
    result: HealthResult,
    benched: ReadonlySet<string>,
    now: number,
  ): Promise<ProviderState> {
    const state = await store.applyCheck(provider.id, result, now);
    await store.appendHistory({
      ...result,
      providerId: provider.id,
      at: now,
      ttl: Math.floor(now / 1000) + policy.historyTtlHours * 3600,
    });
    if (result.ok) {
      // Only targets with live failures are written: a conditional write that finds nothing to
      // clear still costs a write.
      const toClear = (targetsOf.get(provider.id) ?? []).filter((t) => benched.has(t));
      await Promise.all(toClear.map((t) => store.clearTarget(t, now, true)));
    }
    return state;
  }

  async function checkOne(
    provider: Provider,
    benched: ReadonlySet<string>,
  ): Promise<HealthCheckOutcome & { written: boolean }> {
    const result = await probe(provider);
    const now = deps.now();
    try {
      const state = await withDeadline(
        write(provider, result, benched, now),
        storeTimeoutMs,
        "health table write",
        deps.setTimer,
      );
      return { providerId: provider.id, state, ok: result.ok, error: result.error, written: true };
    } catch (error) {
      notWritten.failed({ provider: provider.id, error: (error as Error)?.message });
      return {
        providerId: provider.id,
        state: undefined,
        ok: result.ok,
        error: result.error,
        written: false,
      };
    }
  }

  const allTargets = [...new Set([...targetsOf.values()].flat())];
  /** One read per run of which targets live traffic has marked; if it fails, try clearing them all. */
  async function targetsWithFailures(): Promise<ReadonlySet<string>> {
    try {
      const { targets } = await withDeadline(
        store.read([], allTargets),
        storeTimeoutMs,
        "health table read",
        deps.setTimer,
      );
      return new Set(
        [...targets.values()]
          .filter((t) => t.failures > 0 || t.cooldownUntil !== undefined)
          .map((t) => t.target),
      );
    } catch {
      return new Set(allTargets);
    }
  }

  const checker: HealthChecker = {
    async runOnce() {
      const benched = await targetsWithFailures();
      const results = await Promise.all(options.providers().map((p) => checkOne(p, benched)));
      // The outage ends at the first run whose every write landed: a run where some land and some
      // do not is still the same outage, not a new one each time.
      if (results.length > 0 && results.every((r) => r.written)) notWritten.succeeded();
      const outcomes = results.map(({ written: _, ...outcome }) => outcome);
      deps.logger.info({
        msg: "health check",
        providers: outcomes.map((o) => ({
          id: o.providerId,
          ok: o.ok,
          status: o.state?.status,
          error: o.error,
        })),
      });
      return outcomes;
    },
    start() {
      if (timer) return;
      const tick = () => {
        // Never overlap two runs: a slow run delays the next, it does not pile up.
        if (busy) return;
        busy = true;
        // Every step of a run has a deadline, so `busy` always clears. A run that throws (a bug)
        // is logged, not left as an unhandled rejection that would end the process.
        void checker
          .runOnce()
          .catch((error: unknown) =>
            deps.logger.error({ msg: "health check run failed", error: (error as Error)?.message }),
          )
          .finally(() => {
            busy = false;
          });
      };
      // An interval from a one-shot timer that re-arms itself as it fires. Unref'd: a checker that
      // was never stopped does not keep the process alive.
      const interval = deps.setTimer(() => {
        interval.refresh();
        tick();
      }, policy.intervalMs);
      interval.unref();
      timer = interval;
      tick();
    },
    stop() {
      timer?.clear();
      timer = undefined;
    },
  };
  return checker;
}
