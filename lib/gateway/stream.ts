import { type ChildAbort, childAbort } from "../abort.ts";
import { capTimeouts } from "../config/timeouts.ts";
import type { Timer } from "../deps.ts";
import { GatewayError, toOpenAIErrorBody, UpstreamError, UpstreamTimeoutError } from "../errors.ts";
import { SSE_DONE, sseData } from "../http/sse.ts";
import { hasContent } from "../providers/chunks.ts";
import type { ChatChunk, ChatRequest, ChatStream, StreamEvent } from "../providers/types.ts";
import { toUpstreamError } from "../retry/classify.ts";
import { answeredBy, type Candidate, cooldownOf, name, type RequestRun, recordFailure } from "./request.ts";
import type { GatewayResponse } from "./response.ts";

/** A stream whose first content is in hand, with the events read so far. */
export interface OpenedStream {
  candidate: Candidate;
  stream: ChatStream;
  iterator: AsyncIterator<StreamEvent>;
  buffered: StreamEvent[];
  /** Aborts this attempt (with the request); its reason is the timeout that fired. */
  attempt: ChildAbort;
  /** Reset on every data event; fires the idle timeout. */
  idleTimer: Timer;
  /**
   * True while the relay waits for the caller to take what it was given. The idle timeout does not
   * run then: a caller who stops reading must never make a healthy provider look silent.
   */
  gate: { waitingOnCaller: boolean };
}

/** What has gone to the caller so far, so a cut stream can be continued elsewhere. */
interface RelayState {
  text: string;
  /** Characters of content sent (`text` is dropped past the resume limit; this is not). */
  sentChars: number;
  /** Single choice and plain content within the resume limit: a continuation can rebuild it exactly. */
  resumable: boolean;
  /** Choice indexes that sent a finish reason; the answer is whole once all `n` have. */
  finishedChoices: Set<number>;
  choices: number;
  usage: unknown;
  ttftMs: number;
  /** Drop usage the gateway asked for on the caller's behalf (issue 12). */
  stripUsage: boolean;
}

/**
 * Opens a stream on one candidate and reads until its first content chunk, under the first-token
 * timeout. Keep-alive comments and role-only chunks do not stop that timer.
 */
export async function openStream(
  run: RequestRun,
  candidate: Candidate,
  request: ChatRequest,
  prefill: boolean,
): Promise<OpenedStream> {
  const { deps } = run;
  const timeouts = capTimeouts(candidate.provider.config.timeouts, run.call.deadline - deps.now());
  const attempt = childAbort(run.signal);
  const id = candidate.provider.id;
  const firstTokenTimer = deps.setTimer(
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
    // Until the relay first pulls, the stream waits on the caller (its response is being set up).
    const gate = { waitingOnCaller: true };
    const idleTimer: Timer = deps.setTimer(() => {
      if (gate.waitingOnCaller) idleTimer.refresh();
      else attempt.controller.abort(new UpstreamTimeoutError(id, "idle", timeouts.idleMs));
    }, timeouts.idleMs);
    return { candidate, stream, iterator, buffered, attempt, idleTimer, gate };
  } catch (error) {
    stream?.cancel();
    attempt.dispose();
    if (attempt.signal.aborted && !run.signal.aborted) throw attempt.signal.reason;
    throw toUpstreamError(id, error);
  } finally {
    firstTokenTimer.clear();
  }
}

/** A cut answer is continued at most this many times: a target that always cuts cannot loop it. */
const MAX_CONTINUATIONS = 3;

/**
 * The 200 event stream for an opened candidate; the relay owns the request from here on. `others`
 * are the route's other candidates in the order to try them for a continuation.
 */
export function streamResponse(run: RequestRun, opened: OpenedStream, others: Candidate[]): GatewayResponse {
  run.handedOff = true;
  const choices = run.call.request.n ?? 1;
  const state: RelayState = {
    text: "",
    sentChars: 0,
    resumable: choices === 1,
    finishedChoices: new Set(),
    choices,
    usage: undefined,
    ttftMs: run.deps.now() - run.started,
    stripUsage: run.call.stripUsage === true,
  };
  return {
    status: 200,
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      ...answeredBy(run, opened.candidate),
    },
    body: relay(run, opened, others, state),
  };
}

/**
 * Forwards a stream to the caller event by event, upstream bytes unchanged. On a failure after the
 * first byte it tries to continue the answer on the other candidates, then on the one that was cut
 * (a cut is often a passing fault); failing that it sends an
 * error event in the OpenAI shape and ends without `[DONE]`: a cut answer never looks whole.
 */
