import type { GatewayConfig } from "../config/types.ts";
import type { Deps } from "../deps.ts";
import { targetKey } from "../gateway/cooldown.ts";
import type { Provider } from "../providers/types.ts";
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
}

/**
 * The health job: probes each provider with its configured probe under the policy's timeout, folds
 * the result into the provider's state with a conditional write, appends a history record with a
 * TTL, and, on a good check, clears the live-traffic cooldowns of that provider's targets (a
 * rate-limit cooldown runs its course: the provider asked for that time).
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
  let timer: NodeJS.Timeout | undefined;
  let busy = false;

  async function checkOne(provider: Provider, benched: ReadonlySet<string>): Promise<HealthCheckOutcome> {
    const result = await provider.healthCheck({ timeoutMs: policy.timeoutMs });
    const now = deps.now();
    try {
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
      return { providerId: provider.id, state, ok: result.ok, error: result.error };
    } catch (error) {
      deps.logger.warn({
        msg: "health result not written",
        provider: provider.id,
        error: (error as Error)?.message,
      });
      return { providerId: provider.id, state: undefined, ok: result.ok, error: result.error };
    }
  }

  const allTargets = [...new Set([...targetsOf.values()].flat())];
  /** One read per run of which targets live traffic has marked; if it fails, try clearing them all. */
  async function targetsWithFailures(): Promise<ReadonlySet<string>> {
    try {
      const { targets } = await store.read([], allTargets);
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
      const outcomes = await Promise.all(options.providers().map((p) => checkOne(p, benched)));
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
        void checker.runOnce().finally(() => {
          busy = false;
        });
      };
      tick();
      timer = setInterval(tick, policy.intervalMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
  };
  return checker;
}
