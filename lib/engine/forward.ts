import type { GenerationEvent } from "../core/events.ts";
import { continuationDiverged, type GatewayError, type UpstreamError } from "../errors.ts";
import type { UpstreamEvent } from "../providers/generation.ts";
import { countEvents } from "./metering.ts";
import type { OpenedStream } from "./open.ts";

/**
 * How a dialect writes a relayed answer for its caller (one per request, from the dialect's
 * folder): the engine decides what happened, the encoder how the caller's API says it.
 */
export interface StreamEncoder {
  /** The caller's bytes for one upstream event (often its raw payload passed on); "" for nothing. */
  event(upstream: UpstreamEvent): string;
  /** The end of a whole answer (OpenAI's `data: [DONE]`, Anthropic's `message_stop`). */
  end(): string;
  /** The end of a cut or failed answer: an error event, never the whole answer's end. */
  fail(error: GatewayError): string;
}

/** What has gone to the caller so far, so a cut stream can be continued elsewhere. */
export interface RelayState {
  text: string;
  /** Characters of content sent (`text` is dropped past the resume limit; this is not). */
  sentChars: number;
  /** Single choice and plain content within the resume limit: a continuation can rebuild it exactly. */
  resumable: boolean;
  /** Choice indexes that sent a finish reason; the answer is whole once all `choices` have. */
  finishedChoices: Set<number>;
  choices: number;
  ttftMs: number;
}

/**
 * Yields one stream's events to the caller, through the dialect's encoder. Returns true when the
 * stream completed (it ended after every choice finished). With `skipPrefix` (a restarted answer)
 * the text the caller already has is checked and dropped; a divergence throws.
 */
export async function* forward(
  opened: OpenedStream,
  state: RelayState,
  skipPrefix: string | undefined,
  maxResumeChars: number,
  encoder: StreamEncoder,
): AsyncGenerator<string, boolean> {
  let pending = skipPrefix;
  let batch = "";
  opened.gate.waitingOnCaller = false;
  opened.idleTimer.refresh();
  const emit = (upstream: UpstreamEvent) => {
    observe(state, upstream.events, maxResumeChars);
    opened.gate.answered = finished(state);
    batch += encoder.event(upstream);
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
  const handle = (upstream: UpstreamEvent): void => {
    opened.idleTimer.refresh();
    if (pending === undefined) {
      emit(upstream);
      return;
    }
    // A restarted answer: its text must repeat what the caller has, and only the rest goes on.
    const { kept, rest } = dropPrefix(upstream.events, pending, () => diverged(opened));
    pending = rest;
    if (kept.length > 0) emit({ events: kept });
  };

  for (const upstream of opened.buffered) handle(upstream);
  opened.buffered = [];
  if (batch) {
    yield* give(batch);
    batch = "";
  }
  for (;;) {
    const next = await opened.iterator.next();
    if (next.done) {
      // A restarted answer that ends before it has caught up with the text sent is no completion.
      if (pending !== undefined) throw diverged(opened);
      if (batch) yield* give(batch);
      return finished(state);
    }
    countEvents(opened.usage, next.value.events);
    handle(next.value);
    if (batch) {
      yield* give(batch);
      batch = "";
    }
  }
}

/**
 * The events of a restarted answer past the text the caller already has (`pending`): their text is
 * checked against it and dropped. Returns what goes on (text past the prefix, a finish, usage) and
 * what is still pending (undefined once caught up). Throws `diverged()` on a mismatch, or on a finish
 * before the prefix is caught up (the restarted answer ended short of the text sent).
 */
function dropPrefix(
  events: readonly GenerationEvent[],
  pending: string,
  diverged: () => Error,
): { kept: GenerationEvent[]; rest: string | undefined } {
  let rest: string | undefined = pending;
  const kept: GenerationEvent[] = [];
  for (const event of events) {
    if (rest === undefined) {
      kept.push(event);
      continue;
    }
    if (event.type === "usage") {
      kept.push(event);
      continue;
    }
    // Until it has caught up, a restarted answer's other events (reasoning) are not the caller's.
    if (event.type !== "text" && event.type !== "finish") continue;
    if (event.type === "finish" || event.choice !== 0) throw diverged();
    const text = event.text;
    if (text.length <= rest.length) {
      if (!rest.startsWith(text)) throw diverged();
      rest = rest.slice(text.length) || undefined;
      continue;
    }
    if (!text.startsWith(rest)) throw diverged();
    kept.push({ ...event, text: text.slice(rest.length) });
    rest = undefined;
  }
  return { kept, rest };
}

function diverged(opened: OpenedStream): UpstreamError {
  return continuationDiverged(opened.candidate.provider.id);
}

/**
 * Tracks what the caller has received; anything but plain single-choice text, or text past the
 * resume limit (memory per stream stays bounded), cannot be rebuilt.
 */
function observe(state: RelayState, events: readonly GenerationEvent[], maxResumeChars: number): void {
  for (const event of events) {
    switch (event.type) {
      case "usage":
        break;
      case "finish":
        state.finishedChoices.add(event.choice);
        break;
      case "text":
        state.sentChars += event.text.length;
        if (event.choice !== 0) state.resumable = false;
        else if (state.resumable) {
          if (state.text.length + event.text.length > maxResumeChars) {
            state.resumable = false;
            state.text = "";
          } else state.text += event.text;
        }
        break;
      default:
        // Tool calls, reasoning and refusals cannot be rebuilt by a continuation.
        state.resumable = false;
    }
  }
}

export function finished(state: RelayState): boolean {
  return state.finishedChoices.size >= state.choices;
}
