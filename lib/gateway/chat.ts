import { type ChildAbort, childAbort } from "../abort.ts";
import type { LoadBalancer } from "../balancer/load-balancer.ts";
import { capTimeouts } from "../config/timeouts.ts";
import type { GatewayConfig, ModelRoute, RouteTarget } from "../config/types.ts";
import type { Deps } from "../deps.ts";
import {
  ClientAbortError,
  GatewayError,
  toOpenAIErrorBody,
  UpstreamError,
  UpstreamTimeoutError,
} from "../errors.ts";
import type { HealthView } from "../health/view.ts";
import { SSE_DONE, sseData } from "../http/sse.ts";
import { hasContent } from "../providers/chunks.ts";
import type { ProviderFactory } from "../providers/factory.ts";
import type { ChatChunk, ChatRequest, ChatStream, Provider, StreamEvent } from "../providers/types.ts";
import { toUpstreamError } from "../retry/classify.ts";
import type { ClientAuth } from "./auth.ts";
import { type CooldownStore, targetKey } from "./cooldown.ts";
import { errorResponse, type GatewayResponse, jsonHeaders } from "./response.ts";

export interface ChatContext {
  config: GatewayConfig;
  factory: ProviderFactory;
  cooldowns: CooldownStore;
  /** The cached health table: refreshed (when stale) before each request is planned. */
  health: HealthView;
  /** One balancer per model route, by route name. */
  balancers: ReadonlyMap<string, LoadBalancer>;
  /** Client authentication; none means open (local development). */
  auth?: ClientAuth | undefined;
  deps: Deps;
}

export interface ChatCall {
  request: ChatRequest;
  route: ModelRoute;
  requestId: string;
  /** Aborts when the caller goes away. */
  signal: AbortSignal;
  /** Absolute clock time by which the whole request, stream included, must be over. */
  deadline: number;
}

interface Candidate {
  target: RouteTarget;
  provider: Provider;
  key: string;
}

export interface AttemptRecord {
  provider: string;
  model: string;
  outcome: "ok" | "error" | "skipped";
  status?: number;
  code?: string | null;
  error?: string;
  ms: number;
}

/** A stream whose first content is in hand, with the events read so far. */
interface OpenedStream {
  candidate: Candidate;
  stream: ChatStream;
  iterator: AsyncIterator<StreamEvent>;
  buffered: StreamEvent[];
  /** Aborts this attempt (with the request); its reason is the timeout that fired. */
  attempt: ChildAbort;
  /** Reset on every data event; fires the idle timeout. */
  idleTimer: NodeJS.Timeout;
}

/** What has gone to the caller so far, so a cut stream can be continued elsewhere. */
interface RelayState {
  text: string;
  /** Single choice and plain content only: a continuation can rebuild exactly what was sent. */
  resumable: boolean;
  /** Choice indexes that sent a finish reason; the answer is whole once all `n` have. */
  finishedChoices: Set<number>;
  choices: number;
  usage: unknown;
  ttftMs: number | undefined;
}

/**
 * Serves one chat completion along the route's targets: each target gets its own retry attempts;
 * then the next target is tried. Nothing reaches the caller before the first content token from
 * some target is in hand, so every failure before it can fail over invisibly. After that, a failure
 * is continued on another target where one can continue, and otherwise ends the stream with an
 * error event and no `[DONE]`: a cut answer never looks whole.
 */
