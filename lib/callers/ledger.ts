import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import type { ModelPrice, RetryPolicy } from "../config/types.ts";
import type { MeteredUsage, Usage } from "../core/usage.ts";
import type { Deps, Timer } from "../deps.ts";
import type { TokenMetrics } from "../metrics/emf.ts";
import { createOutageLog } from "../outage-log.ts";
import { backoffDelay } from "../retry/backoff.ts";
import { callerPk, daySk, KEY_SK, minuteSk, minuteTtl, monthSk, n, usageSk } from "./store.ts";
import { type Caller, dayOf, minuteOf, monthOf } from "./types.ts";

/** One pending atomic update of one item: numbers to ADD, attributes to SET. */
interface Increment {
  pk: string;
  sk: string;
  add: Record<string, number>;
  set: Record<string, AttributeValue>;
  /** Only for an item that exists (a key's lastUsedAt: a legacy key has no record to touch). */
  onlyIfExists?: boolean;
}

/** What a request used, as counted. */
export interface CountedUsage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  /** Prompt tokens written to the provider's cache (a part of `promptTokens`, priced `cacheWrite`). */
  cacheWriteTokens: number;
  tokens: number;
  cost: number;
  /** Some figure is the gateway's estimate: the provider's usage never arrived (issue 16). */
  estimated: boolean;
}

/** A key's usage still in this process (not yet in the table, or being written). */
export interface LocalSpend {
  dayTokens: number;
  dayCost: number;
  monthTokens: number;
  monthCost: number;
  minuteTokens: number;
}

export type UsageMetric = TokenMetrics;

export interface UsageLedger {
  /**
   * Adds one finished request to the per-key × model × day aggregate. Never does I/O. A request
   * whose usage is `estimated` also counts in the day's `estimatedRequests`.
   */
  record(caller: Caller, model: string, usage: Usage | MeteredUsage): CountedUsage;
  /** The key's usage this process has counted and the table has not yet confirmed. */
  local(keyId: string, now: number): LocalSpend;
  /**
   * Writes everything aggregated so far with atomic ADDs, one UpdateItem per item, side by side.
   * Updates that fail go back into the aggregate (so none is counted twice, and none lost while the
   * table is down). Without a deadline that is one attempt, the next flush being the retry (the
   * timer of a long-lived process). With `deadline` (a time on the ledger's clock: the end of a
   * Lambda request, a shutdown's grace), what failed is tried again, at most
   * {@link FLUSH_RETRY}`.maxAttempts` attempts with jittered backoff, each retry only if it can end
   * by the deadline; what still fails stays for the next flush. Concurrent calls are serialised
   * (a flush waiting for another counts that wait against its deadline); never throws.
   */
  flush(options?: FlushOptions): Promise<void>;
  /** Flushes every `intervalMs` (unref'd timer) until {@link UsageLedger.stop}. */
  start(intervalMs: number): void;
  stop(): void;
  /** Items waiting to be written (tests, shutdown). */
  readonly pendingItems: number;
}

export interface FlushOptions {
  /** When the flush must be over, by the ledger's clock; absent: one attempt, no retry. */
  deadline?: number | undefined;
}

export interface LedgerOptions {
  client: DynamoDBClient;
  tableName: string;
  prices: Record<string, ModelPrice>;
  /**
   * The clock, the timers (the flush timer, write timeouts, retry backoff), the jitter's random
   * source and the logger, from the edge's {@link Deps}, so tests run on a fake clock.
   */
  deps: LedgerDeps;
  /** Told the period totals the table returned after a flush (the limits' view of the fleet). */
  onTotals?: (keyId: string, sk: string, values: { tokens: number; cost: number }) => void;
  metrics?: (metric: UsageMetric) => void;
  /** Longest wait for one write (default 1 s): on Lambda a flush delays the end of a response. */
  writeTimeoutMs?: number;
}

/** What the ledger takes from {@link Deps}. */
export type LedgerDeps = Pick<Deps, "now" | "setTimer" | "sleep" | "random" | "logger">;

/** A retry needs at least this long before the deadline (a write takes milliseconds in-region). */
const MIN_RETRY_WRITE_MS = 200;

/**
 * A flush with a deadline: 4 attempts in all, waits drawn from [0, 100 ms], [0, 200 ms], [0, 400 ms]
 * (full jitter, lib/retry/backoff.ts). With 1 s writes that is at most about 4.7 s, whatever the
 * deadline. There is no pause after a failure any more: it left the usage of the invocations in
 * the next 5 s unwritten when they returned, and lost it at a SIGTERM (issue 16).
 */
export const FLUSH_RETRY: RetryPolicy = {
  maxAttempts: 4,
  baseDelayMs: 100,
  maxDelayMs: 400,
  maxRetryAfterMs: 0,
};

/**
 * What a request's usage counts and costs: the prompt's tokens read from the cache at `cachedInput`,
 * those written to it at `cacheWrite`, the rest at `input` (issue 18: a cost from the uncached input
 * alone under-counts a cached prompt, LiteLLM #11935).
 */
