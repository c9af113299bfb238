import type { CallersPolicy } from "../config/types.ts";
import type { Deps, Logger, Timer } from "../deps.ts";
import {
  authUnavailable,
  budgetExceeded,
  type GatewayError,
  invalidApiKey,
  limitsUnavailable,
  modelNotFound,
  rateLimitExceeded,
} from "../errors.ts";
import { createOutageLog, type OutageLog } from "../outage-log.ts";
import { registerCallerKey } from "../secrets/redact.ts";
import { bearerKey, matchLegacyKey, mayUseModel } from "./bearer.ts";
import { keyIdOf, keyMatches } from "./key.ts";
import type { LocalSpend, UsageLedger } from "./ledger.ts";
import {
  type CallerStore,
  daySk,
  type LoadedKey,
  MalformedKeyRecordError,
  minuteSk,
  monthSk,
} from "./store.ts";
import {
  type AdmissionRequest,
  BUDGET_NAMES,
  type Caller,
  type ClientAuth,
  dayOf,
  emptyTotals,
  type KeyLimits,
  type KeyRecord,
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
  if (!caller) throw invalidApiKey("Incorrect API key provided.");
  register(key);
  return caller;
}

export interface CallerAuthOptions {
  store: CallerStore;
  ledger: UsageLedger;
  policy: CallersPolicy;
  /** Hashes of the legacy `{ "sha256": [...] }` secret, if any (expected to cache). */
  legacyHashes?: () => Promise<readonly string[]>;
  /**
   * The clock, the timers bounding table calls, the ids naming concurrency slots and the logger,
   * from the edge's {@link Deps}: nothing here reads the real clock, so tests run on a fake one.
   */
  deps: GateDeps;
  register?: (key: string) => void;
  /** Flush the ledger after every chat response (Lambda); otherwise the ledger's timer does. */
  flushAfterResponse?: boolean;
  /** Keys kept in memory at most (a flood of made-up ids cannot grow the cache without bound). */
  maxCachedKeys?: number;
}

/** What the gate takes from {@link Deps}. */
export type GateDeps = Pick<Deps, "now" | "setTimer" | "newId" | "logger">;

/** The gate, plus the hook through which a ledger flush refreshes the cached totals. */
export interface CallerGate extends ClientAuth {
  /** Every caller the gate verified is admitted (or refused) here. */
  admit(caller: Caller, request: AdmissionRequest): Promise<UsageMeter>;
  /** The table's totals for one period item of a key, as a flush's ADD returned them. */
  applyTotals(keyId: string, sk: string, values: { tokens: number; cost: number }): void;
}

interface CacheEntry {
  loaded: LoadedKey;
  expiresAt: number;
}

/** What admission holds against a key's budgets for its requests in flight (issue 16). */
export interface Hold {
  tokens: number;
  /** US dollars, at the model's price (0 without one, as the ledger counts it). */
  cost: number;
}

/** One admitted request of a limited key, from admission to its meter's record. */
interface Admission {
  keyId: string;
  hold: Hold;
  /** The table slot it holds for `maxConcurrent`, if any. */
  slot: string | undefined;
  open: boolean;
}

/** Everything the gate keeps; the functions below work on it. */
interface GateState {
  store: CallerStore;
  ledger: UsageLedger;
  policy: CallersPolicy;
  now: () => number;
  logger: Logger;
  legacyHashes: (() => Promise<readonly string[]>) | undefined;
  register: (key: string) => void;
  setTimer: (fn: () => void, ms: number) => Timer;
  newId: () => string;
  maxCached: number;
  cache: Map<string, CacheEntry>;
  loading: Map<string, Promise<CacheEntry>>;
  malformedLogged: Set<string>;
  /** Per-minute request counts of this process, used only while the table cannot be reached. */
  localMinute: Map<string, { minute: number; requests: number }>;
  /** The worst cases of this process's requests in flight, per key, with how many there are. */
  held: Map<string, Hold & { requests: number }>;
  /** Slot releases under way (awaited after a response on Lambda, where a frozen process sends nothing). */
  releasing: Set<Promise<void>>;
  readOutage: OutageLog;
  limitOutage: OutageLog;
}

