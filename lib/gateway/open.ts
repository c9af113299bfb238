import { type ChildAbort, childAbort } from "../abort.ts";
import { capTimeouts } from "../config/timeouts.ts";
import type { Timer } from "../deps.ts";
import { UpstreamError, UpstreamTimeoutError } from "../errors.ts";
import { hasContent } from "../providers/chunks.ts";
import type { ChatRequest, ChatStream, StreamEvent } from "../providers/types.ts";
import { toUpstreamError } from "../retry/classify.ts";
import type { Candidate, RequestRun } from "./request.ts";

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
      // Waiting on the caller re-arms, unless the attempt is already over (a body never started).
      if (gate.waitingOnCaller && !attempt.signal.aborted) idleTimer.refresh();
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