export function countUsage(usage: Usage | MeteredUsage, price: ModelPrice | undefined): CountedUsage {
  const promptTokens = usage.inputTokens;
  const completionTokens = usage.outputTokens;
  const cachedTokens = Math.min(promptTokens, usage.cacheReadTokens);
  const cacheWriteTokens = Math.min(promptTokens - cachedTokens, usage.cacheWriteTokens);
  const cost = price
    ? ((promptTokens - cachedTokens - cacheWriteTokens) * price.input +
        cachedTokens * price.cachedInput +
        cacheWriteTokens * (price.cacheWrite ?? price.input) +
        completionTokens * price.output) /
      1_000_000
    : 0;
  return {
    promptTokens,
    completionTokens,
    cachedTokens,
    cacheWriteTokens,
    tokens: promptTokens + completionTokens,
    cost,
    estimated: "estimated" in usage && usage.estimated,
  };
}

/**
 * The usage ledger: each request's usage is aggregated in this execution environment, per key ×
 * model × UTC day (plus the key's day, month and minute totals), and written with atomic `ADD`
 * every few seconds and, on Lambda, before the invocation returns (a frozen environment runs no
 * timer). No DynamoDB call sits on a request's path: `record` only touches memory.
 */
export function createUsageLedger(options: LedgerOptions): UsageLedger {
  const { client, tableName: TableName } = options;
  const { now, logger, setTimer, sleep, random } = options.deps;
  let pending = new Map<string, Increment>();
  let inflight = new Map<string, Increment>();
  let chain: Promise<void> = Promise.resolve();
  let timer: Timer | undefined;
  const writeTimeoutMs = options.writeTimeoutMs ?? 1_000;
  const outage = createOutageLog({
    logger,
    failing: "usage not written to the table; kept for the next flush",
    recovered: "usage written to the table again",
    unit: "writes",
    now,
  });

  const id = (pk: string, sk: string) => `${pk}\n${sk}`;
  /**
   * Adds `inc` to an aggregate: numbers add up; for attributes set, the newer value wins (`inc` is
   * newer when it is a fresh record, older when it is a failed write going back).
   */
  function merge(into: Map<string, Increment>, inc: Increment, incIsNewer: boolean): void {
    const k = id(inc.pk, inc.sk);
    const current = into.get(k);
    if (!current) {
      into.set(k, { ...inc, add: { ...inc.add }, set: { ...inc.set } });
      return;
    }
    for (const [name, value] of Object.entries(inc.add)) current.add[name] = (current.add[name] ?? 0) + value;
    for (const [name, value] of Object.entries(inc.set)) {
      if (incIsNewer || !(name in current.set)) current.set[name] = value;
    }
  }

  async function write(key: string, inc: Increment, timeoutMs: number): Promise<void> {
    const names: Record<string, string> = {};
    const values: Record<string, AttributeValue> = {};
    const adds: string[] = [];
    const sets: string[] = [];
    let i = 0;
    for (const [name, value] of Object.entries(inc.add)) {
      names[`#a${i}`] = name;
      values[`:a${i}`] = n(value);
      adds.push(`#a${i} :a${i}`);
      i++;
    }
    for (const [name, value] of Object.entries(inc.set)) {
      names[`#s${i}`] = name;
      values[`:s${i}`] = value;
      sets.push(`#s${i} = :s${i}`);
      i++;
    }
    const periodic = /^(DAY|MONTH|MINUTE)#/.test(inc.sk);
    const abort = new AbortController();
    const timeout = setTimer(
      () => abort.abort(new Error(`usage write timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      const out = await client.send(
        new UpdateItemCommand({
          TableName,
          Key: { pk: { S: inc.pk }, sk: { S: inc.sk } },
          UpdateExpression: [
            adds.length ? `ADD ${adds.join(", ")}` : "",
            sets.length ? `SET ${sets.join(", ")}` : "",
          ]
            .filter(Boolean)
            .join(" "),
          ...(inc.onlyIfExists ? { ConditionExpression: "attribute_exists(pk)" } : {}),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          // UPDATED_NEW, not ALL_NEW: the chat role may touch only the attributes it writes
          // (infra/table-access.ts), and these are the totals it ADDs.
          ...(periodic ? { ReturnValues: "UPDATED_NEW" } : {}),
        }),
        // A write that times out goes back and is retried; if it had landed, it counts twice: the
        // ledger errs towards counting too much, never towards losing usage.
        { abortSignal: abort.signal },
      );
      // Confirmed: from now on the table's totals hold it, so it must not count locally too.
      inflight.delete(key);
      if (periodic && out.Attributes) {
        options.onTotals?.(inc.pk.slice("CALLER#".length), inc.sk, {
          tokens: Number(out.Attributes.tokens?.N ?? 0),
          cost: Number(out.Attributes.cost?.N ?? 0),
        });
      }
    } catch (error) {
      if (inc.onlyIfExists && error instanceof ConditionalCheckFailedException) return;
      throw error;
    } finally {
      timeout.clear();
    }
  }

  /** One round of writes of everything pending; true if every write landed. */
  async function writePending(timeoutMs: number): Promise<boolean> {
    if (pending.size === 0) return true;
    inflight = pending;
    pending = new Map();
    const batch = [...inflight.entries()];
    const results = await Promise.allSettled(batch.map(([key, inc]) => write(key, inc, timeoutMs)));
    let failed = 0;
    let firstError: unknown;
    results.forEach((result, i) => {
      const inc = batch[i]?.[1];
      if (result.status === "rejected" && inc) {
        failed++;
        firstError ??= result.reason;
        merge(pending, inc, false);
      }
    });
    inflight = new Map();
    if (failed > 0) outage.failed({ failed, error: (firstError as Error)?.message });
    else outage.succeeded();
    return failed === 0;
  }

  /**
   * Writes, then retries what failed while a retry still has {@link MIN_RETRY_WRITE_MS} before
   * `deadline` once its backoff is over; a retry's writes are bounded by what is left. The first
   * attempt always runs, bounded by `writeTimeoutMs`: on Lambda the adapter keeps a margin past the
   * request's deadline (1.5 s, functions/chat.ts) that one write (1 s by default) fits in.
   */
  async function flushUntil(deadline: number | undefined): Promise<void> {
    let timeoutMs = writeTimeoutMs;
    for (let attempt = 1; !(await writePending(timeoutMs)); attempt++) {
      if (deadline === undefined || attempt >= FLUSH_RETRY.maxAttempts) return;
      const wait = backoffDelay(attempt, FLUSH_RETRY, random);
      timeoutMs = Math.min(writeTimeoutMs, deadline - now() - wait);
      if (timeoutMs < MIN_RETRY_WRITE_MS) return;
      await sleep(wait);
    }
  }

  function sumLocal(sk: string, keyId: string): { tokens: number; cost: number } {
    const k = id(callerPk(keyId), sk);
    const a = pending.get(k)?.add;
    const b = inflight.get(k)?.add;
    return { tokens: (a?.tokens ?? 0) + (b?.tokens ?? 0), cost: (a?.cost ?? 0) + (b?.cost ?? 0) };
  }

  const ledger: UsageLedger = {
    record(caller, model, usage) {
      const at = now();
      const counted = countUsage(usage, options.prices[model]);
      const day = dayOf(at);
      const pk = callerPk(caller.id);
      const totals = { requests: 1, tokens: counted.tokens, cost: counted.cost };
      merge(
        pending,
        {
          pk,
          sk: usageSk(day, model),
          add: {
            requests: 1,
            promptTokens: counted.promptTokens,
            completionTokens: counted.completionTokens,
            cachedTokens: counted.cachedTokens,
            ...(counted.cacheWriteTokens > 0 ? { cacheWriteTokens: counted.cacheWriteTokens } : {}),
            cost: counted.cost,
            ...(counted.estimated ? { estimatedRequests: 1 } : {}),
          },
          set: { keyId: { S: caller.id }, model: { S: model }, day: { S: day } },
        },
        true,
      );
      merge(pending, { pk, sk: daySk(day), add: totals, set: {} }, true);
      merge(pending, { pk, sk: monthSk(monthOf(at)), add: totals, set: {} }, true);
      if (caller.limits.tpm !== undefined) {
        const minute = minuteOf(at);
        merge(
          pending,
          {
            pk,
            sk: minuteSk(minute),
            add: { tokens: counted.tokens },
            set: { ttl: n(minuteTtl(minute)) },
          },
          true,
        );
      }
      if (caller.name !== undefined) {
        merge(pending, { pk, sk: KEY_SK, add: {}, set: { lastUsedAt: n(at) }, onlyIfExists: true }, true);
      }
      options.metrics?.({
        model,
        keyId: caller.id,
        promptTokens: counted.promptTokens,
        completionTokens: counted.completionTokens,
      });
      return counted;
    },
    local(keyId, at) {
      const day = sumLocal(daySk(dayOf(at)), keyId);
      const month = sumLocal(monthSk(monthOf(at)), keyId);
      const minute = sumLocal(minuteSk(minuteOf(at)), keyId);
      return {
        dayTokens: day.tokens,
        dayCost: day.cost,
        monthTokens: month.tokens,
        monthCost: month.cost,
        minuteTokens: minute.tokens,
      };
    },
    flush(flushOptions = {}) {
      chain = chain
        .then(() => flushUntil(flushOptions.deadline))
        .catch((error: unknown) => {
          logger.error({ msg: "usage flush failed", error: (error as Error)?.message });
        });
      return chain;
    },
    start(intervalMs) {
      if (timer) return;
      // Re-armed once each flush is over, so a slow table never stacks flushes up.
      const tick = setTimer(() => void ledger.flush().finally(() => tick.refresh()), intervalMs);
      tick.unref();
      timer = tick;
    },
    stop() {
      timer?.clear();
      timer = undefined;
    },
    get pendingItems() {
      return pending.size + inflight.size;
    },
  };
  return ledger;
}