/**
 * Named caller keys from the table, the legacy secret's keys beside them, and the limits.
 *
 * - A key record is cached for `policy.cacheTtlMs` (≤ 60 s): a revoked key is refused within that.
 *   While the table cannot be read, the last record is kept (serving never stops for a known key);
 *   a key never seen before gets a 503.
 * - Requests per minute: one conditional `ADD` on the key's minute counter per request, exact across
 *   every instance sharing the table (no overshoot), bounded by `policy.limitTimeoutMs`.
 * - Tokens and cost (per minute, day, month): admission reserves the request's worst case (prompt
 *   estimate plus output cap times `n`) against what is left in this process's view: the table's
 *   totals as of the last load or flush, plus what this process has not yet written, plus what its
 *   requests in flight hold. The meter's record settles the hold to the real figure. Instances do not
 *   see each other's holds: see the README's "Callers" section for the fleet's overshoot.
 * - Concurrency (`maxConcurrent`): a lease in the key's `CONCURRENT` item, exact across the fleet,
 *   released when the meter records (a dead instance's lease ends after `concurrencyLeaseMs`).
 * - The table unreachable while a limit is checked: `policy.failOpen` serves (counting per minute and
 *   concurrency in this process instead) or answers 503.
 */
export function createCallerAuth(options: CallerAuthOptions): CallerGate {
  const state = gateState(options);
  return {
    verify: (headers) => verify(state, headers),
    admit: (caller, request) => admit(state, caller, request),
    applyTotals: (keyId, sk, values) => applyTotals(state, keyId, sk, values),
    ...(options.flushAfterResponse
      ? { afterResponse: (deadline: number) => afterResponse(state, deadline) }
      : {}),
  };
}

function gateState(options: CallerAuthOptions): GateState {
  const { policy } = options;
  const { logger, now, setTimer, newId } = options.deps;
  return {
    store: options.store,
    ledger: options.ledger,
    policy,
    now,
    logger,
    legacyHashes: options.legacyHashes,
    register: options.register ?? registerCallerKey,
    setTimer,
    newId,
    maxCached: options.maxCachedKeys ?? 10_000,
    cache: new Map(),
    loading: new Map(),
    malformedLogged: new Set(),
    localMinute: new Map(),
    held: new Map(),
    releasing: new Set(),
    readOutage: createOutageLog({
      logger,
      failing: "caller keys cannot be read from the table; serving cached keys",
      recovered: "caller keys readable again",
      unit: "reads",
      now,
    }),
    limitOutage: createOutageLog({
      logger,
      failing: `request counters unreachable; limits fail ${policy.failOpen ? "open (counted per instance)" : "closed (503)"}`,
      recovered: "request counters reachable again",
      unit: "checks",
      now,
    }),
  };
}

// ---- keys ---------------------------------------------------------------------------------------

async function verify(state: GateState, headers: Record<string, string | undefined>): Promise<Caller> {
  const key = bearerKey(headers);
  const id = keyIdOf(key);
  if (id === undefined) return verifyLegacyKey(key, state.legacyHashes, state.register);
  const record = usableRecord(state, id, (await entry(state, id)).loaded.record, key);
  state.register(key);
  return { id: record.id, name: record.name, models: record.models, limits: record.limits };
}

/** The record if `key` may use it now; a 401 otherwise. */
function usableRecord(state: GateState, id: string, record: LoadedKey["record"], key: string): KeyRecord {
  if (record instanceof MalformedKeyRecordError) {
    if (!state.malformedLogged.has(id)) {
      state.malformedLogged.add(id);
      state.logger.error({ msg: "caller key record skipped", keyId: id, error: record.message });
    }
    throw invalidApiKey("Incorrect API key provided.");
  }
  if (record === undefined || !keyMatches(key, record.hash))
    throw invalidApiKey("Incorrect API key provided.");
  // Revoked as soon as the record says so: the time the CLI wrote comes from another machine's clock
  // and is never compared with this one (issue 16).
  if (record.revokedAt !== undefined) throw invalidApiKey("This API key has been revoked.");
  if (record.expiresAt !== undefined && record.expiresAt <= state.now())
    throw invalidApiKey("This API key has expired.");
  return record;
}

async function entry(state: GateState, id: string): Promise<CacheEntry> {
  const cached = state.cache.get(id);
  if (cached && cached.expiresAt > state.now()) return cached;
  const pending = state.loading.get(id) ?? startLoad(state, id);
  if (cached === undefined) {
    try {
      return await pending;
    } catch (error) {
      state.readOutage.failed({ error: (error as Error)?.message });
      throw authUnavailable(error);
    }
  }
  // A key seen before is never held up by a slow or dead table: past `limitTimeoutMs` its last
  // record serves, and the table is asked again only after a pause (one probe, not one per request).
  const fresh = await within(state, pending, state.policy.limitTimeoutMs);
  if (fresh !== undefined) return fresh;
  state.readOutage.failed({ keyId: id });
  cached.expiresAt = state.now() + Math.min(state.policy.cacheTtlMs, STALE_RETRY_MS);
  return cached;
}

