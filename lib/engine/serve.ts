import { capTimeouts } from "../config/timeouts.ts";
import type { ModelRoute, RouteTarget } from "../config/types.ts";
import { targetKey } from "../cooldown/target.ts";
import { ClientAbortError, GatewayError, InternalError } from "../errors.ts";
import type { WholeGeneration } from "../providers/generation.ts";
import { retry } from "../retry/policy.ts";
import { countFailure, countWhole, startAttempt } from "./metering.ts";
import { type OpenedStream, openStream } from "./open.ts";
import { exhausted, isDeadline } from "./outcome.ts";
import {
  type Call,
  type Candidate,
  cooldownOf,
  deadlineError,
  type EngineCall,
  type EngineContext,
  name,
  type RequestRun,
  recordFailure,
  recordSuccess,
  startRun,
} from "./run.ts";

/**
 * What the engine does with one candidate: a stream opened to its first token, a whole answer, an
 * embedding (`embed.ts`). It runs under the candidate's retry policy (see {@link withAttempts}); a
 * failure is a thrown `GatewayError` whose `action` says whether to retry, fail over or return it.
 */
export interface Operation<R, C extends EngineCall = Call> {
  attempt(run: RequestRun<C>, candidate: Candidate, maxAttempts: number | undefined): Promise<R>;
  /**
   * Narrows the route's candidates, in the balancer's order, to those this operation may use (the
   * embeddings of one vector space); the loop then runs over what it returns. All when absent.
   */
  plan?(candidates: Candidate[], call: C): Candidate[];
  /**
   * The value owns the rest of the request (a stream's relay ends it and writes its log line); else
   * the engine ends the request as soon as the value is in hand.
   */
  readonly continues: boolean;
}

/** How a request went: an answer from one candidate (the others kept for a continuation), or an error. */
export type Served<R, C extends EngineCall = Call> =
  | { ok: true; value: R; candidate: Candidate; others: Candidate[]; run: RequestRun<C> }
  | { ok: false; error: GatewayError; run: RequestRun<C> };

/** A benched candidate this request passed over, and the bench. */
interface Skipped {
  candidate: Candidate;
  until: number;
  reason: "rate_limited" | "failing";
}

/** An answer, or what to do after a failure: try the next candidate, or stop (deadline). */
type Attempted<R, C extends EngineCall> = Served<R, C> | "next" | "stop";

/** A context-window fallback in progress: only later targets with a larger window may answer. */
interface ContextFallback {
  error: GatewayError;
  window: number;
  models: Set<string>;
}

/**
 * Serves one request along the route's targets: each target gets its own retry attempts; then the
 * next target is tried. For a stream nothing reaches the caller before the first content token from
 * some target is in hand, so every failure before it can fail over invisibly (see `relay.ts` for
 * what happens after). When every target is benched the request waits for the first to come back,
 * or sends one trial to a failure-benched target, before it refuses the caller. The engine never
 * writes a response: the dialect adapter turns what it returns into its caller's wire format.
 */
export async function serve<R, C extends EngineCall = Call>(
  context: EngineContext,
  call: C,
  operation: Operation<R, C>,
): Promise<Served<R, C>> {
  const run = startRun(context, call);
  try {
    const candidates = await plan(context, call.route);
    const served = await serveRun(run, operation.plan?.(candidates, call) ?? candidates, operation);
    if (served.ok && !operation.continues)
      run.finish(200, "ok", { provider: served.candidate.target.provider });
    if (served.ok && operation.continues) run.handedOff = true;
    return served;
  } catch (error) {
    if (error instanceof ClientAbortError || call.signal.aborted) {
      run.finish(499, "client_closed");
      throw new ClientAbortError();
    }
    run.finish(500, "error");
    throw error;
  } finally {
    if (!run.handedOff) run.release();
  }
}

