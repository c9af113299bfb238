import type { CooldownPolicy } from "../config/types.ts";
import type { Cooldown, CooldownStore } from "./types.ts";

/** The window is kept as this many buckets: a sliding window to a tenth of its length. */
const BUCKETS = 10;
/** A trial whose result never came (the caller left mid-attempt) frees the slot after this long. */
const TRIAL_LEASE_MS = 60_000;
/**
 * After a failed trial the next waits this long: a dead target is not hit by every refused request,
 * and a route whose targets are all down answers 503 at once instead of a trial each time.
 */
const TRIAL_INTERVAL_MS = 1_000;

interface Entry {
  /** Bucket epochs (`floor(now / bucketMs)`), requests and failures, as parallel rings. */
  epochs: number[];
  requests: number[];
  failures: number[];
  cooldown: Cooldown | undefined;
  /** A failure bench has just ended: the next result decides (a failure benches again at once). */
  probation: boolean;
  trialUntil: number;
  nextTrialAt: number;
}

/**
 * The circuit breaker, in this process. A target is benched when, over the last `windowMs`, at least
 * `minRequests` requests were made and the share that failed reaches `failureRateThreshold`: under
 * 64 requests in flight, three failures in a row are noise from a provider failing 30% of the time,
 * and benching it on them refuses callers it would have served. A 429 with `Retry-After` benches the
 * target for as long as the provider asked (capped), and does not count as a failure: the provider
 * is busy, not broken. When a failure bench ends the target is on probation: its next result decides.
 */
export function createMemoryCooldownStore(policy: CooldownPolicy): CooldownStore {
  const entries = new Map<string, Entry>();
  const bucketMs = Math.max(1, Math.ceil(policy.windowMs / BUCKETS));

  const entry = (target: string): Entry => {
    let e = entries.get(target);
    if (e === undefined) {
      e = {
        epochs: new Array<number>(BUCKETS).fill(-1),
        requests: new Array<number>(BUCKETS).fill(0),
        failures: new Array<number>(BUCKETS).fill(0),
        cooldown: undefined,
        probation: false,
        trialUntil: 0,
        nextTrialAt: 0,
      };
      entries.set(target, e);
    }
    return e;
  };

  const count = (e: Entry, now: number, failed: boolean) => {
    const epoch = Math.floor(now / bucketMs);
    const i = epoch % BUCKETS;
    if (e.epochs[i] !== epoch) {
      e.epochs[i] = epoch;
      e.requests[i] = 0;
      e.failures[i] = 0;
    }
    e.requests[i] = (e.requests[i] ?? 0) + 1;
    if (failed) e.failures[i] = (e.failures[i] ?? 0) + 1;
  };

  const tripped = (e: Entry, now: number): boolean => {
    const oldest = Math.floor(now / bucketMs) - BUCKETS + 1;
    let requests = 0;
    let failures = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if ((e.epochs[i] ?? -1) < oldest) continue;
      requests += e.requests[i] ?? 0;
      failures += e.failures[i] ?? 0;
    }
    return requests >= policy.minRequests && failures >= policy.failureRateThreshold * requests;
  };

  const resetWindow = (e: Entry) => {
    e.epochs.fill(-1);
    e.requests.fill(0);
    e.failures.fill(0);
  };

  const bench = (e: Entry, cooldown: Cooldown): Cooldown | undefined => {
    if (e.cooldown !== undefined && e.cooldown.until >= cooldown.until) return undefined;
    e.cooldown = cooldown;
    return cooldown;
  };

  return {
    get(target, now) {
      const e = entries.get(target);
      const cooldown = e?.cooldown;
      if (e === undefined || cooldown === undefined) return undefined;
      if (cooldown.until > now) return cooldown;
      e.cooldown = undefined;
      if (cooldown.reason === "failing") e.probation = true;
      return undefined;
    },
    recordFailure(target, failure, now) {
      const e = entry(target);
      const trial = e.trialUntil > now;
      e.trialUntil = 0;
      if (trial) e.nextTrialAt = now + TRIAL_INTERVAL_MS;
      if (failure.status === 429 && failure.retryAfterMs !== undefined) {
        const until = now + Math.min(failure.retryAfterMs, policy.maxCooldownMs);
        return bench(e, { until, reason: "rate_limited", since: now });
      }
      count(e, now, true);
      if (!(trial || e.probation || tripped(e, now))) return undefined;
      e.probation = false;
      resetWindow(e);
      return bench(e, { until: now + policy.cooldownMs, reason: "failing", since: now });
    },
    recordSuccess(target, now) {
      const e = entries.get(target);
      if (e === undefined) {
        count(entry(target), now, false);
        return;
      }
      const trial = e.trialUntil > now;
      e.trialUntil = 0;
      if (trial || e.probation || e.cooldown?.reason === "failing") {
        // The target answered after being benched for failures: it is back.
        e.cooldown = undefined;
        e.probation = false;
        resetWindow(e);
      }
      count(e, now, false);
    },
    endTrial(target) {
      const e = entries.get(target);
      if (e !== undefined) e.trialUntil = 0;
    },
    tryTrial(target, now) {
      const e = entry(target);
      if (e.trialUntil > now || e.nextTrialAt > now) return false;
      e.trialUntil = now + TRIAL_LEASE_MS;
      return true;
    },
  };
}
