import { parseSse } from "../http/sse.ts";
import type { Arrival } from "./http.ts";

/**
 * Reads closer together than this are one burst: a single write the network split into several
 * reads arrives within a fraction of a millisecond, while a model's tokens are produced tens of
 * milliseconds apart. Lambda may coalesce small writes before they reach the caller (AWS reports it;
 * nothing offline can test it), which shows up here as many chunks in few bursts.
 */
export const BURST_GAP_MS = 3;

/** Fewer content chunks than this cannot tell incremental from bursts. */
export const MIN_CHUNKS_TO_JUDGE = 3;

export type StreamVerdict = "incremental" | "bursts" | "one-burst" | "too-short";

export interface StreamAnalysis {
  /** From the request sent to the first body byte. */
  firstByteMs: number | undefined;
  /** From the request sent to the first chunk carrying model output (content, reasoning, tool call). */
  firstContentMs: number | undefined;
  /** Chunks carrying model output. */
  contentChunks: number;
  /** When each content chunk arrived, ms after the request. */
  contentAtMs: number[];
  /** The gap before each content chunk after the first: 0 means it came in the same read as the previous. */
  gapsMs: number[];
  /** Groups of content chunks that arrived together (gaps under {@link BURST_GAP_MS}). */
  bursts: number;
  /** The most content chunks in one burst. */
  largestBurst: number;
  verdict: StreamVerdict;
  /** The stream ended with `data: [DONE]`. */
  done: boolean;
  /** An in-band error event: the stream was cut after it started. */
  error: { message: string; code: string | null } | undefined;
  text: string;
}

async function* reads(arrivals: readonly Arrival[], onRead: (atMs: number) => void) {
  for (const arrival of arrivals) {
    onRead(arrival.atMs);
    yield arrival.bytes;
  }
}

interface ChunkShape {
  choices?: Array<{ delta?: { content?: unknown; reasoning_content?: unknown; tool_calls?: unknown } }>;
  error?: { message?: unknown; code?: unknown };
}

/**
 * Splits a recorded SSE body into events, dates each by the read that completed it, and judges
 * whether the model's output arrived as it was made or held back and released in bursts.
 */
export async function analyzeStream(
  arrivals: readonly Arrival[],
  options: {
    burstGapMs?: number;
    /** Applied to every text the analysis keeps (the answer, an error's message) before it is cut. */
    redact?: (text: string) => string;
  } = {},
): Promise<StreamAnalysis> {
  const burstGapMs = options.burstGapMs ?? BURST_GAP_MS;
  const redact = options.redact ?? ((text: string) => text);
  let readAt = 0;
  const contentAtMs: number[] = [];
  let text = "";
  let done = false;
  let error: StreamAnalysis["error"];
  // parseSse is lazy: an event it yields was completed by the read it pulled last.
  for await (const event of parseSse(reads(arrivals, (at) => (readAt = at)))) {
    if (event.kind !== "data") continue;
    if (event.data === "[DONE]") {
      done = true;
      continue;
    }
    let chunk: ChunkShape;
    try {
      chunk = JSON.parse(event.data) as ChunkShape;
    } catch {
      error = { message: `not JSON: ${redact(event.data).slice(0, 80)}`, code: null };
      continue;
    }
    if (chunk.error || event.event === "error") {
      error = {
        message: redact(String(chunk.error?.message ?? "error event")),
        code: typeof chunk.error?.code === "string" ? chunk.error.code : null,
      };
      continue;
    }
    const delta = chunk.choices?.[0]?.delta;
    const piece = [delta?.content, delta?.reasoning_content].filter((v) => typeof v === "string").join("");
    if (piece !== "" || (Array.isArray(delta?.tool_calls) && delta.tool_calls.length > 0)) {
      contentAtMs.push(readAt);
      if (typeof delta?.content === "string") text += delta.content;
    }
  }

  const gapsMs = contentAtMs.slice(1).map((at, i) => at - (contentAtMs[i] as number));
  const burstSizes: number[] = [];
  contentAtMs.forEach((_, i) => {
    const gap = i === 0 ? Number.POSITIVE_INFINITY : (gapsMs[i - 1] as number);
    if (gap >= burstGapMs || burstSizes.length === 0) burstSizes.push(1);
    else burstSizes[burstSizes.length - 1] = (burstSizes.at(-1) as number) + 1;
  });
  const largestBurst = Math.max(0, ...burstSizes);
  const n = contentAtMs.length;
  // Incremental: at least three separate arrivals, none holding more than half the output. A
  // coalescing hop shows as the opposite: a few arrivals carrying most of the chunks.
  const verdict: StreamVerdict =
    n < MIN_CHUNKS_TO_JUDGE
      ? "too-short"
      : burstSizes.length === 1
        ? "one-burst"
        : burstSizes.length >= MIN_CHUNKS_TO_JUDGE && largestBurst * 2 <= n
          ? "incremental"
          : "bursts";
  return {
    firstByteMs: arrivals[0]?.atMs,
    firstContentMs: contentAtMs[0],
    contentChunks: n,
    contentAtMs,
    gapsMs,
    bursts: burstSizes.length,
    largestBurst,
    verdict,
    done,
    error,
    text: redact(text),
  };
}