async function serveRun<R, C extends EngineCall>(
  run: RequestRun<C>,
  candidates: Candidate[],
  operation: Operation<R, C>,
): Promise<Served<R, C>> {
  const { deps, call } = run;
  const failures: GatewayError[] = [];
  const skipped: Skipped[] = [];
  let fallback: ContextFallback | undefined;

  /** Tries one candidate; a failure is recorded and its outcome returned for the caller to weigh. */
  const attempt = async (
    candidate: Candidate,
    rest: Candidate[],
    trial = false,
  ): Promise<Attempted<R, C>> => {
    try {
      const value = await operation.attempt(run, candidate, trial ? 1 : undefined);
      return { ok: true, value, candidate, others: rest, run };
    } catch (error) {
      if (call.signal.aborted) throw new ClientAbortError();
      if (run.signal.aborted) {
        // Only a stream's deadline timer aborts this signal without the caller leaving.
        failures.push(run.signal.reason as GatewayError);
        return "stop";
      }
      if (error instanceof ClientAbortError) throw error;
      // Our own bug: the edge answers 500 with the request id and logs it once.
      if (!(error instanceof GatewayError) || error instanceof InternalError) throw error;
      if (error.action !== "return") {
        failures.push(error);
        return "next";
      }
      // The upstream error mappings (lib/retry/classify.ts, bedrock-errors.ts) decide that a refusal
      // says the prompt does not fit the model's window, from a code or from words.
      if (fallback === undefined && error.code === "context_length_exceeded") {
        const window = candidate.target.contextWindow ?? 0;
        const models = new Set([candidate.target.model]);
        if (rest.some((c) => fitsLarger(c.target, { error, window, models }))) {
          fallback = { error, window, models };
          return "next";
        }
      }
      run.finish(error.status, "error", { provider: candidate.target.provider });
      return { ok: false, error, run };
    }
  };

  for (const [index, candidate] of candidates.entries()) {
    if (deps.now() >= call.deadline) break;
    if (fallback !== undefined && !fitsLarger(candidate.target, fallback)) continue;
    const cooldown = cooldownOf(run, candidate);
    if (cooldown !== undefined) {
      skipped.push({ candidate, until: cooldown.until, reason: cooldown.reason });
      run.attempts.push({
        ...name(candidate),
        outcome: "skipped",
        error: `cooldown (${cooldown.reason})`,
        ms: 0,
      });
      continue;
    }
    const outcome = await attempt(candidate, [...candidates.slice(index + 1), ...candidates.slice(0, index)]);
    if (outcome === "stop") break;
    if (outcome !== "next") return outcome;
  }

  if (fallback !== undefined) {
    // No larger model answered: the caller's 400 goes back as the first target gave it.
    run.finish(fallback.error.status, "error");
    return { ok: false, error: fallback.error, run };
  }

  // Every target was benched or failed. A bench is no reason to refuse a caller who can be served.
  const second = await lastChance(run, skipped, candidates, attempt);
  if (second !== undefined) return second;

  // Whatever failed last was cut short by the deadline (every timeout is capped at the time left).
  if (deps.now() >= call.deadline && !failures.some(isDeadline))
    failures.push(deadlineError(call, run.started));
  const now = deps.now();
  const cooling = skipped.filter((s) => s.until > now);
  const error = exhausted(call, candidates.length, failures, cooling, now);
  run.finish(error.status, "error");
  return { ok: false, error, run };
}

/**
 * When no target answered and some are benched: wait for the bench that ends first, if that is
 * within the request's deadline and the provider's `maxRetryAfterMs` (what a good client does with
 * `Retry-After`), and try that target; failing that, send one trial request to a failure-benched
 * target this request skipped (half-open). Only then is the caller refused.
 */
async function lastChance<R, C extends EngineCall>(
  run: RequestRun<C>,
  skipped: Skipped[],
  candidates: Candidate[],
  attempt: (candidate: Candidate, rest: Candidate[], trial?: boolean) => Promise<Attempted<R, C>>,
): Promise<Served<R, C> | undefined> {
  const { deps, call, context } = run;
  if (run.signal.aborted) return undefined;
  const others = (c: Candidate) => candidates.filter((o) => o !== c);
  const tried = new Set<Candidate>();
  // Skipped targets, and those this request met a rate limit on (a provider asking to wait), each
  // tried once here, soonest first: when one fails after its wait, the next may be free by then.
  for (;;) {
    const now = deps.now();
    const waitable = candidates.flatMap((candidate) => {
      if (tried.has(candidate)) return [];
      const cooldown = context.cooldowns.get(candidate.key, now);
      const wasSkipped = skipped.some((s) => s.candidate === candidate);
      if (cooldown === undefined) return wasSkipped ? [{ candidate, until: now }] : [];
      return wasSkipped || cooldown.reason === "rate_limited" ? [{ candidate, until: cooldown.until }] : [];
    });
    if (waitable.length === 0) break;
    const soonest = waitable.reduce((x, y) => (y.until < x.until ? y : x));
    const wait = Math.max(0, soonest.until - now);
    if (wait > soonest.candidate.provider.config.retry.maxRetryAfterMs || now + wait >= call.deadline) break;
    try {
      await deps.sleep(wait, run.signal);
    } catch {
      if (call.signal.aborted) throw new ClientAbortError();
      return undefined; // the deadline passed while waiting
    }
    run.attempts.push({ ...name(soonest.candidate), outcome: "waited", ms: deps.now() - now });
    tried.add(soonest.candidate);
    const outcome = await attempt(soonest.candidate, others(soonest.candidate));
    if (outcome === "stop") return undefined;
    if (outcome !== "next") return outcome;
  }
  for (const s of skipped) {
    if (tried.has(s.candidate) || s.reason !== "failing" || deps.now() >= call.deadline) continue;
    if (!context.cooldowns.tryTrial(s.candidate.key, deps.now())) continue;
    deps.logger.info({
      msg: "trial request to a benched target",
      requestId: call.requestId,
      target: s.candidate.key,
    });
    const outcome = await attempt(s.candidate, others(s.candidate), true).finally(() =>
      // A success or a provider fault already decided the trial; anything else (the caller's
      // deadline, a full pool, a 4xx) must not hold the slot for the whole lease.
      context.cooldowns.endTrial(s.candidate.key),
    );
    return outcome === "next" || outcome === "stop" ? undefined : outcome;
  }
  return undefined;
}