export async function completeChat(context: ChatContext, call: ChatCall): Promise<GatewayResponse> {
  const { deps } = context;
  const started = deps.now();
  const attempts: AttemptRecord[] = [];
  const streaming = call.request.stream === true;
  const deadlineError = () => new UpstreamTimeoutError("gateway", "deadline", call.deadline - started);
  // A stream can outlive every per-attempt timeout, so it gets a deadline timer that aborts it (the
  // reason tells deadline from caller). A non-streaming call needs none: each attempt's timeouts are
  // capped at the time left, and no attempt or wait starts past the deadline. Saved per request: a
  // controller, a listener and a timer (see BENCHMARKS.md).
  const request = streaming ? childAbort(call.signal) : undefined;
  const deadlineTimer = request
    ? setTimeout(() => request.controller.abort(deadlineError()), Math.max(0, call.deadline - started))
    : undefined;
  const signal = request?.signal ?? call.signal;
  const release = () => {
    clearTimeout(deadlineTimer);
    request?.dispose();
  };
  const candidates = await plan(context, call.route);
  let keepTimer = false;

  /** One structured log line per request (never prompts, completions or keys), and its metrics. */
  const finish = (
    status: number,
    extra: { provider?: string; ttftMs?: number | undefined; usage?: unknown } = {},
  ) => {
    const latencyMs = deps.now() - started;
    deps.logger.info({
      msg: "chat completion",
      requestId: call.requestId,
      model: call.route.name,
      stream: streaming,
      status,
      attempts,
      latencyMs,
      ...extra,
    });
    deps.metrics?.({
      provider: extra.provider,
      status,
      latencyMs,
      ttftMs: extra.ttftMs,
      fellBack: attempts.some((a) => a.outcome !== "ok"),
    });
  };

  try {
    const failures: GatewayError[] = [];
    const cooling: Array<{ until: number; reason: string }> = [];
    for (const [index, candidate] of candidates.entries()) {
      if (deps.now() >= call.deadline) break;
      const cooldown = context.cooldowns.get(candidate.key, deps.now());
      if (cooldown !== undefined) {
        cooling.push(cooldown);
        attempts.push({
          ...name(candidate),
          outcome: "skipped",
          error: `cooldown (${cooldown.reason})`,
          ms: 0,
        });
        continue;
      }
      try {
        if (streaming) {
          const opened = await withAttempts(context, candidate, call, signal, attempts, () =>
            openStream(context, candidate, call.request, signal, call.deadline, false),
          );
          keepTimer = true;
          const state: RelayState = {
            text: "",
            resumable: (call.request.n ?? 1) === 1,
            finishedChoices: new Set(),
            choices: call.request.n ?? 1,
            usage: undefined,
            ttftMs: deps.now() - started,
          };
          const body = relay(
            context,
            call,
            opened,
            candidates.slice(index + 1),
            state,
            signal,
            attempts,
            (status, provider) => {
              release();
              finish(status, { provider, ttftMs: state.ttftMs, usage: state.usage });
            },
          );
          return {
            status: 200,
            headers: {
              "content-type": "text/event-stream; charset=utf-8",
              "cache-control": "no-cache",
              ...answeredBy(call.requestId, opened.candidate, attempts),
            },
            body,
          };
        }
        const result = await withAttempts(context, candidate, call, signal, attempts, () =>
          candidate.provider.chatCompletion(
            { ...call.request, model: candidate.target.model },
            { signal, timeouts: capTimeouts(candidate.provider.config.timeouts, call.deadline - deps.now()) },
          ),
        );
        finish(200, { provider: candidate.target.provider, usage: result.json.usage });
        return {
          status: 200,
          headers: { ...jsonHeaders, ...answeredBy(call.requestId, candidate, attempts) },
          body: result.body,
        };
      } catch (error) {
        if (call.signal.aborted) throw new ClientAbortError();
        if (signal.aborted) {
          // Only a stream's deadline timer aborts this signal without the caller leaving.
          failures.push(signal.reason as GatewayError);
          break;
        }
        if (!(error instanceof GatewayError)) throw error;
        if (error.action === "return") {
          finish(error.status, { provider: candidate.target.provider });
          return errorResponse(error, call.requestId, {
            "x-gateway-attempts": String(attemptCount(attempts)),
          });
        }
        failures.push(error);
      }
    }
    // Whatever failed last was cut short by the deadline (every timeout is capped at the time left).
    if (deps.now() >= call.deadline && !failures.some(isDeadline)) failures.push(deadlineError());
    const error = exhausted(call, candidates.length, failures, cooling, deps.now());
    finish(error.status);
    return errorResponse(error, call.requestId, { "x-gateway-attempts": String(attemptCount(attempts)) });
  } finally {
    if (!keepTimer) release();
  }
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
  const order = context.balancers.get(route.name)?.order() ?? [...byKey.keys()];
  const candidates: Candidate[] = [];
  for (const key of order) {
    const target = byKey.get(key);
    if (!target || !context.factory.isProviderConfigured(target.provider)) continue;
    const provider = context.factory.getProvider(target.provider);
    if (provider) candidates.push({ target, provider, key });
  }
  return candidates;
}

