import { type ChildAbort, childAbort } from "../abort.ts";
import type { LoadBalancer } from "../balancer/load-balancer.ts";
import type { GatewayConfig, ModelRoute, RouteTarget } from "../config/types.ts";
import type { Cooldown, CooldownStore } from "../cooldown/types.ts";
import type { MeteredUsage } from "../core/usage.ts";
import type { Deps } from "../deps.ts";
import { type GatewayError, UpstreamTimeoutError } from "../errors.ts";
import type { HealthView } from "../health/view.ts";
import type { ProviderFactory } from "../providers/factory.ts";
import type { GenerationInput } from "../providers/generation.ts";
import type { Provider } from "../providers/types.ts";
import { countsAgainstTarget, faultOf } from "../retry/blame.ts";
import { anyReported, meteredUsage, type UsageTally } from "./metering.ts";

/** A caller's meter, as the engine sees it: told the request's usage once, when it ends. */
export interface Meter {
  readonly keyId: string;
  readonly keyName: string | undefined;
  record(usage: MeteredUsage): void;
}

/** What the engine runs on: built once per process, shared by every request. */
export interface EngineContext {
  config: GatewayConfig;
  factory: ProviderFactory;
  cooldowns: CooldownStore;
  /** The cached health table: refreshed (when stale) before each request is planned. */
  health: HealthView;
  /** One balancer per model route, by route name. */
  balancers: ReadonlyMap<string, LoadBalancer>;
  deps: Deps;
}

/**
 * What the engine needs of any request, whatever it asks for (a generation, an embedding): what an
 * operation reads beyond this is its own call type's ({@link Call}, `EmbeddingCall`).
 */
export interface EngineCall {
  /** Streamed (a first-token gate, then the relay) or a whole answer. */
  streaming: boolean;
  /** Answers asked for (OpenAI's `n`); a stream is whole once every one has finished. */
  choices: number;
  /** The prompt's size in characters (the caller's body): what an estimate of its tokens is made from. */
  promptChars: number;
  /** Names the log line: `chat completion`, `messages`, ... */
  operation: string;
  route: ModelRoute;
  requestId: string;
  /** Aborts when the caller goes away. */
  signal: AbortSignal;
  /** Absolute clock time by which the whole request, stream included, must be over. */
  deadline: number;
  /** The caller's usage meter (issue 12): told the request's usage when it finishes. */
  meter?: Meter | undefined;
}

/** One generation request, as a dialect adapter hands it to the engine. */
export interface Call extends EngineCall {
  /** The caller's body in its dialect, with its canonical form on demand. */
  input: GenerationInput;
}

export interface Candidate {
  target: RouteTarget;
  provider: Provider;
  key: string;
}

export interface AttemptRecord {
  provider: string;
  model: string;
  outcome: "ok" | "error" | "skipped" | "waited";
  status?: number;
  code?: string | null;
  error?: string;
  /** Whose fault a failed attempt was; only the provider's count against it. */
  fault?: string;
  ms: number;
}

/** How a request ended, for the one log line it leaves. */
export type Outcome = "ok" | "error" | "cut" | "client_closed";

/** Everything one request carries through its stages: planning, attempts, relay, outcome. */
export interface RequestRun<C extends EngineCall = Call> {
  context: EngineContext;
  call: C;
  deps: Deps;
  started: number;
  streaming: boolean;
  /** Aborts when the caller leaves or (streams) when the deadline passes; its reason says which. */
  signal: AbortSignal;
  attempts: AttemptRecord[];
  /** What every attempt produced, failed ones included: the caller's meter is told the sum. */
  usage: UsageTally;
  /** A stream response owns the deadline timer from here on: `release` is then the relay's job. */
  handedOff: boolean;
  release(): void;
  /**
   * Tells the caller's meter the request's usage, writes its one log line and its metrics (only the
   * first call counts; every path of an admitted request reaches it).
   */
  finish(status: number, outcome: Outcome, extra?: { provider?: string; ttftMs?: number }): void;
}

