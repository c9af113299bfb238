import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { CallersPolicy } from "../config/types.ts";
import type { Deps, Logger } from "../deps.ts";
import { type CallerGate, createCallerAuth } from "./gate.ts";
import { createUsageLedger, type UsageLedger, type UsageMetric } from "./ledger.ts";
import { type CallerStore, createCallerStore } from "./store.ts";

export interface Callers {
  auth: CallerGate;
  ledger: UsageLedger;
  store: CallerStore;
}

export interface CallersOptions {
  client: DynamoDBClient;
  tableName: string;
  policy: CallersPolicy;
  now: () => number;
  logger: Logger;
  /**
   * The timers and random sources of {@link Deps} (the edge passes its whole `Deps`): the ledger's
   * flush timer, write timeouts and backoff jitter, the gate's table-call timeouts and slot ids.
   * Nothing in lib/callers falls back to the real clock, so tests run it on a fake one.
   */
  timers: Pick<Deps, "setTimer" | "sleep" | "random" | "newId">;
  legacyHashes?: () => Promise<readonly string[]>;
  /** Lambda: flush after each response. Otherwise a timer flushes every `policy.flushIntervalMs`. */
  flushAfterResponse?: boolean;
  metrics?: (metric: UsageMetric) => void;
  register?: (key: string) => void;
}

/**
 * The caller keys, the usage ledger and the limits on one table, wired together: the ledger's
 * flushes refresh the gate's view of each key's totals across the fleet.
 */
export function createCallers(options: CallersOptions): Callers {
  const store = createCallerStore(options.client, options.tableName);
  const deps = { ...options.timers, now: options.now, logger: options.logger };
  let gate: CallerGate | undefined;
  const ledger = createUsageLedger({
    client: options.client,
    tableName: options.tableName,
    prices: options.policy.prices,
    deps,
    onTotals: (keyId, sk, values) => gate?.applyTotals(keyId, sk, values),
    ...(options.metrics ? { metrics: options.metrics } : {}),
  });
  gate = createCallerAuth({
    store,
    ledger,
    policy: options.policy,
    deps,
    ...(options.legacyHashes ? { legacyHashes: options.legacyHashes } : {}),
    ...(options.flushAfterResponse ? { flushAfterResponse: true } : {}),
    ...(options.register ? { register: options.register } : {}),
  });
  if (!options.flushAfterResponse) ledger.start(options.policy.flushIntervalMs);
  return { auth: gate, ledger, store };
}