/** Runs `call` under the candidate's retry policy, recording each attempt and feeding cooldowns. */
async function withAttempts<T>(
  context: ChatContext,
  candidate: Candidate,
  call: ChatCall,
  signal: AbortSignal,
  attempts: AttemptRecord[],
  attempt: () => Promise<T>,
): Promise<T> {
  const { deps } = context;
  let started = deps.now();
  const result = await candidate.provider.withRetry(
    () => {
      started = deps.now();
      return attempt();
    },
    {
      signal,
      deadline: call.deadline,
      onAttemptFailed: (error) => {
        attempts.push(failedAttempt(candidate, error, deps.now() - started));
        context.cooldowns.recordFailure(candidate.key, error, deps.now());
      },
    },
  );
  attempts.push({ ...name(candidate), outcome: "ok", ms: deps.now() - started });
  context.cooldowns.recordSuccess(candidate.key, deps.now());
  return result;
}

function attemptCount(attempts: AttemptRecord[]): number {
  return attempts.filter((a) => a.outcome !== "skipped").length;
}

function failedAttempt(candidate: Candidate, error: GatewayError, ms: number): AttemptRecord {
  return {
    ...name(candidate),
    outcome: "error",
    status: error.status,
    code: error.code,
    error: error.message,
    ms,
  };
}

function name(candidate: Candidate) {
  return { provider: candidate.target.provider, model: candidate.target.model };
}

function answeredBy(
  requestId: string,
  candidate: Candidate,
  attempts: AttemptRecord[],
): Record<string, string> {
  return {
    "x-request-id": requestId,
    "x-gateway-provider": candidate.target.provider,
    "x-gateway-model": candidate.target.model,
    "x-gateway-attempts": String(attemptCount(attempts)),
  };
}

/**
 * Opens a stream on one candidate and reads until its first content chunk, under the first-token
 * timeout. Keep-alive comments and role-only chunks do not stop that timer.
 */
async function openStream(
  context: ChatContext,
  candidate: Candidate,
  request: ChatRequest,
  signal: AbortSignal,
  deadline: number,
  prefill: boolean,
): Promise<OpenedStream> {
  const timeouts = capTimeouts(candidate.provider.config.timeouts, deadline - context.deps.now());
  const attempt = childAbort(signal);
  const id = candidate.provider.id;
  const firstTokenTimer = setTimeout(
    () => attempt.controller.abort(new UpstreamTimeoutError(id, "first_token", timeouts.firstTokenMs)),
    timeouts.firstTokenMs,
  );
  let stream: ChatStream | undefined;
  try {
    stream = await candidate.provider.streamChat(
      { ...request, model: candidate.target.model },
      { signal: attempt.signal, timeouts, prefill },
    );
    const iterator = stream.events[Symbol.asyncIterator]();
    const buffered: StreamEvent[] = [];
    for (;;) {
      const next = await iterator.next();
      if (next.done || next.value.kind === "done") {
        throw new UpstreamError(`${id}: stream ended before any content`, {
          status: 502,
          code: "upstream_empty_stream",
          action: "retry",
          providerId: id,
        });
      }
      buffered.push(next.value);
      if (hasContent(next.value.chunk)) break;
    }
    const idleTimer = setTimeout(
      () => attempt.controller.abort(new UpstreamTimeoutError(id, "idle", timeouts.idleMs)),
      timeouts.idleMs,
    );
    return { candidate, stream, iterator, buffered, attempt, idleTimer };
  } catch (error) {
    stream?.cancel();
    attempt.dispose();
    if (attempt.signal.aborted && !signal.aborted) throw attempt.signal.reason;
    throw toUpstreamError(id, error);
  } finally {
    clearTimeout(firstTokenTimer);
  }
}

