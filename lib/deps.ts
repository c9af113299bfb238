import { randomUUID } from "node:crypto";
import type { MetricsSink } from "./metrics/emf.ts";
import { redactSecrets } from "./secrets/redact.ts";

/** Structured logger: one JSON object per line. Never pass prompts, completions or keys. */
export interface Logger {
  info(fields: Record<string, unknown>): void;
  warn(fields: Record<string, unknown>): void;
  error(fields: Record<string, unknown>): void;
}

/**
 * A pending one-shot timer. The real one is a thin shell over a Node `Timeout`, so pushing a timer
 * back on every streamed chunk stays a `refresh()` and costs no new timer (see BENCHMARKS.md).
 */
export interface Timer {
  /**
   * Restarts the countdown: it now fires `ms` after this call. Re-arms a timer that has already
   * fired (from inside its own callback too); does nothing once cleared.
   */
  refresh(): void;
  /** Cancels it; safe to call more than once, or after it fired. */
  clear(): void;
  /** Lets the process exit while only this timer is pending (background jobs). */
  unref(): void;
}

/**
 * Every effect the request path uses, built once at the edge and passed down, so tests can hand in
 * a fake clock, a seeded random source and a recording logger.
 */
export interface Deps {
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Uniform in [0, 1). */
  random(): number;
  newId(): string;
  /**
   * Calls `fn` once, `ms` from now, unless cleared first. Every timeout on the request path and in
   * the health code goes through here, so tests run them on a fake clock (issue 10).
   */
  setTimer(fn: () => void, ms: number): Timer;
  logger: Logger;
  /** Per-request metrics (CloudWatch EMF on Lambda); none locally. */
  metrics?: MetricsSink;
}

export type LogLevel = "info" | "warn" | "error" | "off";
const LEVELS: readonly LogLevel[] = ["info", "warn", "error", "off"];

/**
 * The level from LOG_LEVEL, else Lambda's AWS_LAMBDA_LOG_LEVEL (advanced logging controls), else
 * info. DEBUG/TRACE count as info; anything unknown is info too, so a typo never silences errors.
 */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const wanted = (env.LOG_LEVEL ?? env.AWS_LAMBDA_LOG_LEVEL ?? "info").toLowerCase();
  return LEVELS.includes(wanted as LogLevel) ? (wanted as LogLevel) : "info";
}

/**
 * One JSON object per line, each line passed through {@link redactSecrets} as a last line of
 * defence: whatever field carries an upstream message, an error or a cause, no key the gateway
 * holds and nothing shaped like a key reaches the log (issue 9).
 */
export function jsonLogger(
  write: (line: string) => void = (line) => process.stdout.write(line),
  level: LogLevel = "info",
): Logger {
  const min = LEVELS.indexOf(level);
  const emitter = (name: "info" | "warn" | "error") =>
    LEVELS.indexOf(name) < min
      ? () => {}
      : (fields: Record<string, unknown>) =>
          write(
            `${redactSecrets(JSON.stringify({ level: name, time: new Date().toISOString(), ...fields }))}\n`,
          );
  return { info: emitter("info"), warn: emitter("warn"), error: emitter("error") };
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** A real timer: one small object around the `Timeout`, methods on the prototype. */
class NodeTimer implements Timer {
  readonly #timeout: NodeJS.Timeout;
  constructor(fn: () => void, ms: number) {
    this.#timeout = setTimeout(fn, ms);
  }
  refresh(): void {
    this.#timeout.refresh();
  }
  clear(): void {
    clearTimeout(this.#timeout);
  }
  unref(): void {
    this.#timeout.unref();
  }
}

/** {@link Deps.setTimer} on the real clock. */
export function setTimer(fn: () => void, ms: number): Timer {
  return new NodeTimer(fn, ms);
}

export function systemDeps(logger: Logger = jsonLogger()): Deps {
  return { now: Date.now, sleep, random: Math.random, newId: randomUUID, setTimer, logger };
}
