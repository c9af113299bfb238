import type { CallersPolicy } from "../config/types.ts";
import type { Logger } from "../deps.ts";
import { GatewayError, quoteCallerText } from "../errors.ts";
import { createOutageLog } from "../outage-log.ts";
import { registerCallerKey } from "../secrets/redact.ts";
import { authUnavailable, bearerKey, matchLegacyKey, unauthorized } from "./bearer.ts";
import { keyIdOf, keyMatches } from "./key.ts";
import type { UsageLedger } from "./ledger.ts";
import {
  type CallerStore,
  daySk,
  type LoadedKey,
  MalformedKeyRecordError,
  minuteSk,
  monthSk,
} from "./store.ts";
import {
  type Caller,
  type ClientAuth,
  dayOf,
  emptyTotals,
  type KeyLimits,
  LIMIT_NAMES,
  MINUTE_MS,
  minuteOf,
  monthOf,
  type PeriodTotals,
  type UsageMeter,
} from "./types.ts";

/**
 * A key checked against the legacy `{ "sha256": [...] }` secret's hashes (none when `hashes` is
 * absent). A key that passed is registered for redaction by value (issue 9); only verified keys
 * are, so a caller cannot flood the registry with made-up ones, and the 401 names no key.
 * Both the caller gate and the secret-only `createClientAuth` verify legacy keys through this.
 */
export async function verifyLegacyKey(
  key: string,
  hashes: (() => Promise<readonly string[]>) | undefined,
  register: (key: string) => void,
): Promise<Caller> {
  let known: readonly string[] = [];
  if (hashes) {
    try {
      known = await hashes();
    } catch (error) {
      throw authUnavailable(error);
    }
  }
  const caller = matchLegacyKey(key, known);
  if (!caller) throw unauthorized("Incorrect API key provided.");
  register(key);
  return caller;
}

export interface CallerAuthOptions {
  store: CallerStore;
  ledger: UsageLedger;
  policy: CallersPolicy;
  /** Hashes of the legacy `{ "sha256": [...] }` secret, if any (expected to cache). */
  legacyHashes?: () => Promise<readonly string[]>;
  now: () => number;
  logger: Logger;
  register?: (key: string) => void;
  /** Flush the ledger after every chat response (Lambda); otherwise the ledger's timer does. */
  flushAfterResponse?: boolean;
  /** Keys kept in memory at most (a flood of made-up ids cannot grow the cache without bound). */
  maxCachedKeys?: number;
}

/** The gate, plus the hook through which a ledger flush refreshes the cached totals. */
export interface CallerGate extends ClientAuth {
  /** The table's totals for one period item of a key, as a flush's ADD returned them. */
  applyTotals(keyId: string, sk: string, values: { tokens: number; cost: number }): void;
}

interface CacheEntry {
  loaded: LoadedKey;
  expiresAt: number;
}

/**
 * Named caller keys from the table, the legacy secret's keys beside them, and the limits.
 *
 * - A key record is cached for `policy.cacheTtlMs` (≤ 60 s): a revoked key is refused within that.
 *   While the table cannot be read, the last record is kept (serving never stops for a known key);
 *   a key never seen before gets a 503.
 * - Requests per minute: one conditional `ADD` on the key's minute counter per request, exact across
 *   every instance sharing the table (no overshoot), bounded by `policy.limitTimeoutMs`.
 * - Tokens and cost (per minute, day, month): known only once an answer is done, so checked against
 *   the table's totals as of the last load or flush plus what this process has not yet written.
 *   The overshoot is bounded by what instances admit before they see each other's usage: see the
 *   README's "Callers" section.
 * - The table unreachable while a limit is checked: `policy.failOpen` serves (counting per minute in
 *   this process instead) or answers 503.
 */