/**
 * Forwards a stream to the caller event by event, upstream bytes unchanged. On a failure after the
 * first byte it tries to continue the answer on the remaining candidates; failing that it sends an
 * error event in the OpenAI shape and ends without `[DONE]`.
 */
async function* relay(
  context: ChatContext,
  call: ChatCall,
  first: OpenedStream,
  remaining: Candidate[],
  state: RelayState,
  signal: AbortSignal,
  attempts: AttemptRecord[],
  /** Called once the relay is over: 200 (whole answer), 502 (cut answer), 499 (caller gone). */
  onEnd: (status: number, provider: string) => void,
): AsyncGenerator<string> {
  let current = first;
  let skipPrefix: string | undefined;
  let originalError: GatewayError | undefined;
  let queue = remaining;
  let outcome = 499;
  try {
    for (;;) {
      try {
        const completed = yield* forward(current, state, skipPrefix);
        if (completed) {
          outcome = 200;
          yield SSE_DONE;
          return;
        }
        throw new UpstreamError(`${current.candidate.provider.id}: stream ended without a finish reason`, {
          status: 502,
          code: "upstream_stream_cut",
          action: "failover",
          providerId: current.candidate.provider.id,
        });
      } catch (thrown) {
        current.stream.cancel();
        clearTimeout(current.idleTimer);
        current.attempt.dispose();
        if (call.signal.aborted) return;
        const error =
          current.attempt.signal.aborted || signal.aborted
            ? ((current.attempt.signal.reason ?? signal.reason) as GatewayError)
            : toUpstreamError(current.candidate.provider.id, thrown);
        if (!(error instanceof GatewayError)) throw thrown;
        if (finished(state)) {
          // Every choice had finished: the answer is whole, only the tail (usage, [DONE]) went missing.
          outcome = 200;
          yield SSE_DONE;
          return;
        }
        originalError ??= error;
        attempts.push(failedAttempt(current.candidate, error, 0));
        context.cooldowns.recordFailure(current.candidate.key, error, context.deps.now());
        context.deps.logger.warn({
          msg: "stream failed after first byte",
          requestId: call.requestId,
          provider: current.candidate.target.provider,
          error: error.message,
          sentChars: state.text.length,
        });
        const next =
          state.resumable && !signal.aborted
            ? await resume(context, call, queue, state, signal, attempts)
            : undefined;
        if (next === undefined) {
          outcome = 502;
          yield sseData(JSON.stringify(toOpenAIErrorBody(interrupted(originalError, state))));
          return;
        }
        current = next.opened;
        skipPrefix = next.skipPrefix;
        queue = next.rest;
      }
    }
  } finally {
    clearTimeout(current.idleTimer);
    current.attempt.dispose();
    current.stream.cancel();
    onEnd(outcome, current.candidate.target.provider);
  }
}

/**
 * Yields one stream's events to the caller. Returns true when the stream completed (`[DONE]`, or a
 * clean end after every choice finished). With `skipPrefix` (a restarted answer) the text the caller
 * already has is checked and dropped; a divergence throws.
 */
