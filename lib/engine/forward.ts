import { UpstreamError } from "../errors.ts";
import { sseData } from "../http/sse.ts";
import type { ChatChunk, StreamEvent } from "../providers/types.ts";
import { countChunk } from "./metering.ts";
import type { OpenedStream } from "./open.ts";

/** What has gone to the caller so far, so a cut stream can be continued elsewhere. */
export interface RelayState {
  text: string;
  /** Characters of content sent (`text` is dropped past the resume limit; this is not). */
  sentChars: number;
  /** Single choice and plain content within the resume limit: a continuation can rebuild it exactly. */
  resumable: boolean;
  /** Choice indexes that sent a finish reason; the answer is whole once all `n` have. */
  finishedChoices: Set<number>;
  choices: number;
  ttftMs: number;
  /** Drop usage the gateway asked for on the caller's behalf (issue 12). */
  stripUsage: boolean;
}

/**
 * Yields one stream's events to the caller. Returns true when the stream completed (`[DONE]`, or a
 * clean end after every choice finished). With `skipPrefix` (a restarted answer) the text the caller
 * already has is checked and dropped; a divergence throws.
 */
export async function* forward(
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
    opened.gate.answered = finished(state);
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
    // Counted as received, whatever reaches the caller (a restarted answer's repeated text too).
    if (next.value.kind === "chunk") countChunk(opened.usage, next.value.chunk);
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

export function finished(state: RelayState): boolean {
  return state.finishedChoices.size >= state.choices;
}