export function createCallerAuth(options: CallerAuthOptions): CallerGate {
  const { store, ledger, policy, now, logger } = options;
  const register = options.register ?? registerCallerKey;
  const maxCached = options.maxCachedKeys ?? 10_000;
  const cache = new Map<string, CacheEntry>();
  const loading = new Map<string, Promise<CacheEntry>>();
  const malformedLogged = new Set<string>();
  /** Per-minute request counts of this process, used only while the table cannot be reached. */
  const localMinute = new Map<string, { minute: number; requests: number }>();
  const readOutage = createOutageLog({
    logger,
    failing: "caller keys cannot be read from the table; serving cached keys",
    recovered: "caller keys readable again",
    unit: "reads",
    now,
  });
  const limitOutage = createOutageLog({
    logger,
    failing: `request counters unreachable; limits fail ${policy.failOpen ? "open (counted per instance)" : "closed (503)"}`,
    recovered: "request counters reachable again",
    unit: "checks",
    now,
  });

  async function entry(id: string): Promise<CacheEntry> {
    const at = now();
    const cached = cache.get(id);
    if (cached && cached.expiresAt > at) return cached;
    let pending = loading.get(id);
    if (!pending) {
      pending = store
        .load(id, at)
        .then((loaded) => {
          readOutage.succeeded();
          const fresh = { loaded, expiresAt: now() + policy.cacheTtlMs };
          cache.delete(id);
          if (cache.size >= maxCached) {
            const oldest = cache.keys().next().value;
            if (oldest !== undefined) cache.delete(oldest);
          }
          cache.set(id, fresh);
          return fresh;
        })
        .finally(() => loading.delete(id));
      loading.set(id, pending);
    }
    if (cached === undefined) {
      try {
        return await pending;
      } catch (error) {
        readOutage.failed({ error: (error as Error)?.message });
        throw authUnavailable(error);
      }
    }
    // A key seen before is never held up by a slow or dead table: past `limitTimeoutMs` its last
    // record serves, and the table is asked again only after a pause (one probe, not one per request).
    const fresh = await within(pending, policy.limitTimeoutMs);
    if (fresh !== undefined) return fresh;
    readOutage.failed({ keyId: id });
    cached.expiresAt = now() + Math.min(policy.cacheTtlMs, STALE_RETRY_MS);
    return cached;
  }

  /** The key's totals as the table last told them, rolled over when a period has ended. */
  function fleetTotals(e: CacheEntry, at: number): PeriodTotals {
    const t = e.loaded.totals;
    const fresh = emptyTotals(at);
    return {
      ...fresh,
      ...(t.day === fresh.day ? { dayTokens: t.dayTokens, dayCost: t.dayCost } : {}),
      ...(t.month === fresh.month ? { monthTokens: t.monthTokens, monthCost: t.monthCost } : {}),
      ...(t.minute === fresh.minute ? { minuteTokens: t.minuteTokens } : {}),
    };
  }

  function checkSpend(caller: Caller, e: CacheEntry, at: number): void {
    const l = caller.limits;
    if (LIMIT_NAMES.every((name) => name === "rpm" || l[name] === undefined)) return;
    const fleet = fleetTotals(e, at);
    const local = ledger.local(caller.id, at);
    const checks: Array<[keyof KeyLimits, number, string, number]> = [
      ["tpm", fleet.minuteTokens + local.minuteTokens, "tokens per minute", nextMinute(at)],
      ["tokensPerDay", fleet.dayTokens + local.dayTokens, "tokens per day", nextDay(at)],
      ["tokensPerMonth", fleet.monthTokens + local.monthTokens, "tokens per month", nextMonth(at)],
      ["costPerDay", fleet.dayCost + local.dayCost, "USD per day", nextDay(at)],
      ["costPerMonth", fleet.monthCost + local.monthCost, "USD per month", nextMonth(at)],
    ];
    for (const [name, spent, unit, resetsAt] of checks) {
      const limit = l[name];
      if (limit !== undefined && spent >= limit)
        throw overLimit(caller, name, `${limit} ${unit}`, resetsAt - at);
    }
  }

  async function countRequest(caller: Caller, limit: number, at: number): Promise<void> {
    const minute = minuteOf(at);
    let allowed: boolean;
    try {
      allowed = await store.countRequest(
        caller.id,
        minute,
        limit,
        AbortSignal.timeout(policy.limitTimeoutMs),
      );
      limitOutage.succeeded();
    } catch (error) {
      limitOutage.failed({ error: (error as Error)?.message });
      if (!policy.failOpen) {
        throw new GatewayError("Rate limits cannot be checked right now; retry later.", {
          status: 503,
          type: "api_error",
          code: "limits_unavailable",
          headers: { "retry-after": "5" },
          cause: error,
        });
      }
      // Open, but not unlimited: this instance still holds the key to its limit on its own.
      const local = localMinute.get(caller.id);
      const count = local?.minute === minute ? local.requests : 0;
      allowed = count < limit;
      if (allowed) localMinute.set(caller.id, { minute, requests: count + 1 });
    }
    if (!allowed) throw overLimit(caller, "rpm", `${limit} requests per minute`, nextMinute(at) - at);
  }

  function overLimit(caller: Caller, limit: keyof KeyLimits, what: string, waitMs: number): GatewayError {
    const seconds = Math.max(1, Math.ceil(waitMs / 1000));
    const perMinute = limit === "rpm" || limit === "tpm";
    logger.info({
      msg: "caller over limit",
      keyId: caller.id,
      keyName: caller.name,
      limit,
      retryAfterS: seconds,
    });
    return new GatewayError(
      `${perMinute ? "Rate limit" : "Budget"} reached for key '${caller.name ?? caller.id}' (${caller.id}): ${what}. Retry after ${seconds} s.`,
      {
        status: 429,
        type: perMinute ? "rate_limit_error" : "insufficient_quota",
        code: perMinute ? "rate_limit_exceeded" : "budget_exceeded",
        param: limit,
        headers: { "retry-after": String(seconds), "retry-after-ms": String(Math.max(0, Math.ceil(waitMs))) },
      },
    );
  }

  return {
    async verify(headers) {
      const key = bearerKey(headers);
      const id = keyIdOf(key);
      if (id === undefined) return verifyLegacyKey(key, options.legacyHashes, register);
      const { record } = (await entry(id)).loaded;
      if (record instanceof MalformedKeyRecordError) {
        if (!malformedLogged.has(id)) {
          malformedLogged.add(id);
          logger.error({ msg: "caller key record skipped", keyId: id, error: record.message });
        }
        throw unauthorized("Incorrect API key provided.");
      }
      if (record === undefined || !keyMatches(key, record.hash))
        throw unauthorized("Incorrect API key provided.");
      if (record.revokedAt !== undefined && record.revokedAt <= now())
        throw unauthorized("This API key has been revoked.");
      register(key);
      return { id: record.id, name: record.name, models: record.models, limits: record.limits };
    },

    async admit(caller, { model }) {
      if (caller.models !== undefined && !caller.models.includes(model)) {
        throw new GatewayError(
          `The key '${caller.name ?? caller.id}' (${caller.id}) may not use the model '${quoteCallerText(model)}'.`,
          { status: 403, type: "invalid_request_error", param: "model", code: "model_not_allowed" },
        );
      }
      const at = now();
      const cached = cache.get(caller.id);
      if (cached) checkSpend(caller, cached, at);
      if (caller.limits.rpm !== undefined) await countRequest(caller, caller.limits.rpm, at);
      const meter: UsageMeter = {
        keyId: caller.id,
        keyName: caller.name,
        record: (usage) => {
          ledger.record(caller, model, usage);
        },
      };
      return meter;
    },

    applyTotals(keyId, sk, values) {
      const e = cache.get(keyId);
      if (!e) return;
      // Roll the cached periods forward first: a flush after midnight reports the new day.
      const t = fleetTotals(e, now());
      e.loaded = { ...e.loaded, totals: t };
      if (sk === daySk(t.day)) Object.assign(t, { dayTokens: values.tokens, dayCost: values.cost });
      else if (sk === monthSk(t.month))
        Object.assign(t, { monthTokens: values.tokens, monthCost: values.cost });
      else if (sk === minuteSk(t.minute)) t.minuteTokens = values.tokens;
    },

    ...(options.flushAfterResponse ? { afterResponse: (deadline) => ledger.flush({ deadline }) } : {}),
  };
}

/** After a failed table read or counter update, how long to use what this process has before trying again. */
const STALE_RETRY_MS = 5_000;

/** The promise's value if it settles well within `ms`; undefined on a timeout or a failure. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise.catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function nextMinute(at: number): number {
  return (minuteOf(at) + 1) * MINUTE_MS;
}

function nextDay(at: number): number {
  return Date.parse(`${dayOf(at)}T00:00:00Z`) + 86_400_000;
}

function nextMonth(at: number): number {
  const d = new Date(`${monthOf(at)}-01T00:00:00Z`);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}