async function* forward(
  opened: OpenedStream,
  state: RelayState,
  skipPrefix: string | undefined,
): AsyncGenerator<string, boolean> {
  let pending = skipPrefix;
  let batch = "";
  const emit = (event: StreamEvent & { kind: "chunk" }) => {
    observe(state, event.chunk);
    batch += sseData(event.raw);
  };
  const handle = (event: StreamEvent): boolean => {
    if (event.kind === "done") {
      // A restarted answer that ends before it has caught up with the text sent is no completion.
      if (pending !== undefined) throw diverged(opened);
      return true;
    }
    opened.idleTimer.refresh();
    if (pending === undefined) {
      emit(event);
      return false;
    }
    const choice = event.chunk.choices?.[0];
    const text = choice?.delta?.content ?? "";
    if (!text && !choice?.finish_reason) return false; // the restarted answer's role chunk
    if (text.length <= pending.length) {
      if (!pending.startsWith(text)) throw diverged(opened);
      pending = pending.slice(text.length);
      if (pending !== "") {
        if (choice?.finish_reason) throw diverged(opened);
        return false;
      }
      pending = undefined;
      if (!choice?.finish_reason) return false;
    } else if (!text.startsWith(pending)) {
      throw diverged(opened);
    }
    // This chunk reaches past what the caller has: forward only the new part (maybe just the finish).
    const rest = text.slice(pending?.length ?? text.length);
    pending = undefined;
    const rewritten = {
      ...event.chunk,
      choices: [{ ...choice, delta: { ...choice?.delta, content: rest } }],
    };
    emit({ kind: "chunk", raw: JSON.stringify(rewritten), chunk: rewritten });
    return false;
  };

  for (const event of opened.buffered) if (handle(event)) return true;
  opened.buffered = [];
  if (batch) {
    yield batch;
    batch = "";
  }
  for (;;) {
    const next = await opened.iterator.next();
    if (next.done) return finished(state);
    if (handle(next.value)) {
      if (batch) yield batch;
      return true;
    }
    if (batch) {
      yield batch;
      batch = "";
    }
  }
}

function diverged(opened: OpenedStream): UpstreamError {
  return new UpstreamError(
    `${opened.candidate.provider.id}: restarted answer does not begin with the text already sent`,
    {
      status: 502,
      code: "continuation_diverged",
      action: "failover",
      providerId: opened.candidate.provider.id,
    },
  );
}

/** Tracks what the caller has received; anything but plain single-choice text cannot be rebuilt. */
function observe(state: RelayState, chunk: ChatChunk): void {
  if (chunk.usage) state.usage = chunk.usage;
  const choices = chunk.choices;
  if (!choices || choices.length === 0) return;
  for (const choice of choices) {
    const index = choice.index ?? 0;
    if (choice.finish_reason) state.finishedChoices.add(index);
    const delta = choice.delta;
    if (!delta) continue;
    if (index !== 0) state.resumable = false;
    else if (delta.content) state.text += delta.content;
    if (delta.tool_calls?.length || delta.function_call || delta.reasoning_content || delta.refusal)
      state.resumable = false;
  }
}

function finished(state: RelayState): boolean {
  return state.finishedChoices.size >= state.choices;
}

/**
 * Finds a candidate to continue a cut answer: one declared able to take an assistant prefill gets
 * the conversation plus the partial answer and streams only the continuation; otherwise, if allowed,
 * one restarts the answer and is kept only if it begins with exactly the text already sent.
 */
async function resume(
  context: ChatContext,
  call: ChatCall,
  candidates: Candidate[],
  state: RelayState,
  signal: AbortSignal,
  attempts: AttemptRecord[],
): Promise<{ opened: OpenedStream; skipPrefix: string | undefined; rest: Candidate[] } | undefined> {
  const { deps } = context;
  for (const [i, candidate] of candidates.entries()) {
    if (signal.aborted) return undefined;
    if (context.cooldowns.get(candidate.key, deps.now())) continue;
    const prefill = candidate.provider.config.assistantPrefill;
    if (!prefill && !context.config.resumeByRestart) continue;
    const request: ChatRequest = prefill
      ? {
          ...call.request,
          messages: [...call.request.messages, { role: "assistant", content: state.text, prefix: true }],
        }
      : call.request;
    const started = deps.now();
    try {
      const opened = await openStream(context, candidate, request, signal, call.deadline, prefill);
      attempts.push({ ...name(candidate), outcome: "ok", ms: deps.now() - started });
      deps.logger.info({
        msg: prefill ? "continuing cut stream" : "restarting cut stream",
        requestId: call.requestId,
        provider: candidate.target.provider,
      });
      if (prefill) {
        // The continuation's role-only opening is noise to a caller already mid-answer.
        opened.buffered = opened.buffered.filter(
          (e) => e.kind !== "chunk" || hasContent(e.chunk) || e.chunk.usage,
        );
      }
      return {
        opened,
        skipPrefix: prefill || state.text === "" ? undefined : state.text,
        rest: candidates.slice(i + 1),
      };
    } catch (error) {
      if (call.signal.aborted) return undefined;
      const e = error instanceof GatewayError ? error : toUpstreamError(candidate.provider.id, error);
      if (e instanceof GatewayError) {
        attempts.push(failedAttempt(candidate, e, deps.now() - started));
        context.cooldowns.recordFailure(candidate.key, e, deps.now());
      }
    }
  }
  return undefined;
}