export function startRun<C extends EngineCall>(context: EngineContext, call: C): RequestRun<C> {
  const { deps } = context;
  const started = deps.now();
  const streaming = call.streaming;
  // A stream can outlive every per-attempt timeout, so it gets a deadline timer that aborts it (the
  // reason tells deadline from caller). A non-streaming call needs none: each attempt's timeouts are
  // capped at the time left, and no attempt or wait starts past the deadline. Saved per request: a
  // controller, a listener and a timer (see BENCHMARKS.md).
  const request: ChildAbort | undefined = streaming ? childAbort(call.signal) : undefined;
  const deadlineTimer = request
    ? deps.setTimer(
        () => request.controller.abort(deadlineError(call, started)),
        Math.max(0, call.deadline - started),
      )
    : undefined;
  let logged = false;
  const run: RequestRun<C> = {
    context,
    call,
    deps,
    started,
    streaming,
    signal: request?.signal ?? call.signal,
    attempts: [],
    usage: [],
    handedOff: false,
    release() {
      deadlineTimer?.clear();
      request?.dispose();
    },
    finish(status, outcome, extra = {}) {
      if (logged) return;
      logged = true;
      const meter = call.meter;
      // Estimates only for a metered request: an unmetered stream (no usage chunk asked for) would
      // otherwise measure its prompt on every request for a log field nobody bills.
      const usage = meteredUsage(run.usage, meter === undefined ? undefined : () => call.promptChars);
      meter?.record(usage);
      const latencyMs = deps.now() - started;
      // One structured line per request, aborted ones included (never prompts, completions or keys).
      deps.logger.info({
        msg: call.operation,
        requestId: call.requestId,
        model: call.route.name,
        stream: streaming,
        status,
        outcome,
        attempts: run.attempts,
        latencyMs,
        ...callerFields(call),
        ...extra,
        ...usageFields(usage, meter !== undefined || anyReported(run.usage)),
      });
      deps.metrics?.({
        provider: extra.provider,
        status,
        latencyMs,
        ttftMs: extra.ttftMs,
        fellBack: run.attempts.some((a) => a.outcome !== "ok"),
      });
    },
  };
  return run;
}

/** The usage counted, for the log line: `usageEstimated` says when some figure is the gateway's. */
function usageFields(usage: MeteredUsage, counted: boolean): Record<string, unknown> {
  if (!counted) return {};
  const { estimated, ...tokens } = usage;
  return estimated ? { usage: tokens, usageEstimated: true } : { usage: tokens };
}

/** Who made the request, for its log line: the key's id and name, never the key. */
function callerFields(call: EngineCall): Record<string, string> {
  const meter = call.meter;
  if (meter === undefined) return {};
  return meter.keyName === undefined
    ? { keyId: meter.keyId }
    : { keyId: meter.keyId, keyName: meter.keyName };
}

export function deadlineError(call: EngineCall, started: number): UpstreamTimeoutError {
  return new UpstreamTimeoutError("gateway", "deadline", call.deadline - started);
}

/**
 * The cooldown that keeps this request off a target, if any. A rate-limit bench set after the
 * request started does not refuse it: it was already in flight, and its own retry honours the
 * provider's `Retry-After`.
 */
export function cooldownOf(run: RequestRun<EngineCall>, candidate: Candidate): Cooldown | undefined {
  const cooldown = run.context.cooldowns.get(candidate.key, run.deps.now());
  if (cooldown?.reason === "rate_limited" && cooldown.since !== undefined && cooldown.since >= run.started) {
    return undefined;
  }
  return cooldown;
}

/** Records a failed attempt; only a target's own fault (provider or config) counts toward its cooldown. */
export function recordFailure(
  run: RequestRun<EngineCall>,
  candidate: Candidate,
  error: GatewayError,
  ms: number,
): void {
  const now = run.deps.now();
  const fault = faultOf(error, { now, deadline: run.call.deadline });
  run.attempts.push({
    ...name(candidate),
    outcome: "error",
    status: error.status,
    code: error.code,
    error: error.message,
    fault,
    ms,
  });
  if (countsAgainstTarget(fault)) run.context.cooldowns.recordFailure(candidate.key, error, now);
}

export function recordSuccess(run: RequestRun<EngineCall>, candidate: Candidate, ms: number): void {
  run.attempts.push({ ...name(candidate), outcome: "ok", ms });
  run.context.cooldowns.recordSuccess(candidate.key, run.deps.now());
}

export function name(candidate: Candidate): { provider: string; model: string } {
  return { provider: candidate.target.provider, model: candidate.target.model };
}

export function attemptCount(attempts: AttemptRecord[]): number {
  return attempts.filter((a) => a.outcome === "ok" || a.outcome === "error").length;
}

export function answeredBy(run: RequestRun<EngineCall>, candidate: Candidate): Record<string, string> {
  return {
    "x-request-id": run.call.requestId,
    "x-gateway-provider": candidate.target.provider,
    "x-gateway-model": candidate.target.model,
    "x-gateway-attempts": String(attemptCount(run.attempts)),
  };
}