/** A later target may take a context-length fallback if its declared window is larger, on another model. */
function fitsLarger(target: RouteTarget, fallback: ContextFallback): boolean {
  return (
    target.contextWindow !== undefined &&
    target.contextWindow > fallback.window &&
    !fallback.models.has(target.model)
  );
}

/** A stream, opened on one candidate up to its first content token; the relay takes it from there. */
export const streamedAnswer: Operation<OpenedStream> = {
  continues: true,
  attempt: (run, candidate, maxAttempts) =>
    withAttempts(run, candidate, maxAttempts, () => openStream(run, candidate, run.call.input)),
};

/** A whole answer from one candidate. */
export const wholeAnswer: Operation<WholeGeneration> = {
  continues: false,
  attempt: (run, candidate, maxAttempts) =>
    withAttempts(run, candidate, maxAttempts, async () => {
      const usage = startAttempt(run.usage);
      try {
        const answer = await candidate.provider.chat.complete(run.call.input, {
          model: candidate.target.model,
          signal: run.signal,
          timeouts: capTimeouts(candidate.provider.config.timeouts, run.call.deadline - run.deps.now()),
        });
        countWhole(usage, answer);
        return answer;
      } catch (error) {
        countFailure(usage, error, run.signal.aborted);
        throw error;
      }
    }),
};

/**
 * Runs `call` under the candidate's retry policy (its provider's `retry` configuration), recording
 * each attempt and feeding cooldowns. The engine, not the provider, applies the policy.
 */
export async function withAttempts<T>(
  run: RequestRun<EngineCall>,
  candidate: Candidate,
  maxAttempts: number | undefined,
  call: () => Promise<T>,
): Promise<T> {
  const { deps } = run;
  let started = deps.now();
  const result = await retry(
    () => {
      started = deps.now();
      return call();
    },
    candidate.provider.config.retry,
    deps,
    {
      signal: run.signal,
      deadline: run.call.deadline,
      ...(maxAttempts === undefined ? {} : { maxAttempts }),
      onAttemptFailed: (error) => recordFailure(run, candidate, error, deps.now() - started),
    },
  );
  recordSuccess(run, candidate, deps.now() - started);
  return result;
}

/** Each route's targets by key, built once (routes are immutable configuration). */
const targetsByKey = new WeakMap<ModelRoute, Map<string, RouteTarget>>();

/**
 * The route's targets in the balancer's order (health and weights from the cached table), leaving
 * out those whose provider is disabled in config or lacks a key. Cooling targets stay in the list
 * and are skipped (and reported) by the caller.
 */
async function plan(context: EngineContext, route: ModelRoute): Promise<Candidate[]> {
  await context.health.refresh();
  let byKey = targetsByKey.get(route);
  if (byKey === undefined) {
    byKey = new Map(route.targets.map((t) => [targetKey(t.provider, t.model), t]));
    targetsByKey.set(route, byKey);
  }
  const order = context.balancers.get(route.name)?.getAvailableProviders() ?? [...byKey.keys()];
  const candidates: Candidate[] = [];
  for (const key of order) {
    const target = byKey.get(key);
    if (!target || !context.factory.isProviderConfigured(target.provider)) continue;
    const provider = context.factory.getProvider(target.provider);
    if (provider) candidates.push({ target, provider, key });
  }
  return candidates;
}
