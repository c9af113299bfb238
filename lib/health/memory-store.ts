import type { HealthPolicy } from "../config/types.ts";
import { nextState } from "./transition.ts";
import {
  type CheckRecord,
  type HealthStore,
  initialState,
  type ProviderState,
  type TargetState,
} from "./types.ts";

/**
 * Health kept in this process only: right for a single long-running process and for tests. Fleets
 * (Lambda) use the DynamoDB store, which has the same behaviour.
 */
export function createMemoryHealthStore(health: HealthPolicy): HealthStore {
  const providers = new Map<string, ProviderState>();
  const targets = new Map<string, TargetState>();
  const histories = new Map<string, CheckRecord[]>();
  const state = (id: string) => providers.get(id) ?? initialState(id);
  const bump = (id: string, change: Partial<ProviderState>) => {
    const current = state(id);
    providers.set(id, { ...current, ...change, version: current.version + 1 });
  };

  return {
    async read(providerIds, targetKeys) {
      return {
        providers: new Map(
          providerIds.flatMap((id) => (providers.has(id) ? [[id, { ...state(id) }] as const] : [])),
        ),
        targets: new Map(
          targetKeys.flatMap((t) => {
            const v = targets.get(t);
            return v ? [[t, { ...v }] as const] : [];
          }),
        ),
      };
    },
    async applyCheck(providerId, result, now) {
      const next = nextState(state(providerId), result, health, now);
      providers.set(providerId, next);
      return next;
    },
    async appendHistory(record) {
      const list = histories.get(record.providerId) ?? [];
      list.unshift(record);
      list.length = Math.min(list.length, 100);
      histories.set(record.providerId, list);
    },
    async history(providerId, limit, now) {
      return (histories.get(providerId) ?? []).filter((r) => r.ttl * 1000 > now).slice(0, limit);
    },
    async recordTargetFailure(target, bench) {
      const current = targets.get(target);
      const keep = (current?.cooldownUntil ?? 0) >= bench.until;
      targets.set(target, {
        target,
        failures: (current?.failures ?? 0) + 1,
        cooldownUntil: keep ? current?.cooldownUntil : bench.until,
        reason: keep ? current?.reason : bench.reason,
      });
    },
    async clearTarget(target, now, keepRateLimit) {
      const current = targets.get(target);
      if (!current) return;
      if (keepRateLimit && current.reason === "rate_limited" && (current.cooldownUntil ?? 0) > now) return;
      targets.delete(target);
    },
    async setWeight(providerId, weight) {
      bump(providerId, { weight });
    },
    async setEnabled(providerId, enabled) {
      bump(providerId, { enabled });
    },
  };
}
