import { GatewayError, streamCut } from "../errors.ts";
import { toUpstreamError } from "../retry/classify.ts";
import { interrupted, resume } from "./continuation.ts";
import { finished, forward, type RelayState, type StreamEncoder } from "./forward.ts";

import { countEvents } from "./metering.ts";
import type { OpenedStream } from "./open.ts";
import { type Candidate, type RequestRun, recordFailure } from "./run.ts";

/** A cut answer is continued at most this many times: a target that always cuts cannot loop it. */
const MAX_CONTINUATIONS = 3;

/**
 * The caller's body for an opened candidate: the relay owns the request from here on. `others` are
 * the route's other candidates in the order to try them for a continuation.
 */
export function relayAnswer(
  run: RequestRun,
  opened: OpenedStream,
  others: Candidate[],
  encoder: StreamEncoder,
): AsyncGenerator<string> {
  const choices = run.call.choices;
  const state: RelayState = {
    text: "",
    sentChars: 0,
    resumable: choices === 1,
    finishedChoices: new Set(),
    choices,
    ttftMs: run.deps.now() - run.started,
  };
  return unlessAbandoned(relay(run, opened, others, state, encoder), () => {
    // The adapter gave the body up before reading it (the caller left as the headers went out):
    // the relay never started, so its cleanup never runs. Do it here, and log the request.
    opened.idleTimer.clear();
    opened.attempt.dispose();
    opened.stream.cancel();
    run.release();
    run.finish(499, "client_closed", { provider: opened.candidate.target.provider, ttftMs: state.ttftMs });
  });
}

/**
 * The relay as the adapters see it. A generator closed before its first `next()` completes without
 * running its `finally`; `abandoned` stands in for it then.
 */
function unlessAbandoned(relay: AsyncGenerator<string>, abandoned: () => void): AsyncGenerator<string> {
  let started = false;
  const body: AsyncGenerator<string> = {
    next(...args) {
      started = true;
      return relay.next(...args);
    },
    return(value) {
      if (!started) {
        started = true;
        abandoned();
      }
      return relay.return(value);
    },
    throw(error) {
      if (!started) {
        started = true;
        abandoned();
      }
      return relay.throw(error);
    },
    [Symbol.asyncIterator]() {
      return body;
    },
  };
  return body;
}

/**
 * Forwards a stream to the caller event by event, through the dialect's encoder (upstream bytes
 * unchanged where the upstream speaks the caller's dialect). On a failure after the first byte it
 * tries to continue the answer on the other candidates, then on the one that was cut (a cut is often
 * a passing fault); failing that it ends with the encoder's error event and never its end: a cut
 * answer never looks whole.
 */
async function* relay(
  run: RequestRun,
  first: OpenedStream,
  others: Candidate[],
  state: RelayState,
  encoder: StreamEncoder,
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
        const completed = yield* forward(
          current,
          state,
          skipPrefix,
          run.context.config.maxResumeChars,
          encoder,
        );
        if (completed) {
          // Read to its end within the usage grace, after the caller left: still the caller's leaving.
          if (!call.signal.aborted) status = 200;
          yield encoder.end();
          return;
        }
        throw streamCut(current.candidate.provider.id, "stream ended without a finish reason");
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
          // Every choice had finished: the answer is whole, only the tail (usage, its end) went missing.
          status = 200;
          yield encoder.end();
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
          yield encoder.fail(interrupted(originalError, state));
          return;
        }
        current = next.opened;
        skipPrefix = next.skipPrefix;
      }
    }
  } finally {
    current.idleTimer.clear();
    // The caller left with the whole answer: read on briefly for the usage the provider still owes
    // (and its `[DONE]`, which hands the connection back to the pool).
    if (status === 499 && current.gate.answered && current.attempt.linger()) await readRest(current);
    current.attempt.dispose();
    // Closing the events first lets a stream that ended cleanly hand its connection back to the pool
    // (the reader sits at its `[DONE]`); only then is anything left dropped. Without it every stream
    // cost the next one a new upstream connection (a TLS handshake, against a real provider).
    await current.iterator.return?.(undefined)?.catch(() => undefined);
    current.stream.cancel();
    run.release();
    run.finish(status, status === 200 ? "ok" : status === 499 ? "client_closed" : "cut", {
      provider: current.candidate.target.provider,
      ttftMs: state.ttftMs,
    });
  }
}

/**
 * Reads an answered stream to its end, counting what it sends (its usage chunk), until it ends or
 * the attempt's grace aborts it. The caller is gone: nothing is forwarded. Ending at its end also
 * hands the upstream connection back to the pool.
 */
async function readRest(opened: OpenedStream): Promise<void> {
  try {
    for (;;) {
      const next = await opened.iterator.next();
      if (next.done) return;
      countEvents(opened.usage, next.value.events);
    }
  } catch {
    // The grace ran out or the stream broke: what was counted stands, the rest is estimated.
  }
}