/** The error a caller gets for a cut stream: it names the original failure, not a continuation's. */
function interrupted(original: GatewayError, state: RelayState): GatewayError {
  return new GatewayError(
    `The answer was cut off after ${state.text.length} characters and could not be completed: ${original.message}`,
    { status: 502, type: "api_error", code: "stream_interrupted", cause: original },
  );
}

/** Every candidate failed, was cooling down, or none could be used. */
function exhausted(
  call: ChatCall,
  candidateCount: number,
  failures: GatewayError[],
  cooling: Array<{ until: number; reason: string }>,
  now: number,
): GatewayError {
  const model = call.route.name;
  if (candidateCount === 0) {
    return new GatewayError(`No provider is configured and enabled for model '${model}'.`, {
      status: 503,
      type: "api_error",
      code: "no_available_provider",
    });
  }
  const deadline = failures.find(isDeadline);
  if (deadline) {
    return new GatewayError(
      `The request did not complete within its deadline; ${summary(failures.filter((f) => !isDeadline(f)))}`,
      {
        status: 504,
        type: "timeout_error",
        code: "deadline_exceeded",
      },
    );
  }
  const waits = [
    ...cooling.map((c) => c.until - now),
    ...failures.filter((f) => f.retryAfterMs !== undefined).map((f) => f.retryAfterMs as number),
  ];
  const retryAfter =
    waits.length > 0
      ? { "retry-after": String(Math.max(1, Math.ceil(Math.min(...waits) / 1000))) }
      : undefined;
  const allRateLimited =
    failures.every((f) => f.status === 429) && cooling.every((c) => c.reason === "rate_limited");
  if (failures.length === 0 || allRateLimited) {
    const rateLimited =
      allRateLimited && (failures.length > 0 || cooling.some((c) => c.reason === "rate_limited"));
    return new GatewayError(
      rateLimited
        ? `Every provider for model '${model}' is rate limited; retry later.`
        : `Every provider for model '${model}' is cooling down after failures; retry later.`,
      {
        status: rateLimited ? 429 : 503,
        type: rateLimited ? "rate_limit_error" : "api_error",
        code: rateLimited ? "rate_limit_exceeded" : "providers_cooling_down",
        ...(retryAfter ? { headers: retryAfter } : {}),
      },
    );
  }
  const allTimeouts = failures.every((f) => f instanceof UpstreamTimeoutError);
  return new GatewayError(`No provider could answer for model '${model}': ${summary(failures)}`, {
    status: allTimeouts ? 504 : 502,
    type: allTimeouts ? "timeout_error" : "api_error",
    code: allTimeouts ? "upstream_timeout" : "upstream_unavailable",
    ...(retryAfter ? { headers: retryAfter } : {}),
  });
}

function isDeadline(error: GatewayError): boolean {
  return error instanceof UpstreamTimeoutError && error.phase === "deadline";
}

function summary(failures: GatewayError[]): string {
  return failures.map((f) => f.message).join("; ") || "no attempt was made";
}