function startLoad(state: GateState, id: string): Promise<CacheEntry> {
  const pending = state.store
    .load(id, state.now())
    .then((loaded) => {
      state.readOutage.succeeded();
      const fresh = { loaded, expiresAt: state.now() + state.policy.cacheTtlMs };
      state.cache.delete(id);
      if (state.cache.size >= state.maxCached) {
        const oldest = state.cache.keys().next().value;
        if (oldest !== undefined) state.cache.delete(oldest);
      }
      state.cache.set(id, fresh);
      return fresh;
    })
    .finally(() => state.loading.delete(id));
  state.loading.set(id, pending);
  return pending;
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

function applyTotals(
  state: GateState,
  keyId: string,
  sk: string,
  values: { tokens: number; cost: number },
): void {
  const e = state.cache.get(keyId);
  if (!e) return;
  // Roll the cached periods forward first: a flush after midnight reports the new day.
  const t = fleetTotals(e, state.now());
  e.loaded = { ...e.loaded, totals: t };
  if (sk === daySk(t.day)) Object.assign(t, { dayTokens: values.tokens, dayCost: values.cost });
  else if (sk === monthSk(t.month)) Object.assign(t, { monthTokens: values.tokens, monthCost: values.cost });
  else if (sk === minuteSk(t.minute)) t.minuteTokens = values.tokens;
}

// ---- admission ----------------------------------------------------------------------------------

async function admit(state: GateState, caller: Caller, request: AdmissionRequest): Promise<UsageMeter> {
  // Exactly the unknown model's 404: a key cannot tell a route it may not use from no route.
  if (!mayUseModel(caller, request.model)) throw modelNotFound(request.model);
  const limits = caller.limits;
  if (LIMIT_NAMES.every((name) => limits[name] === undefined)) return meterFor(state, caller, request.model);
  const at = state.now();
  const budgeted = BUDGET_NAMES.some((name) => limits[name] !== undefined);
  const hold = budgeted ? worstCase(state.policy, request) : NO_HOLD;
  const cached = state.cache.get(caller.id);
  if (budgeted && cached) checkBudgets(state, caller, cached, hold, at);
  const max = limits.maxConcurrent;
  if (max !== undefined && (state.held.get(caller.id)?.requests ?? 0) >= max)
    throw overConcurrency(state, caller, max);
  // Held from here, synchronously after the check: a request admitted meanwhile already sees it.
  const admission = openAdmission(state, caller.id, hold);
  try {
    if (limits.rpm !== undefined) await countRequest(state, caller, limits.rpm, at);
    if (max !== undefined) admission.slot = await takeSlot(state, caller, max, at);
  } catch (error) {
    closeAdmission(state, admission);
    throw error;
  }
  return meterFor(state, caller, request.model, admission);
}

/** The meter of one request: its usage goes to the ledger, then what admission held is let go. */
function meterFor(state: GateState, caller: Caller, model: string, admission?: Admission): UsageMeter {
  return {
    keyId: caller.id,
    keyName: caller.name,
    record: (usage) => {
      state.ledger.record(caller, model, usage);
      if (admission) closeAdmission(state, admission);
    },
  };
}

const NO_HOLD: Hold = Object.freeze({ tokens: 0, cost: 0 });

/**
 * A request's worst case: its prompt (estimated) once, plus its output cap for each of its `n`
 * answers (`defaultOutputReservation` per answer without a cap), at the model's price with every
 * prompt token at the dearer of the input prices. Prompts are billed once whatever `n` is.
 */
export function worstCase(
  policy: Pick<CallersPolicy, "defaultOutputReservation" | "prices">,
  request: AdmissionRequest,
): Hold {
  const perAnswer = request.maxOutputTokens ?? policy.defaultOutputReservation;
  const output = perAnswer * Math.max(1, request.choices);
  const price = policy.prices[request.model];
  const cost = price
    ? (request.promptTokens * Math.max(price.input, price.cachedInput, price.cacheWrite ?? 0) +
        output * price.output) /
      1_000_000
    : 0;
  return { tokens: request.promptTokens + output, cost };
}

function openAdmission(state: GateState, keyId: string, hold: Hold): Admission {
  const held = state.held.get(keyId) ?? { tokens: 0, cost: 0, requests: 0 };
  held.tokens += hold.tokens;
  held.cost += hold.cost;
  held.requests++;
  state.held.set(keyId, held);
  return { keyId, hold, slot: undefined, open: true };
}

/** Lets go of what the admission held; only once, whoever asks twice. */
function closeAdmission(state: GateState, admission: Admission): void {
  if (!admission.open) return;
  admission.open = false;
  const held = state.held.get(admission.keyId);
  if (held !== undefined) {
    held.requests--;
    held.tokens -= admission.hold.tokens;
    held.cost -= admission.hold.cost;
    // The last one out deletes the sums, so no rounding residue of the cost outlives them.
    if (held.requests <= 0) state.held.delete(admission.keyId);
  }
  if (admission.slot !== undefined) releaseSlot(state, admission.keyId, admission.slot);
}

/** One token or cost budget: which limit, its unit, what is spent in its period, when that resets. */
interface Budget {
  name: keyof KeyLimits;
  unit: string;
  of: keyof Hold;
  spent(fleet: PeriodTotals, local: LocalSpend): number;
  resetsAt(at: number): number;
}

const BUDGETS: readonly Budget[] = [
  {
    name: "tpm",
    unit: "tokens per minute",
    of: "tokens",
    spent: (f, l) => f.minuteTokens + l.minuteTokens,
    resetsAt: nextMinute,
  },
  {
    name: "tokensPerDay",
    unit: "tokens per day",
    of: "tokens",
    spent: (f, l) => f.dayTokens + l.dayTokens,
    resetsAt: nextDay,
  },
  {
    name: "tokensPerMonth",
    unit: "tokens per month",
    of: "tokens",
    spent: (f, l) => f.monthTokens + l.monthTokens,
    resetsAt: nextMonth,
  },
  {
    name: "costPerDay",
    unit: "USD per day",
    of: "cost",
    spent: (f, l) => f.dayCost + l.dayCost,
    resetsAt: nextDay,
  },
  {
    name: "costPerMonth",
    unit: "USD per month",
    of: "cost",
    spent: (f, l) => f.monthCost + l.monthCost,
    resetsAt: nextMonth,
  },
];

/** A 429 unless `need` fits in what every budget of the key has left beside what is already held. */
function checkBudgets(state: GateState, caller: Caller, e: CacheEntry, need: Hold, at: number): void {
  const fleet = fleetTotals(e, at);
  const local = state.ledger.local(caller.id, at);
  const held = state.held.get(caller.id) ?? NO_HOLD;
  for (const budget of BUDGETS) {
    const limit = caller.limits[budget.name];
    if (limit === undefined) continue;
    const spent = budget.spent(fleet, local);
    if (spent >= limit || spent + held[budget.of] + need[budget.of] > limit)
      throw overBudget(
        state,
        caller,
        budget,
        { limit, spent, held: held[budget.of], need: need[budget.of] },
        at,
      );
  }
}

function overBudget(
  state: GateState,
  caller: Caller,
  budget: Budget,
  figures: { limit: number; spent: number; held: number; need: number },
  at: number,
): GatewayError {
  const { limit, spent, held, need } = figures;
  const kind = budget.name === "tpm" ? "Rate limit" : "Budget";
  const key = `key '${caller.name ?? caller.id}' (${caller.id})`;
  const amount = (value: number) =>
    budget.of === "cost" ? `$${round(value, 6)}` : `${Math.ceil(value)} tokens`;
  const untilReset = budget.resetsAt(at) - at;
  if (spent >= limit) {
    const message = `${kind} reached for ${key}: ${limit} ${budget.unit}. Retry after ${seconds(untilReset)} s.`;
    return refusal(state, caller, budget.name, message, untilReset);
  }
  const left = `${limit} ${budget.unit}, ${amount(limit - spent)} left`;
  const worst = `this request may use up to ${amount(need)} (its prompt, estimated, plus max_tokens for each of its n answers; ${state.policy.defaultOutputReservation} tokens per answer without max_tokens)`;
  if (spent + need > limit) {
    const message = `${kind} of ${key} cannot hold this request: ${left}; ${worst}. Lower max_tokens or n, or retry after ${seconds(untilReset)} s.`;
    return refusal(state, caller, budget.name, message, untilReset);
  }
  // It would fit but for what the key's requests in flight hold: they settle when they end.
  const message = `${kind} of ${key} cannot hold this request now: ${left}, ${amount(held)} held by its requests in flight; ${worst}. Retry when they end.`;
  return refusal(state, caller, budget.name, message, IN_FLIGHT_RETRY_MS);
}

function overConcurrency(state: GateState, caller: Caller, max: number): GatewayError {
  const message = `Rate limit reached for key '${caller.name ?? caller.id}' (${caller.id}): ${max} requests at a time. Retry when one ends.`;
  return refusal(state, caller, "maxConcurrent", message, IN_FLIGHT_RETRY_MS);
}

/** The 429 for a limit: rate limits (per minute, at a time) and budgets (per day, per month). */
function refusal(
  state: GateState,
  caller: Caller,
  limit: keyof KeyLimits,
  message: string,
  waitMs: number,
): GatewayError {
  const rate = limit === "rpm" || limit === "tpm" || limit === "maxConcurrent";
  state.logger.info({
    msg: "caller over limit",
    keyId: caller.id,
    keyName: caller.name,
    limit,
    retryAfterS: seconds(waitMs),
  });
  const headers = {
    "retry-after": String(seconds(waitMs)),
    "retry-after-ms": String(Math.max(0, Math.ceil(waitMs))),
  };
  return rate
    ? rateLimitExceeded(message, { param: limit, headers })
    : budgetExceeded(message, { param: limit, headers });
}

async function countRequest(state: GateState, caller: Caller, limit: number, at: number): Promise<void> {
  const minute = minuteOf(at);
  let allowed: boolean;
  try {
    allowed = await bounded(state, (signal) => state.store.countRequest(caller.id, minute, limit, signal));
    state.limitOutage.succeeded();
  } catch (error) {
    state.limitOutage.failed({ error: (error as Error)?.message });
    if (!state.policy.failOpen) throw limitsUnavailable(error);
    // Open, but not unlimited: this instance still holds the key to its limit on its own.
    const local = state.localMinute.get(caller.id);
    const count = local?.minute === minute ? local.requests : 0;
    allowed = count < limit;
    if (allowed) state.localMinute.set(caller.id, { minute, requests: count + 1 });
  }
  if (!allowed) {
    const wait = nextMinute(at) - at;
    const message = `Rate limit reached for key '${caller.name ?? caller.id}' (${caller.id}): ${limit} requests per minute. Retry after ${seconds(wait)} s.`;
    throw refusal(state, caller, "rpm", message, wait);
  }
}

/**
 * One of the key's `max` slots in the table, leased for `concurrencyLeaseMs`; its token. Undefined
 * when the table cannot be reached and limits fail open: this process's own count (checked before)
 * still holds the key to `max` here.
 */
async function takeSlot(
  state: GateState,
  caller: Caller,
  max: number,
  at: number,
): Promise<string | undefined> {
  const token = state.newId();
  const slot = { token, leaseEnd: at + state.policy.concurrencyLeaseMs, max, now: at };
  let taken: boolean;
  try {
    taken = await bounded(state, (signal) => state.store.acquireSlot(caller.id, slot, signal));
    state.limitOutage.succeeded();
  } catch (error) {
    state.limitOutage.failed({ error: (error as Error)?.message });
    if (!state.policy.failOpen) throw limitsUnavailable(error);
    // The write may have landed before the timeout: give the slot back rather than hold it unknowingly.
    releaseSlot(state, caller.id, token);
    return undefined;
  }
  if (!taken) throw overConcurrency(state, caller, max);
  return token;
}

function releaseSlot(state: GateState, keyId: string, token: string): void {
  const done: Promise<void> = bounded(state, (signal) => state.store.releaseSlot(keyId, token, signal))
    .catch((error: unknown) => {
      state.logger.warn({
        msg: "concurrency slot not released; it frees when its lease ends",
        keyId,
        error: (error as Error)?.message,
      });
    })
    .finally(() => state.releasing.delete(done));
  state.releasing.add(done);
}

/** Lambda, after a response: the ledger written and the slots given back before the process freezes. */
async function afterResponse(state: GateState, deadline: number): Promise<void> {
  await Promise.all([state.ledger.flush({ deadline }), ...state.releasing]);
}

// ---- time ---------------------------------------------------------------------------------------

/** After a failed table read or counter update, how long to use what this process has before trying again. */
const STALE_RETRY_MS = 5_000;

/** Retry-After for a refusal that ends when the key's requests in flight do. */
const IN_FLIGHT_RETRY_MS = 1_000;

/** `call` given a signal that aborts after `limitTimeoutMs`, on the gate's timers. */
async function bounded<T>(state: GateState, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ms = state.policy.limitTimeoutMs;
  const controller = new AbortController();
  const timer = state.setTimer(
    () => controller.abort(new DOMException(`no answer within ${ms} ms`, "TimeoutError")),
    ms,
  );
  try {
    return await call(controller.signal);
  } finally {
    timer.clear();
  }
}

/** The promise's value if it settles well within `ms`; undefined on a timeout or a failure. */
async function within<T>(state: GateState, promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: Timer | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = state.setTimer(() => resolve(undefined), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise.catch(() => undefined), timeout]);
  } finally {
    timer?.clear();
  }
}

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

function round(value: number, digits: number): string {
  return value.toFixed(digits).replace(/\.?0+$/, "");
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
