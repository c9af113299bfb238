import { describe, expect, it } from "vitest";
import type { Arrival } from "../../lib/smoke/http.ts";
import { analyzeStream } from "../../lib/smoke/stream.ts";

const enc = new TextEncoder();
const chunk = (content: string) =>
  `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n\n`;
const DONE = "data: [DONE]\n\n";
/** Reads at given times (ms after the request), each holding these SSE events. */
const reads = (...parts: Array<[number, string]>): Arrival[] =>
  parts.map(([atMs, text]) => ({ atMs, bytes: enc.encode(text) }));
const tokens = (n: number) => Array.from({ length: n }, (_, i) => chunk(`${i + 1} `));

describe("analyzeStream", () => {
  it("calls a stream incremental when each chunk arrives on its own, and keeps every gap", async () => {
    const parts = tokens(6).map((t, i): [number, string] => [100 + i * 20, t]);
    const a = await analyzeStream(reads([90, ": keep-alive\n\n"], ...parts, [230, DONE]));
    expect(a).toMatchObject({
      firstByteMs: 90,
      firstContentMs: 100,
      contentChunks: 6,
      gapsMs: [20, 20, 20, 20, 20],
      bursts: 6,
      verdict: "incremental",
      done: true,
      error: undefined,
      text: "1 2 3 4 5 6 ",
    });
  });

  it("calls a stream that arrives in one write one burst", async () => {
    const a = await analyzeStream(reads([800, tokens(12).join("") + DONE]));
    expect(a).toMatchObject({ contentChunks: 12, bursts: 1, largestBurst: 12, verdict: "one-burst" });
    expect(a.gapsMs.every((g) => g === 0)).toBe(true);
  });

  it("counts reads a moment apart as one burst: one write split by the network", async () => {
    const all = tokens(10);
    const a = await analyzeStream(
      reads([500, all.slice(0, 5).join("")], [500.4, all.slice(5).join("") + DONE]),
    );
    expect(a.verdict).toBe("one-burst");
  });

  it("calls a stream in bursts when a few arrivals carry most of the chunks", async () => {
    const all = tokens(20);
    const a = await analyzeStream(
      reads(
        [300, all.slice(0, 2).join("")],
        [340, all.slice(2, 4).join("")],
        [900, all.slice(4).join("") + DONE],
      ),
    );
    expect(a).toMatchObject({ contentChunks: 20, bursts: 3, largestBurst: 16, verdict: "bursts" });
  });

  it("dates an event split over two reads by the read that completed it", async () => {
    const event = chunk("hello");
    const a = await analyzeStream(reads([10, event.slice(0, 12)], [50, event.slice(12)], [60, DONE]));
    expect(a.firstByteMs).toBe(10);
    expect(a.firstContentMs).toBe(50);
    expect(a.verdict).toBe("too-short");
  });

  it("counts reasoning and tool-call chunks as output, and role-only chunks as not", async () => {
    const role = `data: ${JSON.stringify({ choices: [{ delta: { role: "assistant" } }] })}\n\n`;
    const reasoning = `data: ${JSON.stringify({ choices: [{ delta: { reasoning_content: "hmm" } }] })}\n\n`;
    const tool = `data: ${JSON.stringify({ choices: [{ delta: { tool_calls: [{ index: 0 }] } }] })}\n\n`;
    const a = await analyzeStream(reads([5, role], [40, reasoning], [80, tool], [120, DONE]));
    expect(a.contentAtMs).toEqual([40, 80]);
  });

  it("reports an in-band error event and a missing [DONE]: a cut answer is not a finished one", async () => {
    const error = `event: error\ndata: ${JSON.stringify({ error: { message: "upstream cut", type: "api_error", code: "stream_interrupted" } })}\n\n`;
    const a = await analyzeStream(reads([10, chunk("a")], [30, chunk("b")], [50, error]));
    expect(a.done).toBe(false);
    expect(a.error).toEqual({ message: "upstream cut", code: "stream_interrupted" });
  });
});
