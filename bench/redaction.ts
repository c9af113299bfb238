import { createSecretRedactor } from "../lib/secrets/redact.ts";

/**
 * What redaction costs (issue 16), each figure beside a baseline measured in the same run: 4 MiB of
 * text hostile to a backtracking engine (what made one request stall the process) beside 4 MiB of
 * prose, and a request's log line beside the `JSON.stringify` the logger does for it anyway. The
 * registry holds what a busy gateway's would: ten provider secrets, a thousand issued caller keys
 * and ten legacy ones. `npm run bench -- --redaction` runs this part alone.
 */
export interface RedactionTimes {
  hostileMs: number;
  plainMs: number;
  logLineMicros: number;
  stringifyMicros: number;
  textBytes: number;
}

const MIB4 = 4 * 1024 * 1024;

function filled(unit: string, length: number): string {
  return unit.repeat(Math.ceil(length / unit.length)).slice(0, length);
}

/** Blocks that each made an expression, as it was or as a naive rewrite, rescan from every position. */
function hostileText(): string {
  const block = MIB4 / 8;
  return [
    filled("api_key=abcdefg.", block),
    `api_key=${"a".repeat(block)}`,
    filled("Bearer ", block),
    filled("sk-ab ", block),
    `a${".".repeat(block)}b`,
    "*".repeat(block),
    filled("a-", block),
    filled("arn:aws:", block),
  ].join("\n");
}

/** The `i`th 12-character caller-key id, in the id alphabet (lib/callers/key.ts). */
function issuedId(i: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  return [...i.toString(32).padStart(12, "0")].map((digit) => alphabet[Number.parseInt(digit, 32)]).join("");
}

/** The fastest of `runs`, in ms: on a shared machine, the run least disturbed by others. */
function bestMs(runs: number, run: () => void): number {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    run();
    best = Math.min(best, performance.now() - start);
  }
  return best;
}

export function redactionTimes(runs = 5): RedactionTimes {
  const redactor = createSecretRedactor();
  for (let i = 0; i < 10; i++) redactor.register(`provider-${i}-Zq8vR2mXk4LpT9wB7nC3dF6hJ1sY5aE0`);
  for (let i = 0; i < 1000; i++) redactor.registerCallerKey(`sk-gw-${issuedId(i)}.${"s".repeat(40)}${i}`);
  for (let i = 0; i < 10; i++) redactor.registerCallerKey(`LegacyCallerKey${i}xY7wV6uT5sR4qP3o`);

  const hostile = hostileText();
  const plain = filled("The quick brown fox jumps over the lazy dog, then rests a while. ", hostile.length);
  const line = {
    level: "info",
    time: "2025-01-01T00:00:00.000Z",
    msg: "chat completion",
    requestId: "3f2a9c1e-0b4d-4e8f-9a7b-6c5d4e3f2a1b",
    model: "fast",
    outcome: "ok",
    status: 200,
    durationMs: 412.5,
    attempts: [{ provider: "openai", model: "gpt-4o-mini", status: 200, ms: 410.2, fault: null }],
    usage: { promptTokens: 12, completionTokens: 48 },
  };
  const text = JSON.stringify(line);
  const lines = 20_000;
  redactor.redact(text); // compiles the expression
  return {
    hostileMs: bestMs(runs, () => redactor.redact(hostile)),
    plainMs: bestMs(runs, () => redactor.redact(plain)),
    logLineMicros:
      (bestMs(runs, () => {
        for (let i = 0; i < lines; i++) redactor.redact(text);
      }) *
        1000) /
      lines,
    stringifyMicros:
      (bestMs(runs, () => {
        for (let i = 0; i < lines; i++) JSON.stringify(line);
      }) *
        1000) /
      lines,
    textBytes: hostile.length,
  };
}

/** The line `npm run bench` prints. */
export function redactionSummary(times: RedactionTimes): string {
  const mib = (times.textBytes / 2 ** 20).toFixed(0);
  return (
    `redaction: ${mib} MiB hostile text ${times.hostileMs.toFixed(1)} ms vs ${mib} MiB prose ` +
    `${times.plainMs.toFixed(1)} ms (${(times.hostileMs / times.plainMs).toFixed(2)}x); a request's log line ` +
    `${times.logLineMicros.toFixed(2)} µs vs its JSON.stringify ${times.stringifyMicros.toFixed(2)} µs`
  );
}
