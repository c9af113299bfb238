import { capTimeouts } from "../config/timeouts.ts";
import type { ModelRoute, RouteTarget } from "../config/types.ts";
import { targetKey } from "../cooldown/target.ts";
import { ClientAbortError, GatewayError, InternalError } from "../errors.ts";
import { countCompletion, countFailure, startAttempt } from "./metering.ts";
import { openStream } from "./open.ts";
import { exhausted, isContextLengthError, isDeadline } from "./outcome.ts";
import {
  answeredBy,
  attemptCount,
  type Candidate,
  type ChatCall,
  type ChatContext,
  cooldownOf,
  deadlineError,
  name,
  type RequestRun,
  recordFailure,
  recordSuccess,
  startRun,
} from "./request.ts";
import { errorResponse, type GatewayResponse, jsonHeaders } from "./response.ts";
import { streamResponse } from "./stream.ts";

export type { AttemptRecord, ChatCall, ChatContext } from "./request.ts";

/** A benched candidate this request passed over, and the bench. */
interface Skipped {
  candidate: Candidate;
  until: number;
  reason: "rate_limited" | "failing";
}

/** A response, or what to do after a failure: try the next candidate, or stop (deadline). */
type Attempted = GatewayResponse | "next" | "stop";

/** A context-window fallback in progress: only later targets with a larger window may answer. */
interface ContextFallback {
  error: GatewayError;
  window: number;
  models: Set<string>;
}

/**
 * Serves one chat completion along the route's targets: each target gets its own retry attempts;
 * then the next target is tried. Nothing reaches the caller before the first content token from
 * some target is in hand, so every failure before it can fail over invisibly (see `stream.ts` for
 * what happens after). When every target is benched the request waits for the first to come back,
 * or sends one trial to a failure-benched target, before it refuses the caller.
 */
export async function completeChat(context: ChatContext, call: ChatCall): Promise<GatewayResponse> {
  const run = startRun(context, call);
  try {
    return await serve(run, await plan(context, call.route));
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

async function serve(run: RequestRun, candidates: Candidate[]): Promise<GatewayResponse> {
  const { deps, call } = run;
  const failures: GatewayError[] = [];
  const skipped: Skipped[] = [];
  let fallback: ContextFallback | undefined;

  /** Tries one candidate; a failure is recorded and its outcome returned for the caller to weigh. */
  const attempt = async (candidate: Candidate, rest: Candidate[], trial = false): Promise<Attempted> => {
    try {
      return await answer(run, candidate, rest, trial ? 1 : undefined);
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
      if (fallback === undefined && isContextLengthError(error)) {
        const window = candidate.target.contextWindow ?? 0;
        const models = new Set([candidate.target.model]);
        if (rest.some((c) => fitsLarger(c.target, { error, window, models }))) {
          fallback = { error, window, models };
          return "next";
        }
      }
      run.finish(error.status, "error", { provider: candidate.target.provider });
      return errorResponse(error, call.requestId, {
        "x-gateway-attempts": String(attemptCount(run.attempts)),
      });
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
    return errorResponse(fallback.error, call.requestId, {
      "x-gateway-attempts": String(attemptCount(run.attempts)),
    });
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
  return errorResponse(error, call.requestId, { "x-gateway-attempts": String(attemptCount(run.attempts)) });
}

/**
 * When no target answered and some are benched: wait for the bench that ends first, if that is
 * within the request's deadline and the provider's `maxRetryAfterMs` (what a good client does with
 * `Retry-After`), and try that target; failing that, send one trial request to a failure-benched
 * target this request skipped (half-open). Only then is the caller refused.
 */
async function lastChance(
  run: RequestRun,
  skipped: Skipped[],
  candidates: Candidate[],
  attempt: (candidate: Candidate, rest: Candidate[], trial?: boolean) => Promise<Attempted>,
): Promise<GatewayResponse | undefined> {
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

/** One candidate, under its retry policy: a stream opened to its first token, or a whole answer. */
async function answer(
  run: RequestRun,
  candidate: Candidate,
  rest: Candidate[],
  maxAttempts: number | undefined,
): Promise<GatewayResponse> {
  const { call, deps } = run;
  if (run.streaming) {
    const opened = await withAttempts(run, candidate, maxAttempts, () =>
      openStream(run, candidate, call.request),
    );
    return streamResponse(run, opened, rest);
  }
  const result = await withAttempts(run, candidate, maxAttempts, async () => {
    const usage = startAttempt(run.usage);
    try {
      const result = await candidate.provider.chatCompletion(
        { ...call.request, model: candidate.target.model },
        {
          signal: run.signal,
          timeouts: capTimeouts(candidate.provider.config.timeouts, call.deadline - deps.now()),
        },
      );
      countCompletion(usage, result.json);
      return result;
    } catch (error) {
      countFailure(usage, error, run.signal.aborted);
      throw error;
    }
  });
  run.finish(200, "ok", { provider: candidate.target.provider });
  return {
    status: 200,
    headers: { ...jsonHeaders, ...answeredBy(run, candidate) },
    body: result.body,
  };
}

/** Runs `call` under the candidate's retry policy, recording each attempt and feeding cooldowns. */
async function withAttempts<T>(
  run: RequestRun,
  candidate: Candidate,
  maxAttempts: number | undefined,
  call: () => Promise<T>,
): Promise<T> {
  const { deps } = run;
  let started = deps.now();
  const result = await candidate.provider.withRetry(
    () => {
      started = deps.now();
      return call();
    },
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
async function plan(context: ChatContext, route: ModelRoute): Promise<Candidate[]> {
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