async function* relay(
  run: RequestRun,
  first: OpenedStream,
  others: Candidate[],
  state: RelayState,
): AsyncGenerator<string> {
  const { call } = run;
  let current = first;
  let skipPrefix: string | undefined;
  let originalError: GatewayError | undefined;
  const pool = [first.candidate, ...others];
  let continuations = 0;
  let status = 499;
  try {
    for (;;) {
      try {
        const completed = yield* forward(current, state, skipPrefix, run.context.config.maxResumeChars);
        if (completed) {
          status = 200;
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
        current.idleTimer.clear();
        current.attempt.dispose();
        if (call.signal.aborted) return;
        const error =
          current.attempt.signal.aborted || run.signal.aborted
            ? ((current.attempt.signal.reason ?? run.signal.reason) as GatewayError)
            : toUpstreamError(current.candidate.provider.id, thrown);
        if (!(error instanceof GatewayError)) throw thrown;
        if (finished(state)) {
          // Every choice had finished: the answer is whole, only the tail (usage, [DONE]) went missing.
          status = 200;
          yield SSE_DONE;
          return;
        }
        originalError ??= error;
        recordFailure(run, current.candidate, error, 0);
        run.deps.logger.warn({
          msg: "stream failed after first byte",
          requestId: call.requestId,
          provider: current.candidate.target.provider,
          error: error.message,
          sentChars: state.sentChars,
        });
        const cut = current.candidate;
        const order = [...pool.filter((c) => c !== cut), cut];
        const next =
          state.resumable &&
          error.action !== "return" &&
          !run.signal.aborted &&
          continuations++ < MAX_CONTINUATIONS
            ? await resume(run, order, state)
            : undefined;
        if (next === undefined) {
          status = 502;
          yield sseData(JSON.stringify(toOpenAIErrorBody(interrupted(originalError, state))));
          return;
        }
        current = next.opened;
        skipPrefix = next.skipPrefix;
      }
    }
  } finally {
    current.idleTimer.clear();
    current.attempt.dispose();
    current.stream.cancel();
    run.release();
    run.finish(status, status === 200 ? "ok" : status === 499 ? "client_closed" : "cut", {
      provider: current.candidate.target.provider,
      ttftMs: state.ttftMs,
      usage: state.usage,
    });
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
  maxResumeChars: number,
): AsyncGenerator<string, boolean> {
  let pending = skipPrefix;
  let batch = "";
  opened.gate.waitingOnCaller = false;
  opened.idleTimer.refresh();
  const emit = (event: StreamEvent & { kind: "chunk" }) => {
    observe(state, event.chunk, maxResumeChars);
    const raw = state.stripUsage ? withoutUsage(event) : event.raw;
    if (raw !== undefined) batch += sseData(raw);
  };
  // The caller may take its time over a yield (back-pressure): the idle timeout waits with it.
  function* give(text: string): Generator<string> {
    opened.gate.waitingOnCaller = true;
    try {
      yield text;
    } finally {
      opened.gate.waitingOnCaller = false;
      opened.idleTimer.refresh();
    }
  }
  const handle = (event: StreamEvent): boolean => {
    if (event.kind === "done") {
      // A restarted answer that ends before it has caught up with the text sent is no completion.
      if (pending !== undefined) throw diverged(opened);
      // Nor is a `[DONE]` before every choice said why it ended: passed on, it would make a cut
      // answer look whole (the chaos soak's one source of lies).
      if (!finished(state)) throw unfinished(opened);
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
    yield* give(batch);
    batch = "";
  }
  for (;;) {
    const next = await opened.iterator.next();
    if (next.done) return finished(state);
    if (handle(next.value)) {
      if (batch) yield* give(batch);
      return true;
    }
    if (batch) {
      yield* give(batch);
      batch = "";
    }
  }
}

function unfinished(opened: OpenedStream): UpstreamError {
  const id = opened.candidate.provider.id;
  return new UpstreamError(`${id}: stream sent [DONE] before a finish reason`, {
    status: 502,
    code: "upstream_stream_cut",
    action: "failover",
    providerId: id,
  });
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

/**
 * Tracks what the caller has received; anything but plain single-choice text, or text past the
 * resume limit (memory per stream stays bounded), cannot be rebuilt.
 */
function observe(state: RelayState, chunk: ChatChunk, maxResumeChars: number): void {
  if (chunk.usage) state.usage = chunk.usage;
  const choices = chunk.choices;
  if (!choices || choices.length === 0) return;
  for (const choice of choices) {
    const index = choice.index ?? 0;
    if (choice.finish_reason) state.finishedChoices.add(index);
    const delta = choice.delta;
    if (!delta) continue;
    if (delta.content) state.sentChars += delta.content.length;
    if (index !== 0) state.resumable = false;
    else if (delta.content && state.resumable) {
      if (state.text.length + delta.content.length > maxResumeChars) {
        state.resumable = false;
        state.text = "";
      } else state.text += delta.content;
    }
    if (delta.tool_calls?.length || delta.function_call || delta.reasoning_content || delta.refusal)
      state.resumable = false;
  }
}

/**
 * A chunk as the caller sees it when the gateway added `include_usage` itself: the usage-only chunk
 * is dropped (undefined), and a `usage` member on any other chunk is removed.
 */
function withoutUsage(event: StreamEvent & { kind: "chunk" }): string | undefined {
  if (!("usage" in event.chunk)) return event.raw;
  const { usage: _usage, ...rest } = event.chunk;
  if (!rest.choices || rest.choices.length === 0) return undefined;
  return JSON.stringify(rest);
}

function finished(state: RelayState): boolean {
  return state.finishedChoices.size >= state.choices;
}

/**
 * Finds a candidate to continue a cut answer: one declared able to take an assistant prefill gets
 * the conversation plus the partial answer and streams only the continuation; otherwise, if allowed,
 * one restarts the answer and is kept only if it begins with exactly the text already sent. When the
 * only usable targets are rate limited for a moment (within `maxRetryAfterMs` and the deadline), it
 * waits for the first of them rather than cut the answer.
 */
async function resume(
  run: RequestRun,
  candidates: Candidate[],
  state: RelayState,
): Promise<{ opened: OpenedStream; skipPrefix: string | undefined } | undefined> {
  const { deps, call } = run;
  const usable = candidates.filter(
    (c) => c.provider.config.assistantPrefill || run.context.config.resumeByRestart,
  );
  const limited: Array<{ candidate: Candidate; until: number }> = [];
  for (const candidate of usable) {
    if (run.signal.aborted) return undefined;
    const cooldown = cooldownOf(run, candidate);
    if (cooldown?.reason === "rate_limited") limited.push({ candidate, until: cooldown.until });
    if (cooldown) continue;
    const opened = await continueOn(run, candidate, state);
    if (opened !== undefined || call.signal.aborted) return opened;
  }
  if (limited.length === 0 || run.signal.aborted) return undefined;
  const soonest = limited.reduce((x, y) => (y.until < x.until ? y : x));
  const wait = Math.max(0, soonest.until - deps.now());
  if (wait > soonest.candidate.provider.config.retry.maxRetryAfterMs || deps.now() + wait >= call.deadline) {
    return undefined;
  }
  try {
    await deps.sleep(wait, run.signal);
  } catch {
    return undefined; // the caller left or the deadline passed
  }
  return continueOn(run, soonest.candidate, state);
}

/** One continuation attempt on one candidate; a failure is recorded and gives undefined. */
async function continueOn(
  run: RequestRun,
  candidate: Candidate,
  state: RelayState,
): Promise<{ opened: OpenedStream; skipPrefix: string | undefined } | undefined> {
  const { deps, call } = run;
  const prefill = candidate.provider.config.assistantPrefill;
  const request: ChatRequest = prefill
    ? {
        ...call.request,
        messages: [...call.request.messages, { role: "assistant", content: state.text, prefix: true }],
      }
    : call.request;
  const started = deps.now();
  try {
    const opened = await openStream(run, candidate, request, prefill);
    run.attempts.push({ ...name(candidate), outcome: "ok", ms: deps.now() - started });
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
    return { opened, skipPrefix: prefill || state.text === "" ? undefined : state.text };
  } catch (error) {
    if (call.signal.aborted) return undefined;
    const e = toUpstreamError(candidate.provider.id, error);
    if (e instanceof GatewayError) recordFailure(run, candidate, e, deps.now() - started);
    return undefined;
  }
}

/** The error a caller gets for a cut stream: it names the original failure, not a continuation's. */
function interrupted(original: GatewayError, state: RelayState): GatewayError {
  return new GatewayError(
    `The answer was cut off after ${state.sentChars} characters and could not be completed: ${original.message}`,
    { status: 502, type: "api_error", code: "stream_interrupted", cause: original },
  );
}
