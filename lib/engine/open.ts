import type { ChildAbort } from "../abort.ts";
import { capTimeouts } from "../config/timeouts.ts";
import { isContent } from "../core/events.ts";
import type { Timer } from "../deps.ts";
import { ClientAbortError, emptyStream, UpstreamTimeoutError } from "../errors.ts";
import type { GenerationInput, GenerationStream, UpstreamEvent } from "../providers/generation.ts";
import { toUpstreamError } from "../retry/classify.ts";
import { type AttemptUsage, countEvents, countFailure, startAttempt } from "./metering.ts";
import type { Candidate, RequestRun } from "./run.ts";

/**
 * How long an upstream is read on for its usage chunk after the caller left with the whole answer
 * (every choice finished; only OpenAI's usage chunk, Bedrock's `metadata`, and `[DONE]` are left).
 * Never past the request's deadline. A provider still generating is cancelled at once instead.
 */
export const USAGE_GRACE_MS = 2_000;

/** What the relay tells an attempt's timers and its abort. */
export interface AttemptGate {
  /**
   * True while the relay waits for the caller to take what it was given. The idle timeout does not
   * run then: a caller who stops reading must never make a healthy provider look silent.
   */
  waitingOnCaller: boolean;
  /** Every choice has finished: what the upstream still sends is the usage and its end. */
  answered: boolean;
}

/** An attempt's abort, which may outlast the caller by the usage grace (see {@link attemptAbort}). */
export interface AttemptAbort extends ChildAbort {
  /**
   * Lets the attempt be read on for at most {@link USAGE_GRACE_MS} (capped at the deadline), then
   * aborts it. False if it is already aborted. Idempotent: the first call sets the bound.
   */
  linger(): boolean;
}

/** A stream whose first content is in hand, with the events read so far. */
export interface OpenedStream {
  candidate: Candidate;
  stream: GenerationStream;
  iterator: AsyncIterator<UpstreamEvent>;
  buffered: UpstreamEvent[];
  /** Aborts this attempt (with the request); its reason is the timeout that fired. */
  attempt: AttemptAbort;
  /** Reset on every data event; fires the idle timeout. */
  idleTimer: Timer;
  gate: AttemptGate;
  /** What this attempt produced; every event read from `iterator` is counted into it. */
  usage: AttemptUsage;
}

/**
 * Opens a stream on one candidate and reads until its first content event, under the first-token
 * timeout. Keep-alive comments and role-only chunks carry no event and do not stop that timer. An
 * input with a `prefill` (a continuation) counts the partial answer it carries as input sent.
 */
export async function openStream(
  run: RequestRun,
  candidate: Candidate,
  input: GenerationInput,
): Promise<OpenedStream> {
  const { deps } = run;
  const timeouts = capTimeouts(candidate.provider.config.timeouts, run.call.deadline - deps.now());
  // Until the relay first pulls, the stream waits on the caller (its response is being set up).
  const gate: AttemptGate = { waitingOnCaller: true, answered: false };
  const attempt = attemptAbort(run, gate);
  const usage = startAttempt(run.usage, input.prefill?.length ?? 0);
  const id = candidate.provider.id;
  const firstTokenTimer = deps.setTimer(
    () => attempt.controller.abort(new UpstreamTimeoutError(id, "first_token", timeouts.firstTokenMs)),
    timeouts.firstTokenMs,
  );
  let stream: GenerationStream | undefined;
  try {
    stream = await candidate.provider.chat.stream(input, {
      model: candidate.target.model,
      signal: attempt.signal,
      timeouts,
    });
    const iterator = stream.events[Symbol.asyncIterator]();
    const buffered: UpstreamEvent[] = [];
    for (;;) {
      const next = await iterator.next();
      if (next.done) {
        throw emptyStream(id);
      }
      buffered.push(next.value);
      countEvents(usage, next.value.events);
      if (next.value.events.some(isContent)) break;
    }
    usage.worked = true; // it answered: whatever follows, its prompt was worked on
    const idleTimer: Timer = deps.setTimer(() => {
      // Waiting on the caller re-arms, unless the attempt is already over (a body never started).
      if (gate.waitingOnCaller && !attempt.signal.aborted) idleTimer.refresh();
      else attempt.controller.abort(new UpstreamTimeoutError(id, "idle", timeouts.idleMs));
    }, timeouts.idleMs);
    return { candidate, stream, iterator, buffered, attempt, idleTimer, gate, usage };
  } catch (error) {
    const aborted = attempt.signal.aborted;
    countFailure(usage, aborted ? attempt.signal.reason : error, aborted);
    stream?.cancel();
    attempt.dispose();
    if (attempt.signal.aborted && !run.signal.aborted) throw attempt.signal.reason;
    throw toUpstreamError(id, error);
  } finally {
    firstTokenTimer.clear();
  }
}

/**
 * The attempt's abort: it follows the request's (the caller leaving, the deadline), with one
 * exception. A caller who leaves once every choice has finished has the whole answer; only the
 * usage chunk is outstanding, and the provider is no longer generating. Then the upstream is read on
 * for {@link USAGE_GRACE_MS} at most, so the request is billed the provider's own count rather than
 * an estimate (issue 16). Costs one closure beside the child controller; the timer exists only once
 * a caller has left an answered stream.
 */
function attemptAbort(run: RequestRun, gate: AttemptGate): AttemptAbort {
  const { deps, call } = run;
  const controller = new AbortController();
  const parent = run.signal;
  let grace: Timer | undefined;
  const linger = (): boolean => {
    if (controller.signal.aborted) return false;
    grace ??= deps.setTimer(
      () => controller.abort(parent.aborted ? parent.reason : new ClientAbortError()),
      Math.max(0, Math.min(USAGE_GRACE_MS, call.deadline - deps.now())),
    );
    return true;
  };
  const onAbort = () => {
    if (gate.answered && call.signal.aborted && linger()) return;
    controller.abort(parent.reason);
  };
  if (parent.aborted) controller.abort(parent.reason);
  else parent.addEventListener("abort", onAbort, { once: true });
  return {
    controller,
    signal: controller.signal,
    linger,
    dispose() {
      parent.removeEventListener("abort", onAbort);
      grace?.clear();
    },
  };
}
